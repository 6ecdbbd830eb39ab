// The chat's prompt and KV-cache reuse: an answer read by AnswerStream and put back into the conversation renders
// to exactly the tokens the session holds, so the next turn prefills only the new message; non-harmony output
// streams as plain text.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "src/chat/answer_printer.h"
#include "src/chat/answer_stream.h"
#include "src/chat/chat_prompt.h"
#include "src/tokenizer/data_paths.h"

using namespace ossrun;
using namespace ossrun::chat;

namespace {

const Tokenizer& o200k() {
  static const Tokenizer tokenizer = Tokenizer::from_tiktoken(default_tiktoken_path());
  return tokenizer;
}

std::string decode(const Tokenizer& t, const std::vector<int32_t>& ids) {
  return t.decode(std::vector<TokenId>(ids.begin(), ids.end()));
}

void append(std::vector<TokenId>& out, const std::vector<TokenId>& ids) { out.insert(out.end(), ids.begin(), ids.end()); }

// What a model emits after "<|start|>assistant": an analysis message and a final one, the final answer's text
// split into single bytes (a tokenization the encoder would never choose), ended by <|return|>.
std::vector<TokenId> model_answer(const Tokenizer& t) {
  std::vector<TokenId> a = {t.special("<|channel|>")};
  append(a, t.encode("analysis"));
  a.push_back(t.special("<|message|>"));
  append(a, t.encode("The user greets me. Reply briefly."));
  a.push_back(t.special("<|end|>"));
  a.push_back(t.special("<|start|>"));
  append(a, t.encode("assistant"));
  a.push_back(t.special("<|channel|>"));
  append(a, t.encode("final"));
  a.push_back(t.special("<|message|>"));
  for (char c : std::string("Hello there!")) append(a, t.encode(std::string(1, c)));
  return a;  // the sampler returns <|return|> next, which is not decoded into the session
}

}  // namespace

TEST_CASE("chat prompt: reusable_prefix only when the session's tokens are a proper prefix") {
  const std::vector<int32_t> p = {1, 2, 3, 4};
  CHECK(reusable_prefix(std::vector<int32_t>{1, 2}, p) == 2);
  CHECK(reusable_prefix(std::vector<int32_t>{}, p) == 0);
  CHECK(reusable_prefix(std::vector<int32_t>{1, 3}, p) == 0);
  CHECK(reusable_prefix(p, p) == 0);  // nothing new to prefill: the logits must be recomputed
  CHECK(reusable_prefix(std::vector<int32_t>{1, 2, 3, 4, 5}, p) == 0);
}

TEST_CASE("chat prompt: the next turn extends the session's tokens, so only the new message is prefilled") {
  const Tokenizer& t = o200k();
  const HarmonyRenderer harmony(t);
  const ChatPromptRenderer renderer(harmony);
  Conversation c;
  c.settings.effort = ReasoningEffort::kLow;
  c.settings.developer = "Be brief.";
  c.messages.push_back({.role = Role::kUser, .channel = "", .content = "Hi!", .interrupted = false, .tokens = {}});

  std::vector<int32_t> session = renderer.render(c, 0, HistoryReasoning::kKeep);
  const std::string text = decode(t, session);
  CHECK(text.find("Reasoning: low") != std::string::npos);
  CHECK(text.find("# Instructions\n\nBe brief.") != std::string::npos);
  CHECK(text.ends_with("<|start|>user<|message|>Hi!<|end|><|start|>assistant"));

  AnswerStream stream(t);
  for (TokenId id : model_answer(t)) {
    stream.push(id);
    session.push_back(static_cast<int32_t>(id));
  }
  stream.push(t.special("<|return|>"));
  stream.finish();
  const std::vector<ChatMessage> answer = stream.messages(/*interrupted=*/false);
  REQUIRE(answer.size() == 2);
  CHECK(answer[0].channel == "analysis");
  CHECK(answer[1].channel == "final");
  CHECK(answer[1].content == "Hello there!");
  CHECK(answer[1].tokens.size() == 12);
  CHECK(!answer[1].interrupted);
  CHECK(stream.analysis_tokens() == t.encode("The user greets me. Reply briefly.").size());
  for (const ChatMessage& m : answer) c.messages.push_back(m);
  c.messages.push_back({.role = Role::kUser, .channel = "", .content = "And again?", .interrupted = false, .tokens = {}});

  const std::vector<int32_t> next = renderer.render(c, 0, HistoryReasoning::kKeep);
  REQUIRE(reusable_prefix(session, next) == session.size());
  const std::vector<TokenId> suffix(next.begin() + static_cast<std::ptrdiff_t>(session.size()), next.end());
  CHECK(t.decode(suffix) == "<|end|><|start|>user<|message|>And again?<|end|><|start|>assistant");

  // Re-encoding the answer's text instead (tokens unknown, as after /load) does not extend the session.
  Conversation loaded = c;
  for (ChatMessage& m : loaded.messages) m.tokens.clear();
  CHECK(reusable_prefix(session, renderer.render(loaded, 0, HistoryReasoning::kKeep)) == 0);
  // Nor does dropping the earlier reasoning (harmony's training format): the whole conversation is prefilled.
  const std::vector<int32_t> dropped = renderer.render(c, 0, HistoryReasoning::kDrop);
  CHECK(reusable_prefix(session, dropped) == 0);
  CHECK(decode(t, dropped).find("The user greets me") == std::string::npos);
  // Recorded tokens that do not decode to the message's text are not trusted.
  Conversation edited = c;
  edited.messages[2].content = "Edited.";
  CHECK(decode(t, renderer.render(edited, 0, HistoryReasoning::kKeep)).find("<|channel|>final<|message|>Edited.<|end|>") !=
        std::string::npos);
  // Dropping the first turn starts the messages at the second user message.
  const std::string tail = decode(t, renderer.render(c, 3, HistoryReasoning::kKeep));
  CHECK(tail.find("Hi!") == std::string::npos);
  CHECK(tail.find("Be brief.") != std::string::npos);
  CHECK(tail.ends_with("<|start|>user<|message|>And again?<|end|><|start|>assistant"));
}

