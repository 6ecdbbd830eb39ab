// Flags shared by the commands that run the model (generate, logits, perplexity, bench decode, chat): the
// checkpoint, the budgets, context, threads, cache policy and backend, a hardware profile that sets any of
// them, and -q/-v; and the one place that turns them into an engine Session.
//
// Order of precedence: a flag given on the command line, then the profile's value (--profile), then the
// command's default (budgets: detected at start).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "src/cli/profile.h"
#include "src/engine/session.h"
#include "src/model/checkpoint.h"

namespace ossrun::cli {

struct SessionFlags {
  std::string model;              // checkpoint directory
  std::string vram, ram;          // sizes as typed ("6G"); parsed by resolve_session
  int64_t ctx = 0;                // 0: the command's default
  int threads = 0;                // 0: one per core
  std::string profile;            // NAME or FILE
  std::string policy = "router";  // static, lru, lfu, router
  std::string backend = "auto";   // auto, cpu, gpu
  std::string trace;              // --trace FILE: record every token's routing (OSSTRACE)
  bool quiet = false;             // no start-up line, no progress
  bool verbose = false;           // also the settings and where each came from
  const CLI::App* cmd = nullptr;  // set by add_session_flags: tells a given flag from a default
};

// Adds --model (required), --vram, --ram, --ctx, --threads, --profile, --policy, --backend, -q/--quiet and
// -v/--verbose to cmd.
void add_session_flags(CLI::App& cmd, SessionFlags& f, const std::string& ctx_help);

// The profile named by --profile (none: an empty Profile) with every flag given on the command line applied
// over it. Bad sizes and profiles are InputErrors naming the flag or the file.
Profile resolve_session(const SessionFlags& f);

// "profile laptop-8gb.toml; vram 6.00 GiB (profile), ram detected, ctx 8192 (flag), ...": for --verbose.
std::string describe_settings(const SessionFlags& f, const Profile& resolved);

// The engine's options for resolved settings; ctx when unset: default_ctx capped at max_position_embeddings.
// vram = 0 means CPU only (an InputError with --backend gpu).
engine::SessionOptions session_options(const SessionSettings& s, const ModelConfig& c, int64_t default_ctx);

// Opens the checkpoint and a session over it, showing loading progress on stderr, then prints what runs
// where (Session::describe()) to stderr; -q: nothing; -v: the settings first.
struct OpenModel {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<engine::Session> session;
  Profile profile;  // the resolved settings (and the profile's [chat] defaults)
};
OpenModel open_model(const SessionFlags& f, int64_t default_ctx);

}  // namespace ossrun::cli
