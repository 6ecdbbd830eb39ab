// The streaming harmony parser: the spec's model-output vector (§8.5), harmony's parser tests (tool calls with
// the recipient in either place, adjacent <|constrain|>, tool results, split UTF-8), and malformed output,
// which yields flagged best-effort messages and never an exception.
#include <doctest/doctest.h>

#include <random>

#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/harmony_parser.h"
#include "src/tokenizer/utf8.h"

namespace ossrun {
namespace {

const Tokenizer& o200k() {
  static const Tokenizer tokenizer = Tokenizer::from_tiktoken(default_tiktoken_path());
  return tokenizer;
}

// Parses `tokens` (after a prompt ending in <|start|>{next_role}), ends the stream, and returns the messages.
// Also checks that the streamed deltas add up to each message's content.
std::vector<ParsedMessage> parse(const std::vector<TokenId>& tokens, std::optional<Role> next_role = Role::kAssistant) {
  HarmonyStreamParser p(o200k(), next_role);
  std::string streamed;
  size_t closed = 0;
  auto check_closed = [&] {
    for (; closed < p.messages().size(); ++closed) {
      CHECK(streamed == std::get<std::string>(p.messages()[closed].message.content));
      streamed.clear();
    }
  };
  for (TokenId t : tokens) {
    streamed += p.push(t);
    CHECK(utf8::is_valid(streamed));
    check_closed();
  }
  streamed += p.finish();
  check_closed();
  return p.messages();
}

std::vector<TokenId> with_specials(const std::string& text) { return o200k().encode_with_specials(text); }

const std::string& content(const ParsedMessage& m) { return std::get<std::string>(m.message.content); }

}  // namespace

TEST_CASE("harmony parser: the spec's model output (§8.5)") {
  HarmonyStreamParser p(o200k());
  const std::vector<TokenId> output = {200005, 35644, 200008, 1844, 31064, 25, 392, 4827, 382, 220, 17, 659,
                                       220, 17, 16842, 12295, 81645, 13, 51441, 6052, 13, 200007, 200006, 173781,
                                       200005, 17196, 200008, 17, 659, 220, 17, 314, 220, 19, 13, 200002};
  std::string final_text;
  for (TokenId t : output) {
    std::string delta = p.push(t);
    if (p.in_content() && p.current().message.channel == "final") final_text += delta;
  }
  CHECK(p.stopped());
  REQUIRE(p.messages().size() == 2);
  const ParsedMessage& analysis = p.messages()[0];
  CHECK(analysis.message.role == Role::kAssistant);
  CHECK(analysis.message.channel == "analysis");
  CHECK(content(analysis) == "User asks: \"What is 2 + 2?\" Simple arithmetic. Provide answer.");
  CHECK(analysis.end == MessageEnd::kEnd);
  CHECK_FALSE(analysis.malformed);
  const ParsedMessage& final_answer = p.messages()[1];
  CHECK(final_answer.message.channel == "final");
  CHECK(content(final_answer) == "2 + 2 = 4.");
  CHECK(final_answer.end == MessageEnd::kReturn);
  CHECK_FALSE(final_answer.malformed);
}

TEST_CASE("harmony parser: tool calls, recipient and content type in every place") {
  // harmony's test_simple_tool_call: the stream ends without a stop token.
  auto msgs = parse({200005, 35644, 200008, 1844, 31064, 25, 392, 4827, 382, 290, 11122, 306, 40510, 16842, 1416,
                     1309, 316, 1199, 37342, 170154, 4584, 13, 200007, 200006, 173781, 200005, 35644, 316, 28, 29712,
                     170154, 3490, 200008, 10848, 7693, 1243, 392, 173844, 18583});
  REQUIRE(msgs.size() == 2);
  CHECK(content(msgs[0]) == "User asks: \"What is the weather in Tokyo?\" We need to use lookup_weather tool.");
  CHECK(msgs[1].message.channel == "analysis");
  CHECK(msgs[1].message.recipient == "lookup_weather");
  CHECK(msgs[1].message.content_type == "code");
  CHECK(content(msgs[1]) == "{\"location\": \"Tokyo\"}");
  CHECK(msgs[1].end == MessageEnd::kUnfinished);
  CHECK_FALSE(msgs[1].malformed);

  // docs/format.md: the model's order, recipient after the channel, space before <|constrain|>.
  msgs = parse(with_specials("<|channel|>analysis<|message|>Need to use function get_weather.<|end|><|start|>assistant"
                             "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
                             "{\"location\":\"San Francisco\"}<|call|>"));
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[1].message.recipient == "functions.get_weather");
  CHECK(msgs[1].message.content_type == "<|constrain|>json");
  CHECK(msgs[1].message.channel == "commentary");
  CHECK(content(msgs[1]) == "{\"location\":\"San Francisco\"}");
  CHECK(msgs[1].end == MessageEnd::kCall);
  CHECK_FALSE(msgs[1].malformed);

  // harmony's tests with <|constrain|> right after the recipient, in either place.
  for (const char* text :
       {"<|start|>assistant<|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>{}<|call|>",
        "<|start|>assistant to=functions.get_weather<|channel|>commentary<|constrain|>json<|message|>{}<|end|>"}) {
    msgs = parse(with_specials(text), std::nullopt);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].message.role == Role::kAssistant);
    CHECK(msgs[0].message.recipient == "functions.get_weather");
    CHECK(msgs[0].message.channel == "commentary");
    CHECK(msgs[0].message.content_type == "<|constrain|>json");
    CHECK_FALSE(msgs[0].malformed);
  }

  // harmony's test_tool_response_parsing: a tool's message, its name in the role's place.
  msgs = parse(with_specials("<|start|>browser.search to=assistant<|channel|>commentary<|message|>"
                             "{\"result\": \"https://openai.com/\"}<|end|>"),
               std::nullopt);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].message.role == Role::kTool);
  CHECK(msgs[0].message.name == "browser.search");
  CHECK(msgs[0].message.recipient == "assistant");
  CHECK(msgs[0].message.channel == "commentary");
  CHECK(content(msgs[0]) == "{\"result\": \"https://openai.com/\"}");
}