TEST_CASE("chat answer stream: output that is not harmony streams as plain text from its first token") {
  const Tokenizer& t = o200k();
  AnswerStream stream(t);
  std::string text;
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    const std::string word = " word" + std::to_string(i);
    expected += word;
    for (TokenId id : t.encode(word)) {
      const AnswerDelta d = stream.push(id);
      if (!stream.raw()) CHECK(d.text.empty());
      if (stream.raw()) CHECK(d.channel == Channel::kRaw);
      text += d.text;
    }
  }
  text += stream.finish().text;
  CHECK(stream.raw());
  CHECK(text == expected);
  const auto messages = stream.messages(/*interrupted=*/true);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].channel == "final");
  CHECK(messages[0].content == expected);
  CHECK(messages[0].interrupted);
}

TEST_CASE("chat answer stream: an answer interrupted inside the final channel keeps its partial text") {
  const Tokenizer& t = o200k();
  AnswerStream stream(t);
  std::string final_text;
  std::vector<TokenId> ids = {t.special("<|channel|>")};
  append(ids, t.encode("final"));
  ids.push_back(t.special("<|message|>"));
  append(ids, t.encode("Partial answ"));
  for (TokenId id : ids) {
    const AnswerDelta d = stream.push(id);
    if (d.channel == Channel::kFinal) final_text += d.text;
  }
  final_text += stream.finish().text;
  CHECK(final_text == "Partial answ");
  const auto messages = stream.messages(/*interrupted=*/true);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].content == "Partial answ");
  CHECK(messages[0].interrupted);
}

TEST_CASE("chat answer printer: --reasoning show, hide and summary") {
  const Tokenizer& t = o200k();
  std::vector<TokenId> ids = {t.special("<|channel|>")};
  append(ids, t.encode("analysis"));
  ids.push_back(t.special("<|message|>"));
  append(ids, t.encode("Two plus two is four."));
  ids.push_back(t.special("<|end|>"));
  ids.push_back(t.special("<|start|>"));
  append(ids, t.encode("assistant"));
  ids.push_back(t.special("<|channel|>"));
  append(ids, t.encode("final"));
  ids.push_back(t.special("<|message|>"));
  append(ids, t.encode("4"));
  ids.push_back(t.special("<|return|>"));
  const auto run = [&](ReasoningDisplay mode) {
    std::string answer, reasoning, notes;
    AnswerStream stream(t);
    AnswerPrinter printer({.answer = [&](const std::string& s) { answer += s; },
                           .reasoning = [&](const std::string& s) { reasoning += s; },
                           .note = [&](const std::string& s) { notes += s + "|"; }},
                          mode);
    for (TokenId id : ids) printer.show(stream.push(id), stream);
    printer.show(stream.finish(), stream);
    printer.finish(stream);
    return std::vector<std::string>{answer, reasoning, notes};
  };
  const auto show = run(ReasoningDisplay::kShow);
  CHECK(show[0] == "4\n");
  CHECK(show[1] == "Two plus two is four.\n");
  CHECK(show[2].empty());
  const auto hide = run(ReasoningDisplay::kHide);
  CHECK(hide[0] == "4\n");
  CHECK(hide[1].empty());
  CHECK(hide[2].empty());
  const auto summary = run(ReasoningDisplay::kSummary);
  CHECK(summary[0] == "4\n");
  CHECK(summary[1].empty());
  const std::string expected = "(thought for " + std::to_string(t.encode("Two plus two is four.").size()) + " tokens, ";
  CHECK(summary[2].starts_with(expected));
  CHECK(summary[2].ends_with(" s)|"));
}
