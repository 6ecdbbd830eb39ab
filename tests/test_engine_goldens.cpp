// End-to-end goldens: the CPU engine against transformers (tools/reference/make_golden.py, run on the GPU
// host) on synthetic checkpoints, for every kernel ISA this CPU runs.
//
// Each tests/goldens/<name>/golden.json records the `ossrun synth` flags of its checkpoint (synth is
// deterministic from its seed), the prompt ids, per-position logits (full rows, or the top 32 with the
// row's log-sum-exp) and the greedy continuation. The test regenerates the checkpoint into a temp dir with
// the built ossrun binary, runs the engine, and checks per position max|logit - golden| / max|golden|
// <= 5e-3, the same top-1 on every prompt position, and the same greedy continuation.
// No golden directory at all is a failure, so a missing golden cannot pass silently.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/engine/sampler.h"
#include "src/engine/session.h"
#include "src/model/checkpoint.h"
#include "tests/support/build_paths.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kTolerance = 5e-3;  // max |logit - golden| / max |golden| per position

std::vector<fs::path> golden_files() {
  std::vector<fs::path> out;
  const fs::path root = test::golden_dir();
  if (!fs::is_directory(root)) return out;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && fs::exists(entry.path() / "golden.json")) out.push_back(entry.path() / "golden.json");
  std::sort(out.begin(), out.end());
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// One golden row, whichever form it was stored in.
struct GoldenRow {
  std::vector<int32_t> ids;   // the ids compared (every id of a full row, else the stored top ids)
  std::vector<double> values; // their golden logits, descending for the top form
  int32_t top1 = 0;
  double scale = 0;           // max |golden logit| seen
  double lse = NAN;           // top form only
};

GoldenRow golden_row(const json& j) {
  GoldenRow r;
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      r.ids.push_back(static_cast<int32_t>(i));
      r.values.push_back(j[i].get<double>());
    }
    r.top1 = static_cast<int32_t>(std::max_element(r.values.begin(), r.values.end()) - r.values.begin());
  } else {
    r.ids = j.at("top_ids").get<std::vector<int32_t>>();
    r.values = j.at("top_values").get<std::vector<double>>();
    r.lse = j.at("lse").get<double>();
    r.top1 = r.ids.at(0);
  }
  for (double v : r.values) r.scale = std::max(r.scale, std::abs(v));
  return r;
}

double lse_of(std::span<const float> row) {
  double m = -INFINITY, z = 0;
  for (float v : row) m = std::max(m, static_cast<double>(v));
  for (float v : row) z += std::exp(v - m);
  return m + std::log(z);
}

std::vector<cpu::Isa> supported_isas() {
  std::vector<cpu::Isa> out;
  for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (cpu::isa_supported(isa)) out.push_back(isa);
  return out;
}

void check_golden(const fs::path& file) {
  std::ifstream in(file);
  const json g = json::parse(in);
  const auto synth_args = g.at("synth_args").get<std::vector<std::string>>();
  const auto prompt = g.at("prompt_ids").get<std::vector<int32_t>>();
  const auto greedy = g.at("greedy").get<std::vector<int32_t>>();
  const std::vector<double> margins = g.contains("greedy_margin") ? g["greedy_margin"].get<std::vector<double>>() : std::vector<double>{};
  REQUIRE(g.at("logits").size() == prompt.size());

  test::TempDir dir("ossrun-golden");
  std::string cmd = shell_quote(test::ossrun_binary()) + " synth " + shell_quote(dir.path().string()) + " --force";
  for (const std::string& a : synth_args) cmd += " " + shell_quote(a);
  cmd += " >/dev/null";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "could not regenerate the checkpoint: " << cmd);
  auto ck = Checkpoint::open(dir.path());

  for (cpu::Isa isa : supported_isas()) {
    INFO(file.parent_path().filename().string() << ", isa " << std::string(cpu::isa_name(isa)));
    engine::Session s(*ck, {.ctx = static_cast<int64_t>(prompt.size() + greedy.size()) + 1, .isa = isa, .prefill_batch = 16});
    double worst = 0;
    std::vector<float> last;
    s.prefill(prompt, [&](int64_t pos, std::span<const float> row) {
      const GoldenRow want = golden_row(g["logits"][pos]);
      double err = 0;
      for (size_t i = 0; i < want.ids.size(); ++i) err = std::max(err, std::abs(row[want.ids[i]] - want.values[i]));
      if (!std::isnan(want.lse)) err = std::max(err, std::abs(lse_of(row) - want.lse));
      worst = std::max(worst, err / want.scale);
      CHECK_MESSAGE(err / want.scale <= kTolerance,
                    "position " << pos << ": max |logit - golden| = " << err << ", max |golden| = " << want.scale);
      const int32_t top1 = engine::argmax(row);
      // Only an exact tie in the golden excuses a different top-1.
      if (top1 != want.top1) {
        const auto at = std::find(want.ids.begin(), want.ids.end(), top1);
        CHECK_MESSAGE((at != want.ids.end() && want.values[at - want.ids.begin()] == want.values[0]),
                      "position " << pos << ": top-1 " << top1 << " but golden " << want.top1);
      }
      if (pos + 1 == static_cast<int64_t>(prompt.size())) last.assign(row.begin(), row.end());
    });
    MESSAGE(file.parent_path().filename().string() << " " << std::string(cpu::isa_name(isa)) << ": max relative logit error " << worst);

    std::span<const float> logits(last);
    for (size_t i = 0; i < greedy.size(); ++i) {
      const int32_t next = engine::argmax(logits);
      if (next != greedy[i]) {
        // A step whose golden top-2 margin is inside the tolerance is a coin toss between fp32 implementations.
        const double margin = i < margins.size() ? margins[i] : INFINITY;
        double scale = 0;
        for (float v : logits) scale = std::max(scale, std::abs(static_cast<double>(v)));
        CHECK_MESSAGE(margin <= kTolerance * scale, "greedy step " << i << ": " << next << " but golden " << greedy[i]
                                                                   << " (golden margin " << margin << ")");
        break;
      }
      logits = s.decode(next);
    }
  }
}

}  // namespace

TEST_CASE("engine goldens: transformers' logits and greedy continuations on synthetic checkpoints") {
  const std::vector<fs::path> files = golden_files();
  REQUIRE_MESSAGE(!files.empty(), "no tests/goldens/<name>/golden.json: the end-to-end check has nothing to compare");
  for (const fs::path& f : files) check_golden(f);
}