TEST_CASE("harmony parser: UTF-8 split across tokens streams whole characters") {
  // 😀 is several tokens' worth of bytes when spelled out byte by byte.
  const Tokenizer& t = o200k();
  std::vector<TokenId> tokens = {harmony_token::kChannel};
  for (TokenId id : t.encode("final")) tokens.push_back(id);
  tokens.push_back(harmony_token::kMessage);
  const std::string emoji = "\xF0\x9F\x98\x80";
  for (char b : emoji) tokens.push_back(t.ranks().rank(std::string(1, b)));
  for (TokenId id : t.encode(" ok")) tokens.push_back(id);
  tokens.push_back(harmony_token::kReturn);
  HarmonyStreamParser p(t);
  std::vector<std::string> deltas;
  for (TokenId id : tokens) deltas.push_back(p.push(id));
  std::string all;
  for (const auto& d : deltas) {
    CHECK(utf8::is_valid(d));
    all += d;
  }
  CHECK(all == emoji + " ok");
  REQUIRE(p.messages().size() == 1);
  CHECK(content(p.messages()[0]) == emoji + " ok");

  // harmony's test_streamable_parser_flushes_partial_bytes_on_eos: token 9552 ends inside a character that
  // "Hi" does not complete, so it becomes U+FFFD.
  std::vector<TokenId> broken = with_specials("<|start|>assistant<|channel|>final<|message|>");
  broken.push_back(9552);
  for (TokenId id : t.encode("Hi")) broken.push_back(id);
  auto msgs = parse(broken, std::nullopt);
  REQUIRE(msgs.size() == 1);
  CHECK(content(msgs[0]) == " \xEF\xBF\xBDHi");
  CHECK(msgs[0].end == MessageEnd::kUnfinished);
}

TEST_CASE("harmony parser: malformed output gives flagged best-effort messages") {
  // harmony's test_missing_message_token_requires_non_strict_mode: no <|message|>, the rest is content.
  auto msgs = parse(with_specials("<|channel|>commentary Hello<|end|>"));
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].malformed);
  CHECK(msgs[0].message.channel == "commentary");
  CHECK(content(msgs[0]) == "Hello");

  // No channel.
  msgs = parse(with_specials("<|message|>Hi<|end|>"));
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].malformed);
  CHECK(content(msgs[0]) == "Hi");

  // A special token inside content stays as its text.
  msgs = parse(with_specials("<|channel|>final<|message|>Hello <|channel|> world<|return|>"));
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].malformed);
  CHECK(content(msgs[0]) == "Hello <|channel|> world");
  CHECK(msgs[0].end == MessageEnd::kReturn);

  // Unexpected words in the header.
  msgs = parse(with_specials("<|channel|>final extra words here<|message|>x<|end|>"));
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].malformed);
  CHECK(content(msgs[0]) == "x");

  // A new message before <|end|>, text outside any message, a stray stop token between messages, <|channel|>
  // without <|start|>.
  msgs = parse(with_specials("<|channel|>analysis<|message|>thinking<|start|>assistant<|channel|>final<|message|>A"
                             "<|end|>loose text<|end|><|end|><|channel|>final<|message|>B<|return|>"));
  REQUIRE(msgs.size() == 4);
  CHECK(content(msgs[0]) == "thinking");
  CHECK(msgs[0].malformed);
  CHECK(content(msgs[1]) == "A");
  CHECK(content(msgs[2]) == "loose text");
  CHECK(msgs[2].malformed);
  CHECK(content(msgs[3]) == "B");
  CHECK(msgs[3].malformed);
  CHECK(msgs[3].message.channel == "final");

  // Ids outside the vocabulary and an empty stream.
  msgs = parse({harmony_token::kChannel, 17196, harmony_token::kMessage, 999999, 17, harmony_token::kReturn});
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].malformed);
  CHECK(content(msgs[0]) == "2");
  CHECK(parse({}).empty());
}

TEST_CASE("harmony parser: random token streams never throw and always give valid UTF-8") {
  const Tokenizer& t = o200k();
  std::mt19937 rng(11);
  const std::vector<TokenId> specials = {200002, 200003, 200005, 200006, 200007, 200008, 200012, 199998, 200014};
  size_t messages = 0;
  for (int round = 0; round < 300; ++round) {
    HarmonyStreamParser p(t, round % 2 ? std::optional<Role>(Role::kAssistant) : std::nullopt);
    for (int i = 0; i < 60; ++i) {
      uint32_t pick = rng() % 10;
      TokenId id = pick < 3 ? specials[rng() % specials.size()] : pick < 4 ? TokenId(rng()) : TokenId(rng() % 199998);
      CHECK_NOTHROW(p.push(id));
    }
    CHECK_NOTHROW(p.finish());
    for (const ParsedMessage& m : p.messages()) {
      CHECK(utf8::is_valid(std::get<std::string>(m.message.content)));
      CHECK(utf8::is_valid(m.message.channel));
      ++messages;
    }
  }
  CHECK(messages > 300);
}

}  // namespace ossrun
