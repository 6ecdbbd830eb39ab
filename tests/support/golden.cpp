#include "tests/support/golden.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "src/engine/sampler.h"
#include "tests/support/build_paths.h"

namespace ossrun::test {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

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

}  // namespace

std::vector<fs::path> golden_files() {
  std::vector<fs::path> out;
  const fs::path root = golden_dir();
  if (!fs::is_directory(root)) return out;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && fs::exists(entry.path() / "golden.json")) out.push_back(entry.path() / "golden.json");
  std::sort(out.begin(), out.end());
  return out;
}

Golden load_golden(const fs::path& file) {
  std::ifstream in(file);
  Golden g;
  g.name = file.parent_path().filename().string();
  g.json = json::parse(in);
  g.prompt = g.json.at("prompt_ids").get<std::vector<int32_t>>();
  g.greedy = g.json.at("greedy").get<std::vector<int32_t>>();
  if (g.json.contains("greedy_margin")) g.margins = g.json["greedy_margin"].get<std::vector<double>>();
  REQUIRE(g.json.at("logits").size() == g.prompt.size());
  return g;
}

std::unique_ptr<Checkpoint> golden_checkpoint(const Golden& g, const TempDir& dir) {
  std::string cmd = shell_quote(ossrun_binary()) + " synth " + shell_quote(dir.path().string()) + " --force";
  for (const std::string& a : g.json.at("synth_args").get<std::vector<std::string>>()) cmd += " " + shell_quote(a);
  cmd += " >/dev/null";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "could not regenerate the checkpoint: " << cmd);
  return Checkpoint::open(dir.path());
}

double check_session_against_golden(engine::Session& s, const Golden& g, bool sample_in_session) {
  double worst = 0;
  std::vector<float> last;
  s.prefill(g.prompt, [&](int64_t pos, std::span<const float> row) {
    const GoldenRow want = golden_row(g.json["logits"][pos]);
    double err = 0;
    for (size_t i = 0; i < want.ids.size(); ++i) err = std::max(err, std::abs(row[want.ids[i]] - want.values[i]));
    if (!std::isnan(want.lse)) err = std::max(err, std::abs(lse_of(row) - want.lse));
    worst = std::max(worst, err / want.scale);
    CHECK_MESSAGE(err / want.scale <= kGoldenTolerance,
                  "position " << pos << ": max |logit - golden| = " << err << ", max |golden| = " << want.scale);
    const int32_t top1 = engine::argmax(row);
    // Only an exact tie in the golden excuses a different top-1.
    if (top1 != want.top1) {
      const auto at = std::find(want.ids.begin(), want.ids.end(), top1);
      CHECK_MESSAGE((at != want.ids.end() && want.values[at - want.ids.begin()] == want.values[0]),
                    "position " << pos << ": top-1 " << top1 << " but golden " << want.top1);
    }
    if (pos + 1 == static_cast<int64_t>(g.prompt.size())) last.assign(row.begin(), row.end());
  });

  if (sample_in_session) {
    // The same continuation drawn inside the session (on the GPU by its sampler), from a fresh prefill.
    const double scale = golden_row(g.json["logits"][g.prompt.size() - 1]).scale;
    s.reset();
    s.set_sampler({.temperature = 0});
    int32_t next = s.prefill_next(g.prompt);
    for (size_t i = 0; i < g.greedy.size(); ++i) {
      if (next != g.greedy[i]) {
        const double margin = i < g.margins.size() ? g.margins[i] : INFINITY;
        // Without the logits at hand, the last prompt row's scale stands for the step's.
        CHECK_MESSAGE(margin <= kGoldenTolerance * scale, "greedy step " << i << " (sampled in the session): " << next
                                                                 << " but golden " << g.greedy[i] << " (golden margin " << margin << ")");
        break;
      }
      if (i + 1 < g.greedy.size()) next = s.decode_next(next);
    }
    return worst;
  }

  std::span<const float> logits(last);
  for (size_t i = 0; i < g.greedy.size(); ++i) {
    const int32_t next = engine::argmax(logits);
    if (next != g.greedy[i]) {
      // A step whose golden top-2 margin is inside the tolerance is a coin toss between fp32 implementations.
      const double margin = i < g.margins.size() ? g.margins[i] : INFINITY;
      double scale = 0;
      for (float v : logits) scale = std::max(scale, std::abs(static_cast<double>(v)));
      CHECK_MESSAGE(margin <= kGoldenTolerance * scale, "greedy step " << i << ": " << next << " but golden " << g.greedy[i]
                                                                       << " (golden margin " << margin << ")");
      break;
    }
    logits = s.decode(next);
  }
  return worst;
}

}  // namespace ossrun::test
