// A streaming parser of gpt-oss output into harmony messages (spec §8.3), token by token, as openai/harmony's
// StreamableParser reads it: the header (role or tool name, recipient "to=...", <|channel|>, content type,
// possibly "<|constrain|>json") up to <|message|>, then content up to <|end|>, <|return|> or <|call|>.
//
// It never throws on model output. What harmony's strict mode rejects (a token outside a message, a header
// without <|message|>, an unknown role, leftover header words, a special token inside content) or what the
// system message forbids (an assistant message without a channel) yields a best-effort message with
// `malformed` set and the problems listed.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "src/tokenizer/harmony.h"
#include "src/tokenizer/streaming_decoder.h"

namespace ossrun {

enum class MessageEnd {
  kEnd,        // <|end|>: another message may follow
  kReturn,     // <|return|>: the final answer is complete (stop)
  kCall,       // <|call|>: a tool call is complete (stop)
  kUnfinished  // the stream ended first (finish() was called)
};

struct ParsedMessage {
  Message message;  // role, tool name, recipient, channel, content type, text content (valid UTF-8)
  MessageEnd end = MessageEnd::kUnfinished;
  bool malformed = false;
  std::vector<std::string> problems;
};

// Keeps a reference to the tokenizer, which must outlive it.
class HarmonyStreamParser {
 public:
  // `next_role`: the role whose header starts the stream without a <|start|> (the prompt ended with
  // <|start|>assistant); nullopt when the stream itself begins with <|start|>.
  HarmonyStreamParser(const Tokenizer& tokenizer, std::optional<Role> next_role = Role::kAssistant);

  // Feeds one token. Returns the content text it completed (empty in headers, or when the token ends inside a
  // UTF-8 character); the concatenation of a message's deltas (push and finish) is its content.
  std::string push(TokenId token);
  // Ends the stream: a message in progress is closed as kUnfinished. Returns the content text this completed
  // (held-back bytes of a broken character, as U+FFFD).
  std::string finish();

  const std::vector<ParsedMessage>& messages() const { return messages_; }
  // The message being read (its header is known once in_content()).
  const ParsedMessage& current() const { return current_; }
  bool in_header() const { return state_ == State::kHeader; }
  bool in_content() const { return state_ == State::kContent; }
  // True after <|return|> or <|call|>.
  bool stopped() const { return stopped_; }

 private:
  enum class State { kExpectStart, kHeader, kContent };

  void begin_header(std::optional<Role> role);
  // Fills the current message's header fields from the header tokens. Without <|message|> (`complete` false)
  // the words after the role and channel are content, as harmony's non-strict mode reads them.
  void parse_header(bool complete);
  void end_message(MessageEnd end);
  void flag(std::string problem);
  void stray_token(TokenId token);
  std::string append_content(TokenId token);

  const Tokenizer& tokenizer_;
  TokenId start_, end_, message_, channel_, constrain_, return_, call_;
  State state_ = State::kExpectStart;
  std::optional<Role> header_role_;  // a role known before the header text (the stream's first message)
  std::vector<TokenId> header_tokens_;
  ParsedMessage current_;
  std::string content_;  // the current content's bytes so far
  StreamingDecoder decoder_;
  std::vector<ParsedMessage> messages_;
  std::vector<std::string> pending_problems_;  // stray tokens seen before the first message
  bool stopped_ = false;
};

}  // namespace ossrun
