#include "src/cli/session_flags.h"

#include <algorithm>
#include <cstdio>

#include "offload/byte_size.h"
#include "src/cli/progress.h"
#include "src/model/error.h"

namespace ossrun::cli {
namespace {

bool given(const SessionFlags& f, const char* flag) { return f.cmd && f.cmd->count(flag) > 0; }

engine::Backend parse_backend(const std::string& name) {
  if (name == "cpu") return engine::Backend::Cpu;
  if (name == "gpu") return engine::Backend::Gpu;
  if (name == "auto") return engine::Backend::Auto;
  throw InputError("backend \"" + name + "\" is not one of auto, cpu, gpu");
}

}  // namespace

void add_session_flags(CLI::App& cmd, SessionFlags& f, const std::string& ctx_help) {
  f.cmd = &cmd;
  cmd.add_option("--model", f.model, "Checkpoint directory (config.json, *.safetensors)")->required();
  cmd.add_option("--profile", f.profile, "Hardware profile: a name (laptop-8gb, desktop-12gb, workstation-24gb, gpu-80gb, "
                                         "cpu-only; see configs/) or a TOML file. Flags given here override it");
  cmd.add_option("--vram", f.vram, "GPU memory ossrun may use, e.g. 6G (0: CPU only; default: free memory less headroom)");
  cmd.add_option("--ram", f.ram, "RAM ossrun may pin, allocate or lock, e.g. 24G (default: available less headroom)");
  cmd.add_option("--ctx", f.ctx, ctx_help)->check(CLI::PositiveNumber);
  cmd.add_option("--threads", f.threads, "Worker threads (default: one per core)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--policy", f.policy, "Expert-cache policy of the GPU offload (default router)")
      ->check(CLI::IsMember({"static", "lru", "lfu", "router"}));
  cmd.add_option("--backend", f.backend, "Where the model runs: auto (the GPU when there is one), cpu or gpu (default auto)")
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  cmd.add_option("--trace", f.trace, "Record every token's routing into FILE (for `ossrun simulate` and `ossrun stats "
                                     "--from-trace`; needs the GPU backend)");
  auto* quiet = cmd.add_flag("-q,--quiet", f.quiet, "No start-up line, no loading progress");
  cmd.add_flag("-v,--verbose", f.verbose, "Also print the settings and where each came from (flag, profile, default)")->excludes(quiet);
}

Profile resolve_session(const SessionFlags& f) {
  Profile p = f.profile.empty() ? Profile{} : load_profile(f.profile);
  SessionSettings& s = p.session;
  if (given(f, "--vram")) s.vram = offload::parse_byte_size(f.vram, "--vram");
  if (given(f, "--ram")) s.ram = offload::parse_byte_size(f.ram, "--ram");
  if (given(f, "--ctx")) s.ctx = f.ctx;
  if (given(f, "--threads")) s.threads = f.threads;
  if (given(f, "--policy")) s.policy = f.policy;
  if (given(f, "--backend")) s.backend = f.backend;
  return p;
}

std::string describe_settings(const SessionFlags& f, const Profile& resolved) {
  const SessionSettings& s = resolved.session;
  auto source = [&](const char* flag, bool set) -> std::string { return given(f, flag) ? " (flag)" : set ? " (profile)" : ""; };
  auto size = [](const std::optional<uint64_t>& v) {
    return !v ? std::string("detected") : *v ? offload::format_bytes(*v) : std::string("0 (CPU only)");
  };
  std::string out = "settings: profile " + (resolved.source.empty() ? std::string("none") : resolved.source);
  out += "; vram " + size(s.vram) + source("--vram", s.vram.has_value());
  out += ", ram " + size(s.ram) + source("--ram", s.ram.has_value());
  out += ", ctx " + (s.ctx ? std::to_string(*s.ctx) : std::string("command default")) + source("--ctx", s.ctx.has_value());
  out += ", threads " + (s.threads && *s.threads ? std::to_string(*s.threads) : std::string("one per core")) +
         source("--threads", s.threads.has_value());
  out += ", policy " + s.policy.value_or("router") + source("--policy", s.policy.has_value());
  out += ", backend " + s.backend.value_or("auto") + source("--backend", s.backend.has_value());
  out += ", prefill batch " + std::to_string(s.prefill_batch.value_or(engine::SessionOptions{}.prefill_batch)) +
         (s.prefill_batch ? " (profile)" : "");
  return out;
}

engine::SessionOptions session_options(const SessionSettings& s, const ModelConfig& c, int64_t default_ctx) {
  engine::SessionOptions o;
  o.ctx = s.ctx ? *s.ctx : std::min(default_ctx, c.max_position_embeddings);
  o.threads = s.threads.value_or(0);
  if (s.prefill_batch) o.prefill_batch = *s.prefill_batch;
  o.backend = parse_backend(s.backend.value_or("auto"));
  if (s.vram && *s.vram == 0) {
    // The engine reads a budget of 0 as "detect"; a budget of 0 typed by the user means no GPU.
    if (o.backend == engine::Backend::Gpu) throw InputError("--vram 0 leaves no GPU memory for --backend gpu");
    o.backend = engine::Backend::Cpu;
  }
  o.vram_budget = s.vram.value_or(0);
  o.ram_budget = s.ram.value_or(0);
  o.policy = s.policy.value_or("router");
  return o;
}

OpenModel open_model(const SessionFlags& f, int64_t default_ctx) {
  OpenModel m;
  m.profile = resolve_session(f);
  if (f.verbose) std::fprintf(stderr, "%s\n", describe_settings(f, m.profile).c_str());
  m.checkpoint = Checkpoint::open(f.model);
  engine::SessionOptions options = session_options(m.profile.session, m.checkpoint->config(), default_ctx);
  options.trace = f.trace;
  auto progress = std::make_shared<ProgressReporter>(progress_mode(f.quiet));
  options.on_progress = [progress](const engine::LoadProgress& p) { progress->update(p); };
  m.session = std::make_unique<engine::Session>(*m.checkpoint, options);
  progress->finish();
  if (!f.quiet)
    std::fprintf(stderr, "%s; context %lld\n", m.session->describe().c_str(), static_cast<long long>(m.session->ctx()));
  return m;
}

}  // namespace ossrun::cli
