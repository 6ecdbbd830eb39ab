#include "src/chat/context_policy.h"

#include <algorithm>

namespace ossrun::chat {

int64_t answer_room(int64_t ctx, int64_t max_tokens) { return std::max<int64_t>(1, std::min(max_tokens, ctx / 4)); }

std::optional<size_t> turns_to_drop(size_t n_turns, int64_t ctx, int64_t room,
                                    const std::function<int64_t(size_t dropped)>& prompt_length) {
  // Dropping a turn never lengthens the prompt, so the first k that fits is the fewest.
  for (size_t k = 0; k < std::max<size_t>(n_turns, 1); ++k)
    if (prompt_length(k) + room <= ctx) return k;
  return std::nullopt;
}

}  // namespace ossrun::chat
