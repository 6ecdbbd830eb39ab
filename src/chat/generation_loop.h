// The sampling loop shared by `ossrun generate` and `ossrun chat`: stop at a stop token, hand the token on,
// decode it and sample the next; until --max-tokens, a full context, or a stop request (Ctrl-C) checked between tokens.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "src/engine/session.h"

namespace ossrun::chat {

enum class StopReason { kStopToken, kMaxTokens, kContextFull, kInterrupted };
const char* stop_reason_text(StopReason r);  // "stop token", "--max-tokens reached", ...

struct GenerationLimits {
  int64_t max_tokens = 256;
  std::vector<int32_t> stop_tokens;                 // not handed on, not decoded
  const std::atomic<bool>* interrupt = nullptr;     // checked before each token; may be null
};

struct GenerationResult {
  StopReason reason = StopReason::kMaxTokens;
  int64_t generated = 0;  // tokens handed to on_token
  int64_t decoded = 0;    // of which fed back into the session (the last one is not, at --max-tokens)
  double decode_s = 0;
};

// Starts from `first`, the token the session sampled after the prompt (Session::set_sampler, then
// prefill_next), and draws each next one inside the session (Session::decode_next: on the GPU when the model
// runs there). on_token(id) is called for each sampled token; on_decoded(id) after it entered the session (for
// the caller's copy of the session's tokens).
GenerationResult generate_tokens(engine::Session& session, int32_t first, const GenerationLimits& limits,
                                 const std::function<void(int32_t)>& on_token,
                                 const std::function<void(int32_t)>& on_decoded = {});

// Harmony's stop tokens (<|return|>, <|call|>) and config.json's eos ids.
std::vector<int32_t> chat_stop_tokens(const engine::Session& session);

}  // namespace ossrun::chat
