// The engine's commands as a user runs them: `ossrun logits` output against the Session, and its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/engine/session.h"
#include "src/model/checkpoint.h"
#include "tests/support/temp_dir.h"
#include "tests/test_engine_checkpoints.h"

using namespace ossrun;

namespace {

struct Run {
  int exit_code = -1;
  std::string out;  // stdout and, with merge_stderr, stderr
};

Run run_ossrun(const std::string& args, bool merge_stderr = false) {
  const std::string cmd = std::string("'") + OSSRUN_BINARY + "' " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

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
