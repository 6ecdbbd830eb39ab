// The engine's commands as a user runs them (`ossrun logits`, `generate`, `perplexity`): their output against
// what the Session computes, and their errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/engine/sampler.h"
#include "src/engine/session.h"
#include "src/model/checkpoint.h"
#include "src/tokenizer/tokenizer.h"
#include "tests/support/build_paths.h"
#include "tests/support/shell_run.h"
#include "tests/support/temp_dir.h"
#include "tests/test_engine_checkpoints.h"

using namespace ossrun;

namespace {

using Run = test::ShellRun;
Run run_ossrun(const std::string& args, bool merge_stderr = false) { return test::run_ossrun(args, merge_stderr); }

}  // namespace

TEST_CASE("ossrun logits --json: top ids, logits and log-sum-exp of every position, as the Session computes them") {
  test::TempDir dir("ossrun-cli");
  const ModelConfig c = test::write_tiny_checkpoint(dir.path(), ExpertFormat::MXFP4, 21);
  const std::vector<int32_t> ids = {5, 17, 0, 999, 42, 42, 7, 3};
  const Run r = run_ossrun("logits --model '" + dir.path().string() + "' --ids '5, 17,0,999,42,42,7,3' --top 4 --json --threads 1");
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["ids"].get<std::vector<int32_t>>() == ids);
  CHECK(j["vocab_size"] == c.vocab_size);
  REQUIRE(j["positions"].size() == ids.size());

  auto ck = Checkpoint::open(dir.path());
  engine::Session s(*ck, {.ctx = 8, .threads = 1});
  s.prefill(ids, [&](int64_t pos, std::span<const float> row) {
    const nlohmann::json& p = j["positions"][pos];
    CHECK(p["position"] == pos);
    CHECK(p["id"] == ids[pos]);
    const auto top = p["top_ids"].get<std::vector<int32_t>>();
    const auto vals = p["top_logits"].get<std::vector<float>>();
    REQUIRE(top.size() == 4);
    for (size_t i = 0; i < 4; ++i) {
      CHECK(vals[i] == row[top[i]]);
      if (i) CHECK(vals[i] <= vals[i - 1]);
    }
    for (float v : row) CHECK(v <= vals[0]);
    double m = vals[0], z = 0;
    for (float v : row) z += std::exp(v - m);
    CHECK(p["lse"].get<double>() == doctest::Approx(m + std::log(z)).epsilon(1e-12));
  });
}

TEST_CASE("ossrun logits: bad ids are clear errors with exit code 3") {
  test::TempDir dir("ossrun-cli");
  test::write_tiny_checkpoint(dir.path(), ExpertFormat::MXFP4, 22);
  const std::string model = " --model '" + dir.path().string() + "'";
  Run r = run_ossrun("logits" + model + " --ids 1,x,3", true);
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("item 1 is \"x\"") != std::string::npos);
  r = run_ossrun("logits" + model + " --ids 1,1000", true);
  INFO(r.out);
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("token id 1000 (at index 1) is outside the vocabulary [0, 1000)") != std::string::npos);
  r = run_ossrun("logits" + model + " --ids 1,,2", true);
  CHECK(r.exit_code == 3);
  r = run_ossrun("logits" + model + " --ids -4", true);
  CHECK(r.exit_code == 3);
  r = run_ossrun("logits" + model + " --ids 99999999999", true);
  CHECK(r.exit_code == 3);
  r = run_ossrun("logits --model /nonexistent/dir --ids 1", true);
  CHECK(r.exit_code == 3);
}

namespace {

// One checkpoint with a real vocabulary and tokenizer for the text commands (about 60 MB, written once).
const std::filesystem::path& text_checkpoint() {
  static test::TempDir dir("ossrun-cli-text");
  static const bool written = (test::write_text_checkpoint(dir.path(), 31), true);
  (void)written;
  return dir.path();
}

}  // namespace

TEST_CASE("ossrun generate: greedy raw completion equals the Session's argmax continuation, decoded") {
  const std::string model = text_checkpoint().string();
  const Run r = run_ossrun("generate --model '" + model + "' --prompt 'The capital of France is' --greedy --max-tokens 12");
  REQUIRE(r.exit_code == 0);

  const Tokenizer tok = Tokenizer::from_model_dir(model);
  std::vector<int32_t> ids;
  for (TokenId id : tok.encode("The capital of France is")) ids.push_back(static_cast<int32_t>(id));
  auto ck = Checkpoint::open(model);
  engine::Session s(*ck, {.ctx = 64});
  std::span<const float> logits = s.prefill(ids);
  std::vector<TokenId> out;
  for (int i = 0; i < 12; ++i) {
    const int32_t next = engine::argmax(logits);
    if (next == 200002 || next == 200012) break;
    out.push_back(static_cast<TokenId>(next));
    logits = s.decode(next);
  }
  CHECK(r.out == tok.decode(out) + "\n");
}

TEST_CASE("ossrun generate: the same seed gives the same text, another seed other text, chat mode runs") {
  const std::string base = "generate --model '" + text_checkpoint().string() + "' --prompt 'Once upon a time' --max-tokens 24";
  const Run a = run_ossrun(base + " --seed 5 --threads 1"), b = run_ossrun(base + " --seed 5"), c = run_ossrun(base + " --seed 6");
  REQUIRE(a.exit_code == 0);
  CHECK(a.out == b.out);
  CHECK(a.out != c.out);

  const Run chat = run_ossrun(base + " --seed 1 --chat --reasoning low --show-analysis", true);
  CHECK(chat.exit_code == 0);
  CHECK(chat.out.find("prefill: ") != std::string::npos);
  CHECK(run_ossrun(base + " --top-p 0", true).exit_code == 3);  // a bad sampling option is a clear error
}

TEST_CASE("ossrun perplexity: exp(mean NLL) over chunks of --ctx tokens, as computed from the Session") {
  test::TempDir dir("ossrun-cli");
  const std::string text = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
                           "age of foolishness, it was the epoch of belief, it was the epoch of incredulity.";
  { std::ofstream(dir / "text.txt") << text; }
  const std::string model = text_checkpoint().string();
  const Run r = run_ossrun("perplexity --model '" + model + "' --file '" + (dir / "text.txt").string() + "' --ctx 16");
  REQUIRE(r.exit_code == 0);

  const Tokenizer tok = Tokenizer::from_model_dir(model);
  std::vector<int32_t> ids;
  for (TokenId id : tok.encode(text)) ids.push_back(static_cast<int32_t>(id));
  auto ck = Checkpoint::open(model);
  engine::Session s(*ck, {.ctx = 16});
  double nll = 0;
  int scored = 0;
  for (size_t at = 0; at + 1 < ids.size(); at += 16) {
    const auto chunk = std::span(ids).subspan(at, std::min<size_t>(16, ids.size() - at));
    s.reset();
    s.prefill(chunk, [&](int64_t pos, std::span<const float> row) {
      if (static_cast<size_t>(pos) + 1 >= chunk.size()) return;
      double m = -INFINITY, z = 0;
      for (float v : row) m = std::max(m, double(v));
      for (float v : row) z += std::exp(v - m);
      nll += m + std::log(z) - row[chunk[pos + 1]];
      ++scored;
    });
  }
  char want[64];
  std::snprintf(want, sizeof want, "perplexity %.4f\n", std::exp(nll / scored));
  CHECK(r.out.find(want) != std::string::npos);
  CHECK(r.out.find("(" + std::to_string(scored) + " scored in chunks of 16)") != std::string::npos);

  CHECK(run_ossrun("perplexity --model '" + model + "' --file /nonexistent.txt", true).exit_code == 3);
}
