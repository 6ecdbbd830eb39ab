// `ossrun simulate`: replay a routing trace (recorded with --trace, or generated) through the expert cache
// policies and the clairvoyant optimum, and print hit rates per layer and overall.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "offload/byte_size.h"
#include "offload/model_shapes.h"
#include "offload/router_stats_io.h"
#include "offload/simulate.h"
#include "offload/trace.h"
#include "offload/trace_synth.h"
#include "src/cli/commands.h"
#include "src/model/error.h"
#include "src/model/inspect.h"

namespace ossrun::cli {
namespace {

struct SimulateFlags {
  std::string trace_file, save_trace, shape = "20b", slots, policies = "all", uploads = "unlimited", stats;
  bool synthetic = false, json = false;
  int layers = 0, experts = 0, k = 0;
  offload::SyntheticTraceParams synth;
  double router_half_life = 0, lfu_half_life = 0;  // 0: tuning_for(the trace's shape)
  double margin = offload::PolicyTuning{}.router_margin;
};

// "8" or "25%" of the experts.
int parse_slots(const std::string& text, int experts) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    const bool percent = used + 1 == text.size() && text.back() == '%';
    if ((used == text.size() || percent) && v >= 0) {
      const double n = percent ? std::round(v / 100 * experts) : v;
      if (n == std::floor(n) && n <= experts) return static_cast<int>(n);
    }
  } catch (const std::exception&) {
  }
  throw CLI::ValidationError("--slots", "\"" + text + "\" is not a slot count from 0 to " + std::to_string(experts) +
                                            " or a percentage of the experts such as 25%");
}

double parse_uploads(const std::string& text) {
  if (text == "unlimited" || text == "inf") return std::numeric_limits<double>::infinity();
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && v > 0 && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw CLI::ValidationError("--uploads", "\"" + text + "\" is not a number of uploads per layer per token above 0, or unlimited");
}

