// `ossrun stats --model DIR`: the saved router statistics (which experts each layer routes to, how often)
// as a text summary on stdout and, with --svg/--png, a per-layer x per-expert popularity heatmap.
//
// The statistics come from DIR/.ossrun/router_stats.json (or the cache's copy, router_stats_io.h), from
// --stats FILE, or are counted from a routing trace with --from-trace TRACE (`ossrun simulate --synthetic
// --save-trace` makes one), so a heatmap can always be seen.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "offload/router_stats_io.h"
#include "offload/trace.h"
#include "src/cli/commands.h"
#include "src/model/config.h"
#include "src/model/error.h"
#include "src/model/json_file.h"
#include "src/stats/expert_popularity.h"
#include "src/stats/heatmap_png.h"
#include "src/stats/heatmap_svg.h"
#include "src/stats/summary.h"
#include "src/tokenizer/data_paths.h"

namespace ossrun::cli {
namespace {

namespace fs = std::filesystem;

struct StatsFlags {
  std::string model, stats, trace, svg, png, save_stats;
  bool sort = false;
  int slots = 0;  // 0: the model's top-k
  int top = 4;
};

// The statistics file, read strictly: unlike the engine's loader (which starts fresh), a missing or corrupt
// file is an error here. layers/experts: the model's shape, or 0 to take the file's own.
offload::RouterStats read_stats_file(const fs::path& file, int layers, int experts) {
  const nlohmann::json j = read_json_file(file, "router statistics");
  try {
    if (layers == 0) layers = j.at("layers").get<int>();
    if (experts == 0) experts = j.at("experts").get<int>();
    return offload::router_stats_from_json(j, layers, experts);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file.string() + ": not router statistics: " + e.what());
  } catch (const InputError& e) {
    throw InputError(file.string() + ": " + e.what());
  }
}

[[noreturn]] void no_stats(const std::string& model, const ModelConfig& c, const fs::path& a, const fs::path& b) {
  throw InputError("no router statistics for " + model + " (looked for " + a.string() + " and " + b.string() +
                   "). Count them from a routing trace instead, e.g. a synthetic one of the model's shape:\n"
                   "  ossrun simulate --synthetic --layers " + std::to_string(c.num_hidden_layers) + " --experts " +
                   std::to_string(c.num_local_experts) + " --k " + std::to_string(c.num_experts_per_tok) +
                   " --slots 25% --policy static --save-trace routing.trace\n"
                   "  ossrun stats --model " + model + " --from-trace routing.trace --svg heatmap.svg");
}

struct LoadedStats {
  offload::RouterStats stats;
  std::string source;
};

LoadedStats load(const StatsFlags& f, const ModelConfig* config) {
  const int layers = config ? static_cast<int>(config->num_hidden_layers) : 0;
  const int experts = config ? static_cast<int>(config->num_local_experts) : 0;
  if (!f.trace.empty()) {
    const offload::Trace t = offload::read_trace(f.trace);
    const offload::TraceShape want{layers, experts, config ? static_cast<int>(config->num_experts_per_tok) : 0};
    if (config && t.shape() != want)
      throw InputError(f.trace + ": a trace of " + std::to_string(t.shape().layers) + " layers x " +
                       std::to_string(t.shape().experts) + " experts, top-" + std::to_string(t.shape().k) + ", but " +
                       f.model + " has " + std::to_string(layers) + " x " + std::to_string(experts) + ", top-" +
                       std::to_string(want.k));
    return {stats::router_stats_from_trace(t), f.trace + " (trace, " + std::to_string(t.tokens()) + " tokens)"};
  }
  if (!f.stats.empty()) return {read_stats_file(f.stats, layers, experts), f.stats};
  const fs::path in_model = offload::model_dir_stats_path(f.model);
  const fs::path in_cache = offload::cache_stats_path(f.model, ossrun_cache_dir());
  for (const fs::path& p : {in_model, in_cache})
    if (fs::exists(p)) return {read_stats_file(p, layers, experts), p.string()};
  no_stats(f.model, *config, in_model, in_cache);
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw InputError(file.string() + ": cannot write");
}

void run_stats(const StatsFlags& f) {
  if (f.model.empty() && f.stats.empty() && f.trace.empty())
    throw CLI::ValidationError("--model", "give --model DIR, --stats FILE or --from-trace TRACE");
  if (!f.stats.empty() && !f.trace.empty()) throw CLI::ValidationError("--stats", "give --stats or --from-trace, not both");
  std::optional<ModelConfig> config;
  if (!f.model.empty()) config = load_model_config(fs::path(f.model) / "config.json");
  const LoadedStats loaded = load(f, config ? &*config : nullptr);
  if (!f.save_stats.empty()) offload::save_router_stats(f.save_stats, loaded.stats);

  const stats::ExpertPopularity p =
      stats::popularity_from_stats(loaded.stats, config ? static_cast<int>(config->num_experts_per_tok) : 0);
  if (p.evidence_tokens <= 0) throw InputError(loaded.source + ": the statistics hold no tokens yet");
  std::fputs(stats::format_summary(p, loaded.source, {.slots = f.slots > 0 ? f.slots : p.k, .top = f.top}).c_str(), stdout);

  const stats::HeatmapOptions options{.title = f.model.empty() ? loaded.source : f.model,
                                      .order = f.sort ? stats::ExpertOrder::ByShare : stats::ExpertOrder::ById};
  if (!f.svg.empty()) {
    write_text(f.svg, stats::render_heatmap_svg(p, options));
    std::printf("wrote %s\n", f.svg.c_str());
  }
  if (!f.png.empty()) {
    stats::write_png(f.png, stats::render_heatmap_image(p, options));
    std::printf("wrote %s\n", f.png.c_str());
  }
}

}  // namespace

void add_stats_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("stats", "Show the router statistics: expert popularity per layer, as text and a heatmap");
  auto f = std::make_shared<StatsFlags>();
  cmd->add_option("--model", f->model, "Checkpoint directory: its saved statistics (DIR/.ossrun/router_stats.json) and shape");
  cmd->add_option("--stats", f->stats, "Router statistics file to read instead");
  cmd->add_option("--from-trace", f->trace, "Count the statistics from a routing trace (simulate --save-trace writes one)");
  cmd->add_option("--svg", f->svg, "Write the heatmap as SVG");
  cmd->add_option("--png", f->png, "Write the heatmap as PNG");
  cmd->add_flag("--sort", f->sort, "Heatmap: order each layer's experts by popularity instead of by id");
  cmd->add_option("--slots", f->slots, "GPU slots per layer for the hit-rate column (default: the model's top-k)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--top", f->top, "Experts listed per layer (default 4)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--save-stats", f->save_stats, "Also save the statistics read or counted as a JSON file (for plan --stats)");
  cmd->footer("Examples:\n  ossrun stats --model ~/models/gpt-oss-20b --svg heatmap.svg --png heatmap.png\n"
              "  ossrun stats --model ~/models/gpt-oss-20b --sort --slots 8\n"
              "  ossrun simulate --synthetic --shape 20b --skew 1.2 --slots 25% --save-trace t.trace\n"
              "  ossrun stats --from-trace t.trace --svg heatmap.svg --save-stats stats.json");
  cmd->callback([f] { run_stats(*f); });
}

}  // namespace ossrun::cli
