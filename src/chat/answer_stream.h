// The model's answer, read token by token as harmony messages: each token's text with the channel it belongs to
// (for streaming: analysis dimmed, final plain), and at the end the assistant messages with the tokens of their
// content. Used by `ossrun chat` and `ossrun generate --chat`.
//
// Output that is not harmony: a real header is a few tokens ("<|channel|>final<|message|>"); when more than
// kMaxHeaderTokens arrive without <|message|> (a model that ignores the format, such as a synthetic checkpoint's
// random weights), the rest of the answer is read as plain text on channel kRaw, from its first token, so that
// it streams instead of appearing only at the end, and becomes one final message.
#pragma once
#include <string>
#include <vector>

#include "src/chat/conversation.h"
#include "src/tokenizer/harmony_parser.h"
#include "src/tokenizer/streaming_decoder.h"

namespace ossrun::chat {

enum class Channel { kAnalysis, kCommentary, kFinal, kRaw, kOther };

struct AnswerDelta {
  Channel channel = Channel::kOther;
  std::string text;
};

class AnswerStream {
 public:
  static constexpr size_t kMaxHeaderTokens = 32;

  // Keeps a reference to the tokenizer. The stream starts after "<|start|>assistant".
  explicit AnswerStream(const Tokenizer& tokenizer);

  AnswerDelta push(TokenId id);
  // Ends the answer; returns the text that was still held back.
  AnswerDelta finish();

  // After finish(): the assistant messages (analysis, commentary, final) with content; the last one marked
  // interrupted when `interrupted` (the answer was cut short).
  std::vector<ChatMessage> messages(bool interrupted) const;
  // Tokens read so far on the analysis channel (for "thought for N tokens").
  size_t analysis_tokens() const { return analysis_tokens_; }
  bool raw() const { return raw_mode_; }

 private:
  Channel channel_of(const std::string& name) const;

  const Tokenizer& tokenizer_;
  HarmonyStreamParser parser_;
  std::vector<std::vector<TokenId>> content_tokens_;  // by parsed message index
  std::vector<TokenId> all_tokens_;
  StreamingDecoder raw_decoder_;
  std::string raw_text_;
  size_t header_tokens_ = 0;
  size_t analysis_tokens_ = 0;
  bool raw_mode_ = false;
};

}  // namespace ossrun::chat
