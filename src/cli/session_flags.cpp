#include "src/cli/session_flags.h"

#include <algorithm>
#include <cstdio>

namespace ossrun::cli {

void add_session_flags(CLI::App& cmd, SessionFlags& f, const std::string& ctx_help) {
  cmd.add_option("--model", f.model, "Checkpoint directory (config.json, *.safetensors)")->required();
  cmd.add_option("--threads", f.threads, "Worker threads (default: one per core)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--ctx", f.ctx, ctx_help)->check(CLI::PositiveNumber);
}

OpenModel open_model(const SessionFlags& f, int64_t default_ctx) {
  OpenModel m;
  m.checkpoint = Checkpoint::open(f.model);
  const int64_t ctx = f.ctx > 0 ? f.ctx : std::min(default_ctx, m.checkpoint->config().max_position_embeddings);
  m.session = std::make_unique<engine::Session>(*m.checkpoint, engine::SessionOptions{.ctx = ctx, .threads = f.threads});
  std::fprintf(stderr, "%s; context %lld\n", m.session->describe().c_str(), static_cast<long long>(ctx));
  return m;
}

}  // namespace ossrun::cli
