// What the chat does when the conversation no longer fits the context.
//
// Before each answer the prompt must leave room for the answer: prompt + answer_room(ctx, max_tokens) <= ctx,
// the room being --max-tokens but at most a quarter of the context. When it does not, the oldest turns (a user
// message and the assistant messages answering it) are dropped, one at a time, until it does; the system and
// developer messages (made from the settings) always stay, and the newest turn, the message being answered, is
// never dropped. When even the system and developer messages and the newest turn do not fit, the message is
// refused. An answer that fills the context while it is generated stops there and is kept, marked interrupted.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>

namespace ossrun::chat {

// Tokens kept free for the answer: min(max_tokens, ctx / 4), at least 1.
int64_t answer_room(int64_t ctx, int64_t max_tokens);

// n_turns: turns in the conversation (the last one is being answered). prompt_length(k): the prompt's length
// with the k oldest turns dropped. Returns the fewest turns to drop, or nullopt when even n_turns - 1 are not
// enough.
std::optional<size_t> turns_to_drop(size_t n_turns, int64_t ctx, int64_t room,
                                    const std::function<int64_t(size_t dropped)>& prompt_length);

}  // namespace ossrun::chat
