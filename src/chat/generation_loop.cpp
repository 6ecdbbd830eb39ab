#include "src/chat/generation_loop.h"

#include <algorithm>
#include <chrono>

namespace ossrun::chat {

const char* stop_reason_text(StopReason r) {
  switch (r) {
    case StopReason::kStopToken: return "stop token";
    case StopReason::kMaxTokens: return "--max-tokens reached";
    case StopReason::kContextFull: return "context full";
    case StopReason::kInterrupted: return "interrupted";
  }
  return "?";
}

GenerationResult generate_tokens(engine::Session& s, int32_t first, const GenerationLimits& limits,
                                 const std::function<void(int32_t)>& on_token,
                                 const std::function<void(int32_t)>& on_decoded) {
  using Clock = std::chrono::steady_clock;
  GenerationResult r;
  const auto t0 = Clock::now();
  int32_t id = first;
  while (true) {
    if (r.generated >= limits.max_tokens) {
      r.reason = StopReason::kMaxTokens;
      break;
    }
    if (limits.interrupt && limits.interrupt->load()) {
      r.reason = StopReason::kInterrupted;
      break;
    }
    if (std::find(limits.stop_tokens.begin(), limits.stop_tokens.end(), id) != limits.stop_tokens.end()) {
      r.reason = StopReason::kStopToken;
      break;
    }
    on_token(id);
    ++r.generated;
    if (r.generated == limits.max_tokens) {
      r.reason = StopReason::kMaxTokens;
      break;
    }
    if (s.position() == s.ctx()) {
      r.reason = StopReason::kContextFull;
      break;
    }
    const int32_t next = s.decode_next(id);
    ++r.decoded;
    if (on_decoded) on_decoded(id);
    id = next;
  }
  r.decode_s = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

std::vector<int32_t> chat_stop_tokens(const engine::Session& s) {
  std::vector<int32_t> stop = {200002, 200012};  // <|return|>, <|call|>
  for (int64_t id : s.config().eos_token_ids) stop.push_back(static_cast<int32_t>(id));
  return stop;
}

}  // namespace ossrun::chat
