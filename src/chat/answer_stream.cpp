#include "src/chat/answer_stream.h"

namespace ossrun::chat {

AnswerStream::AnswerStream(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer), parser_(tokenizer), raw_decoder_(tokenizer) {}

Channel AnswerStream::channel_of(const std::string& name) const {
  if (name == "analysis") return Channel::kAnalysis;
  if (name == "commentary") return Channel::kCommentary;
  if (name == "final") return Channel::kFinal;
  return Channel::kOther;
}

AnswerDelta AnswerStream::push(TokenId id) {
  all_tokens_.push_back(id);
  if (raw_mode_) {
    std::string text = raw_decoder_.push(id);
    raw_text_ += text;
    return {Channel::kRaw, std::move(text)};
  }
  const bool was_content = parser_.in_content();
  const std::string channel = was_content ? parser_.current().message.channel : std::string();
  const size_t index = parser_.messages().size();
  std::string text = parser_.push(id);
  if (was_content && parser_.in_content()) {  // a content token (not the one that opened or ended the message)
    if (content_tokens_.size() <= index) content_tokens_.resize(index + 1);
    content_tokens_[index].push_back(id);
    if (channel == "analysis") ++analysis_tokens_;
  }
  header_tokens_ = parser_.in_header() ? header_tokens_ + 1 : 0;
  if (header_tokens_ > kMaxHeaderTokens) {
    // Not harmony: start over as plain text from the answer's first token.
    raw_mode_ = true;
    for (TokenId t : all_tokens_) raw_text_ += raw_decoder_.push(t);
    return {Channel::kRaw, raw_text_};
  }
  // A delta belongs to the message that was in content before the token (the token may have ended it).
  const Channel ch = channel_of(was_content ? channel : parser_.current().message.channel);
  return {ch, std::move(text)};
}

AnswerDelta AnswerStream::finish() {
  if (raw_mode_) {
    std::string text = raw_decoder_.finish();
    raw_text_ += text;
    return {Channel::kRaw, std::move(text)};
  }
  const bool was_content = parser_.in_content();
  const Channel ch = channel_of(parser_.current().message.channel);
  std::string text = parser_.finish();
  return {was_content ? ch : Channel::kOther, std::move(text)};
}

std::vector<ChatMessage> AnswerStream::messages(bool interrupted) const {
  std::vector<ChatMessage> out;
  if (raw_mode_) {
    if (!raw_text_.empty())
      out.push_back({.role = Role::kAssistant, .channel = "final", .content = raw_text_, .interrupted = interrupted, .tokens = {}});
    return out;
  }
  const auto& parsed = parser_.messages();
  for (size_t i = 0; i < parsed.size(); ++i) {
    const Message& m = parsed[i].message;
    if (m.role != Role::kAssistant || channel_of(m.channel) == Channel::kOther) continue;
    const std::string& text = m.text();
    if (text.empty()) continue;
    ChatMessage cm{.role = Role::kAssistant, .channel = m.channel, .content = text, .interrupted = false, .tokens = {}};
    if (i < content_tokens_.size()) cm.tokens = content_tokens_[i];
    out.push_back(std::move(cm));
  }
  if (interrupted && !out.empty()) out.back().interrupted = true;
  return out;
}

}  // namespace ossrun::chat
