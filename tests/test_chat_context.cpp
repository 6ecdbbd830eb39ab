// The chat's context policy: room for the answer, and the fewest oldest turns to drop.
#include <doctest/doctest.h>

#include <vector>

#include "src/chat/context_policy.h"
#include "src/chat/conversation.h"

using namespace ossrun::chat;

TEST_CASE("chat context: the answer's room is --max-tokens, at most a quarter of the context") {
  CHECK(answer_room(4096, 256) == 256);
  CHECK(answer_room(4096, 100000) == 1024);
  CHECK(answer_room(3, 100) == 1);
}

TEST_CASE("chat context: drop the fewest oldest turns, refuse when the newest alone does not fit") {
  // Fixed part 100 tokens, turns of 50, 40, 30 and a newest of 20: prompt length with k turns dropped.
  const std::vector<int64_t> turn = {50, 40, 30, 20};
  std::vector<size_t> asked;
  const auto length = [&](size_t dropped) {
    asked.push_back(dropped);
    int64_t n = 100;
    for (size_t i = dropped; i < turn.size(); ++i) n += turn[i];
    return n;
  };
  CHECK(turns_to_drop(4, 300, 60, length) == 0u);  // 240 + 60 fits
  CHECK(turns_to_drop(4, 299, 60, length) == 1u);  // 190 + 60
  CHECK(turns_to_drop(4, 220, 60, length) == 2u);  // 150 + 60
  CHECK(turns_to_drop(4, 180, 60, length) == 3u);  // 120 + 60: only the newest turn left
  asked.clear();
  CHECK(!turns_to_drop(4, 179, 60, length));       // even the newest turn does not fit
  CHECK(asked == std::vector<size_t>{0, 1, 2, 3});  // the newest turn itself is never dropped
  CHECK(!turns_to_drop(1, 100, 1, length));
}

TEST_CASE("chat context: turns start at each user message") {
  Conversation c;
  const auto add = [&](ossrun::Role r) { c.messages.push_back({.role = r, .channel = r == ossrun::Role::kUser ? "" : "final", .content = "x", .interrupted = false, .tokens = {}}); };
  add(ossrun::Role::kUser);
  add(ossrun::Role::kAssistant);
  add(ossrun::Role::kAssistant);
  add(ossrun::Role::kUser);
  add(ossrun::Role::kUser);
  add(ossrun::Role::kAssistant);
  CHECK(c.turn_starts() == std::vector<size_t>{0, 3, 4});
}
