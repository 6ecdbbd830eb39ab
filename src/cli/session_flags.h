// Flags shared by the commands that run the model (generate, logits, perplexity, bench decode): the
// checkpoint directory, threads and context, and the one place that turns them into an engine Session.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "src/engine/session.h"
#include "src/model/checkpoint.h"

namespace ossrun::cli {

struct SessionFlags {
  std::string model;    // checkpoint directory
  int threads = 0;      // 0: one per core
  int64_t ctx = 0;      // 0: the command's default
};

// Adds --model (required), --threads and --ctx to cmd.
void add_session_flags(CLI::App& cmd, SessionFlags& f, const std::string& ctx_help);

// Opens the checkpoint and a session over it with ctx (when f.ctx is 0, `default_ctx`, capped at the
// model's max_position_embeddings), then prints what runs where to stderr.
struct OpenModel {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<engine::Session> session;
};
OpenModel open_model(const SessionFlags& f, int64_t default_ctx);

}  // namespace ossrun::cli