std::vector<offload::PolicyKind> parse_policies(const std::string& text) {
  using offload::PolicyKind;
  if (text == "all") return {PolicyKind::Static, PolicyKind::Lru, PolicyKind::Lfu, PolicyKind::Router, PolicyKind::Belady};
  std::vector<PolicyKind> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    out.push_back(offload::parse_policy(text.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return out;
}

struct LoadedTrace {
  offload::Trace trace;
  std::string description;
  int slots = 0;
  double oracle_hit_rate = -1;  // synthetic traces: the popularity oracle with the same slots
};

LoadedTrace load_or_generate(SimulateFlags& f) {
  if (f.synthetic == !f.trace_file.empty())
    throw CLI::ValidationError("TRACE", "give either a trace file or --synthetic");
  if (!f.synthetic) {
    offload::Trace t = offload::read_trace(f.trace_file);
    const int slots = parse_slots(f.slots, t.shape().experts);
    return {std::move(t), f.trace_file, slots};
  }
  const ModelConfig shape = offload::model_shape(f.shape);
  f.synth.shape = {f.layers ? f.layers : static_cast<int>(shape.num_hidden_layers),
                   f.experts ? f.experts : static_cast<int>(shape.num_local_experts),
                   f.k ? f.k : static_cast<int>(shape.num_experts_per_tok)};
  offload::validate_trace_shape(f.synth.shape);
  f.synth.oracle_slots = parse_slots(f.slots, f.synth.shape.experts);
  offload::SyntheticTrace t = offload::generate_synthetic_trace_scored(f.synth);
  char buf[256];
  std::snprintf(buf, sizeof buf, "synthetic: skew %.2f, seed %llu, drift %.3f, bursts of %d experts x%.1f every ~%.0f tokens",
                f.synth.skew, static_cast<unsigned long long>(f.synth.seed), f.synth.drift, f.synth.burst_experts,
                f.synth.burst_boost, f.synth.segment_tokens);
  return {std::move(t.trace), buf, f.synth.oracle_slots, t.oracle_hit_rate};
}

void run_simulate(SimulateFlags& f) {
  const LoadedTrace loaded_trace = load_or_generate(f);
  const offload::Trace& trace = loaded_trace.trace;
  const std::string& description = loaded_trace.description;
  const int slots = loaded_trace.slots;
  if (!f.save_trace.empty()) offload::write_trace(f.save_trace, trace);
  const offload::TraceShape& s = trace.shape();
  const std::vector<offload::PolicyKind> policies = parse_policies(f.policies);

  offload::SimulationOptions options;
  options.slots.assign(s.layers, slots);
  options.uploads_per_step = parse_uploads(f.uploads);
  options.tuning = offload::tuning_for(s.experts, s.k);
  if (f.router_half_life > 0) options.tuning.router_half_life = f.router_half_life;
  if (f.lfu_half_life > 0) options.tuning.lfu_half_life = f.lfu_half_life;
  options.tuning.router_margin = f.margin;
  if (!f.stats.empty()) {
    const offload::LoadedRouterStats loaded = offload::load_router_stats(f.stats, s.layers, s.experts);
    if (!loaded.stats) throw InputError(f.stats + ": " + (loaded.warning.empty() ? "no such file" : loaded.warning));
    options.prior.assign(s.layers, std::vector<double>(s.experts));
    for (int l = 0; l < s.layers; ++l)
      for (int e = 0; e < s.experts; ++e) options.prior[l][e] = loaded.stats->share(l, e);
  }

  std::vector<offload::SimulationResult> results;
  std::vector<double> seconds;
  for (offload::PolicyKind p : policies) {
    const auto start = std::chrono::steady_clock::now();
    results.push_back(offload::simulate(trace, p, options));
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  // Both gpt-oss models have the same expert slice (hidden and intermediate 2880), so PCIe bytes per token
  // follow from the uploads.
  const uint64_t slice = summarize(offload::gpt_oss_20b_config()).expert_slice_bytes;
  const double tokens = static_cast<double>(trace.tokens());
  const offload::SimulationResult* belady = nullptr;
  for (const auto& r : results)
    if (r.policy == offload::PolicyKind::Belady) belady = &r;

  if (f.json) {
    nlohmann::json j;
    j["trace"] = {{"source", description}, {"layers", s.layers}, {"experts", s.experts}, {"k", s.k}, {"tokens", trace.tokens()}};
    j["slots_per_layer"] = slots;
    j["tuning"] = {{"router_half_life", options.tuning.router_half_life},
                   {"lfu_half_life", options.tuning.lfu_half_life},
                   {"router_margin", options.tuning.router_margin}};
    if (loaded_trace.oracle_hit_rate >= 0) j["popularity_oracle_hit_rate"] = loaded_trace.oracle_hit_rate;
    j["uploads_per_layer_per_token"] = std::isinf(options.uploads_per_step) ? nlohmann::json("unlimited") : nlohmann::json(options.uploads_per_step);
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& c : r.layers) layers.push_back({{"hits", c.hits}, {"requests", c.requests}, {"uploads", c.uploads}});
      nlohmann::json p = {{"policy", offload::policy_name(r.policy)},
                          {"hit_rate", r.total().hit_rate()},
                          {"uploads_per_token", r.total().uploads / tokens},
                          {"seconds", seconds[i]},
                          {"layers", layers}};
      if (belady && belady->total().hits) p["vs_belady"] = static_cast<double>(r.total().hits) / belady->total().hits;
      if (loaded_trace.oracle_hit_rate > 0) p["vs_oracle"] = r.total().hit_rate() / loaded_trace.oracle_hit_rate;
      j["policies"].push_back(p);
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }

  std::printf("trace    %s\n         %d layers x %d experts, top-%d, %lld tokens\n", description.c_str(), s.layers, s.experts,
              s.k, static_cast<long long>(trace.tokens()));
  std::printf("cache    %d slots per layer (%.0f%% of the experts), uploads %s per layer per token\n", slots,
              100.0 * slots / s.experts, f.uploads.c_str());
  std::printf("policies half-life %.0f tokens (lfu %.0f), router margin %.2f\n", options.tuning.router_half_life,
              options.tuning.lfu_half_life, options.tuning.router_margin);
  std::printf("\nlayer");
  for (const auto& r : results) std::printf("  %8s", offload::policy_name(r.policy));
  std::printf("\n");
  for (int l = 0; l < s.layers; ++l) {
    std::printf("%5d", l);
    for (const auto& r : results) std::printf("  %7.1f%%", 100 * r.layers[l].hit_rate());
    std::printf("\n");
  }
  std::printf("  all");
  for (const auto& r : results) std::printf("  %7.1f%%", 100 * r.total().hit_rate());
  if (belady && belady->total().hits) {
    std::printf("\n/belady");
    for (const auto& r : results) std::printf("  %8.3f", static_cast<double>(r.total().hits) / belady->total().hits);
  }
  if (loaded_trace.oracle_hit_rate > 0) {
    std::printf("\n/oracle");
    for (const auto& r : results) std::printf("  %8.3f", r.total().hit_rate() / loaded_trace.oracle_hit_rate);
  }
  std::printf("\nup/tok");
  for (const auto& r : results) std::printf(" %9.2f", r.total().uploads / tokens);
  std::printf("\nMiB/tok");
  for (const auto& r : results) std::printf(" %8.0f", r.total().uploads / tokens * slice / (1 << 20));
  std::printf("\nseconds");
  for (double sec : seconds) std::printf(" %8.2f", sec);
  std::printf("\n\nhit: a routed expert found in the layer's GPU slots. up/tok: uploads per token, all layers;\n"
              "MiB/tok: the PCIe traffic they cost with gpt-oss's %s expert slice.\n", offload::format_bytes(slice).c_str());
  if (loaded_trace.oracle_hit_rate >= 0)
    std::printf("oracle: %.1f%%, a cache holding the experts of highest current weight in the generator (free uploads):\n"
                "the best an online policy can expect; Belady beats it only by knowing the random draws.\n",
                100 * loaded_trace.oracle_hit_rate);
  if (belady && std::isfinite(options.uploads_per_step) && options.uploads_per_step != std::floor(options.uploads_per_step))
    std::printf("belady got ceil(uploads) per step: with a fractional budget it is an upper bound, not an exact optimum.\n");
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("simulate", "Replay a routing trace through the expert cache policies and Belady's optimum");
  auto f = std::make_shared<SimulateFlags>();
  cmd->add_option("trace", f->trace_file, "Trace file (written by --trace)");
  cmd->add_option("--slots", f->slots, "GPU slots per layer: a count or a percentage of the experts (25%)")->required();
  cmd->add_option("--policy", f->policies, "Policies to run: all, or a comma list of static, lru, lfu, router, belady")
      ->capture_default_str();
  cmd->add_option("--uploads", f->uploads, "Uploads granted per layer per token (fractional rates accumulate), or unlimited")
      ->capture_default_str();
  cmd->add_option("--stats", f->stats, "Router statistics file: static ranks by it, lfu/router start from it "
                                      "(default: static ranks by the whole trace, the best fixed placement)");
  cmd->add_option("--half-life", f->router_half_life, "Router policy: score half-life in tokens (default: 8 x experts / k)");
  cmd->add_option("--margin", f->margin, "Router policy: hysteresis margin (0.25 = 25%)")->capture_default_str();
  cmd->add_option("--lfu-half-life", f->lfu_half_life, "LFU: count half-life in tokens (default: as the router's)");
  cmd->add_flag("--synthetic", f->synthetic, "Generate the trace (Zipf popularity with drift and bursts) instead of reading one");
  cmd->add_option("--shape", f->shape, "Synthetic: model shape 20b or 120b (layers, experts, k)")->capture_default_str();
  cmd->add_option("--layers", f->layers, "Synthetic: override the shape's layers");
  cmd->add_option("--experts", f->experts, "Synthetic: override the shape's experts per layer");
  cmd->add_option("--k", f->k, "Synthetic: override the shape's experts per token");
  cmd->add_option("--skew", f->synth.skew, "Synthetic: Zipf exponent S of expert popularity")->capture_default_str();
  cmd->add_option("--tokens", f->synth.tokens, "Synthetic: tokens to generate")->capture_default_str();
  cmd->add_option("--seed", f->synth.seed, "Synthetic: random seed")->capture_default_str();
  cmd->add_option("--drift", f->synth.drift, "Synthetic: probability per layer and token of an adjacent-rank swap")->capture_default_str();
  cmd->add_option("--segment", f->synth.segment_tokens, "Synthetic: mean tokens per burst segment")->capture_default_str();
  cmd->add_option("--burst-experts", f->synth.burst_experts, "Synthetic: experts boosted per layer and segment")->capture_default_str();
  cmd->add_option("--burst-boost", f->synth.burst_boost, "Synthetic: their weight factor")->capture_default_str();
  cmd->add_option("--save-trace", f->save_trace, "Write the trace replayed to this file");
  cmd->add_flag("--json", f->json, "Print the results as JSON");
  cmd->footer("Examples:\n  ossrun simulate routing.trace --slots 25%\n"
              "  ossrun simulate --synthetic --shape 120b --skew 1.0 --tokens 20000 --slots 50% --uploads 1");
  cmd->callback([f] { run_simulate(*f); });
}

}  // namespace ossrun::cli
