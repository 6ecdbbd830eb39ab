// The conversation as the token ids the model completes, and how much of them the session already holds.
//
// Reusing the KV cache: the session holds the tokens of the last prompt and answer. When the next prompt extends
// them (the usual case: the same history plus a new user message), only the new suffix is prefilled. An answer is
// rendered from the tokens that were sampled (when they decode to its text), not from a re-encoding of its text,
// so that a model that samples a non-canonical tokenization still extends the cache. Earlier turns' reasoning
// is kept by default for the same reason (HistoryReasoning::kKeep): harmony's training format drops it, but
// dropping it changes the middle of the prompt, and the sliding-window layers keep only the last window of
// positions, so the session cannot rewind to the change: every turn would prefill the whole conversation.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "src/chat/conversation.h"
#include "src/tokenizer/harmony.h"

namespace ossrun::chat {

enum class HistoryReasoning { kKeep, kDrop };

// Keeps a reference to the renderer, which must outlive it.
class ChatPromptRenderer {
 public:
  explicit ChatPromptRenderer(const HarmonyRenderer& renderer) : renderer_(renderer) {}

  // System message (effort, identity), developer message (when there are instructions), messages[first..],
  // then <|start|>assistant.
  std::vector<int32_t> render(const Conversation& c, size_t first_message, HistoryReasoning reasoning) const;

 private:
  const HarmonyRenderer& renderer_;
};

// The number of leading prompt tokens the session can keep: session.size() when the session's tokens are a
// proper prefix of the prompt (only the rest is prefilled), else 0 (reset, prefill everything).
size_t reusable_prefix(std::span<const int32_t> session, std::span<const int32_t> prompt);

}  // namespace ossrun::chat
