// `ossrun plan`: the memory plan for a model on this machine (or on budgets given by hand), before anything
// is loaded: what goes on the GPU, what in RAM, what stays behind the mmap.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "offload/byte_size.h"
#include "offload/host_memory.h"
#include "offload/memory_plan.h"
#include "offload/model_shapes.h"
#include "offload/plan_format.h"
#include "offload/router_stats_io.h"
#include "src/cli/commands.h"
#include "src/cli/profile.h"
#include "src/gpu/device.h"
#include "src/model/config.h"
#include "src/model/error.h"
#include "src/tokenizer/data_paths.h"

namespace ossrun::cli {
namespace {

struct PlanFlags {
  std::string model, shape, vram, ram, stats, profile;
  int64_t context = 8192;
  int64_t chunk = 512;
  bool json = false;
};

// A size flag, or CLI::ValidationError (exit code 2) naming the flag.
uint64_t size_flag(const std::string& text, const char* flag) {
  try {
    return offload::parse_byte_size(text, flag);
  } catch (const InputError& e) {
    throw CLI::ValidationError(std::string(e.what()));
  }
}

void run_plan(const PlanFlags& f, const CLI::App& cmd) {
  if (f.model.empty() == f.shape.empty()) throw CLI::ValidationError("--model", "give either --model DIR or --shape 20b|120b");
  // A profile's values stand in for the flags not given.
  const SessionSettings profile = f.profile.empty() ? SessionSettings{} : load_profile(f.profile).session;
  const std::string from_profile = "profile " + f.profile;
  offload::PlanRequest request;
  request.config = f.model.empty() ? offload::model_shape(f.shape)
                                   : load_model_config(std::filesystem::path(f.model) / "config.json");
  request.context = !cmd.count("--ctx") && profile.ctx ? *profile.ctx : f.context;
  request.prefill_chunk = !cmd.count("--chunk") && profile.prefill_batch ? *profile.prefill_batch : f.chunk;
  const ModelConfig& c = request.config;

  std::string vram_source, ram_source;
  if (!f.vram.empty()) {
    request.vram_budget = size_flag(f.vram, "--vram");
    vram_source = request.vram_budget ? "--vram" : "--vram 0: CPU-only";
  } else if (profile.vram) {
    request.vram_budget = *profile.vram;
    vram_source = from_profile + (request.vram_budget ? "" : ": CPU-only");
  } else if (const gpu::DeviceInfo& d = gpu::probe(); d.present) {
    request.vram_budget = offload::default_vram_budget(d.free_bytes, d.total_bytes);
    vram_source = "detected: " + gpu::describe(d) + ", less headroom";
  } else {
    vram_source = "CPU-only: " + gpu::describe(d) + " (give --vram to plan for a GPU)";
  }
  if (!f.ram.empty()) {
    request.ram_budget = size_flag(f.ram, "--ram");
    ram_source = "--ram";
  } else if (profile.ram) {
    request.ram_budget = *profile.ram;
    ram_source = from_profile;
  } else {
    const offload::HostMemory m = offload::read_host_memory();
    request.ram_budget = offload::default_ram_budget(m);
    ram_source = "detected: " + offload::format_bytes(m.available_bytes) + " available of " +
                 offload::format_bytes(m.total_bytes) + ", less headroom";
  }

  std::string stats_source = "none";
  std::optional<offload::LoadedRouterStats> loaded;
  const int L = static_cast<int>(c.num_hidden_layers), E = static_cast<int>(c.num_local_experts);
  if (!f.stats.empty()) {
    loaded = offload::load_router_stats(f.stats, L, E);
    if (!loaded->stats && loaded->warning.empty()) throw InputError(f.stats + ": no such router statistics file");
  } else if (!f.model.empty()) {
    loaded = offload::load_router_stats_for_model(f.model, L, E, ossrun_cache_dir());
  }
  if (loaded && !loaded->warning.empty()) std::fprintf(stderr, "ossrun: warning: %s\n", loaded->warning.c_str());
  if (loaded && loaded->stats) {
    const offload::RouterStats& s = *loaded->stats;
    request.expert_share.assign(L, std::vector<double>(E));
    for (int l = 0; l < L; ++l)
      for (int e = 0; e < E; ++e) request.expert_share[l][e] = s.share(l, e);
    request.stats_tokens = s.routed_tokens(0);
    stats_source = loaded->path.string() + " (" + std::to_string(s.tokens()) + " tokens)";
  }

  const offload::MemoryPlan plan = offload::plan_memory(request);
  if (f.json) {
    nlohmann::json j = offload::plan_to_json(plan);
    j["sources"] = {{"vram", vram_source}, {"ram", ram_source}, {"router_stats", stats_source}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("VRAM budget   %s (%s)\n", offload::format_bytes(request.vram_budget).c_str(), vram_source.c_str());
  std::printf("RAM budget    %s (%s)\n", offload::format_bytes(request.ram_budget).c_str(), ram_source.c_str());
  std::printf("router stats  %s\n\n", stats_source.c_str());
  std::fputs(offload::format_plan(plan).c_str(), stdout);
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "Show the memory plan (GPU, RAM, mmap) for a model before loading it");
  auto f = std::make_shared<PlanFlags>();
  cmd->add_option("--model", f->model, "Checkpoint directory (only config.json and saved router statistics are read)");
  cmd->add_option("--shape", f->shape, "Plan for a published shape without a checkpoint: 20b or 120b");
  cmd->add_option("--vram", f->vram, "GPU memory budget, e.g. 6G (0: CPU-only; default: the GPU's free memory less headroom)");
  cmd->add_option("--ram", f->ram, "RAM budget for pinned, allocated and locked memory, e.g. 24G (default: available less headroom)");
  cmd->add_option("--ctx", f->context, "Context length in tokens (KV cache size)")->capture_default_str();
  cmd->add_option("--chunk", f->chunk, "Prefill chunk: tokens per forward step")->capture_default_str();
  cmd->add_option("--stats", f->stats, "Router statistics file (default: the model directory's, or the cache's)");
  cmd->add_option("--profile", f->profile, "Hardware profile (a name in configs/ or a TOML file): its vram, ram, ctx and "
                                           "prefill_batch stand in for the flags not given");
  cmd->add_flag("--json", f->json, "Print the plan as JSON");
  cmd->footer("Examples:\n  ossrun plan --model ~/models/gpt-oss-20b --vram 6G --ram 24G --ctx 16384\n"
              "  ossrun plan --shape 120b --vram 24G --ram 64G --json\n"
              "  ossrun plan --shape 20b --profile laptop-8gb\n"
              "  ossrun plan --shape 120b --profile workstation-24gb --ctx 8192");
  cmd->callback([f, cmd] { run_plan(*f, *cmd); });
}

}  // namespace ossrun::cli
