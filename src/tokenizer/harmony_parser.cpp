#include "src/tokenizer/harmony_parser.h"

#include <algorithm>

#include "src/tokenizer/unicode_classes.h"
#include "src/tokenizer/utf8.h"

namespace ossrun {
namespace {

constexpr std::string_view kChannelMarker = "<|channel|>";
constexpr std::string_view kConstrainMarker = "<|constrain|>";

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::vector<std::string> split_ascii_whitespace(const std::string& s) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_ascii_space(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !is_ascii_space(s[i])) ++i;
    if (i > start) parts.push_back(s.substr(start, i - start));
  }
  return parts;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_ascii_space(s[b])) ++b;
  while (e > b && is_ascii_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string strip_to(const std::string& part) { return part.starts_with("to=") ? part.substr(3) : part; }

}  // namespace

HarmonyStreamParser::HarmonyStreamParser(const Tokenizer& tokenizer, std::optional<Role> next_role)
    : tokenizer_(tokenizer),
      start_(tokenizer.special("<|start|>")),
      end_(tokenizer.special("<|end|>")),
      message_(tokenizer.special("<|message|>")),
      channel_(tokenizer.special("<|channel|>")),
      constrain_(tokenizer.special("<|constrain|>")),
      return_(tokenizer.special("<|return|>")),
      call_(tokenizer.special("<|call|>")),
      decoder_(tokenizer) {
  if (next_role) begin_header(next_role);
}

void HarmonyStreamParser::flag(std::string problem) {
  current_.malformed = true;
  current_.problems.push_back(std::move(problem));
}

void HarmonyStreamParser::begin_header(std::optional<Role> role) {
  state_ = State::kHeader;
  header_role_ = role;
  header_tokens_.clear();
  current_ = ParsedMessage{};
  content_.clear();
  decoder_.finish();
}

std::string HarmonyStreamParser::push(TokenId token) {
  const bool stop = token == end_ || token == return_ || token == call_;
  const MessageEnd end_kind = token == return_ ? MessageEnd::kReturn : token == call_ ? MessageEnd::kCall : MessageEnd::kEnd;
  switch (state_) {
    case State::kExpectStart:
      if (token == start_) {
        begin_header(std::nullopt);
      } else if (token == channel_) {
        // The model skipped "<|start|>assistant": read on as an assistant header.
        begin_header(Role::kAssistant);
        flag("<|channel|> without <|start|>");
        header_tokens_.push_back(token);
      } else if (tokenizer_.is_special(token) || !tokenizer_.contains(token)) {
        stray_token(token);
      } else {
        // Text outside any message: keep it as a headerless assistant message.
        begin_header(Role::kAssistant);
        flag("text without a message header");
        state_ = State::kContent;
        current_.message.role = Role::kAssistant;
        return append_content(token);
      }
      return {};
    case State::kHeader:
      if (token == message_) {
        parse_header(/*complete=*/true);
        state_ = State::kContent;
      } else if (token == start_) {
        flag("<|start|> inside a header");
        parse_header(/*complete=*/false);
        std::string delta = content_;
        end_message(MessageEnd::kUnfinished);
        begin_header(std::nullopt);
        return delta;
      } else if (stop) {
        // harmony's non-strict mode: a header closed without <|message|>; what follows the channel is content.
        flag("message header ended without <|message|>");
        parse_header(/*complete=*/false);
        std::string delta = content_;
        end_message(end_kind);
        return delta;
      } else {
        header_tokens_.push_back(token);
      }
      return {};
    case State::kContent:
      if (stop) {
        std::string rest = utf8::sanitize(decoder_.finish());
        content_ += rest;
        end_message(end_kind);
        return rest;
      }
      if (token == start_) {
        flag("<|start|> before the message ended");
        std::string rest = utf8::sanitize(decoder_.finish());
        content_ += rest;
        end_message(MessageEnd::kUnfinished);
        begin_header(std::nullopt);
        return rest;
      }
      if (tokenizer_.is_special(token)) flag("special token " + std::to_string(token) + " inside content");
      return append_content(token);
  }
  return {};
}

// A special token (or an id outside the vocabulary) between messages: a problem of the message before it, or of
// the next one when none came before.
void HarmonyStreamParser::stray_token(TokenId token) {
  std::string problem = "unexpected token " + std::to_string(token) + " between messages";
  if (messages_.empty()) {
    pending_problems_.push_back(std::move(problem));
  } else {
    messages_.back().malformed = true;
    messages_.back().problems.push_back(std::move(problem));
  }
  if (token == return_ || token == call_) stopped_ = true;
}

std::string HarmonyStreamParser::append_content(TokenId token) {
  if (!tokenizer_.contains(token)) {
    flag("token id " + std::to_string(token) + " is outside the vocabulary");
    return {};
  }
  // Text completed by this token; bytes that can never form a character become U+FFFD.
  std::string delta = utf8::sanitize(decoder_.push(token));
  content_ += delta;
  return delta;
}

void HarmonyStreamParser::parse_header(bool complete) {
  Message& m = current_.message;
  std::string header;
  for (TokenId t : header_tokens_)
    if (tokenizer_.contains(t)) tokenizer_.append_token(t, header);
  header = utf8::sanitize(header);

  // <|channel|>NAME, the name running to white space or '<'.
  if (size_t at = header.find(kChannelMarker); at != std::string::npos) {
    size_t begin = at + kChannelMarker.size(), end = begin;
    while (end < header.size() && header[end] != '<') {  // to white space (Unicode's, as Rust's) or '<'
      size_t len = std::max<size_t>(1, utf8::sequence_length(header, end));
      if (is_white_space(utf8::decode(reinterpret_cast<const unsigned char*>(header.data()) + end, len))) break;
      end += len;
    }
    m.channel = header.substr(begin, end - begin);
    if (m.channel.empty()) flag("<|channel|> without a channel name");
    header = header.substr(0, at) + header.substr(end);
    if (header.find(kChannelMarker) != std::string::npos) flag("more than one <|channel|> in the header");
  }
  header = trim(header);
  // "to=f<|constrain|>json": a space before the marker makes the content type a word of its own.
  std::string spaced;
  for (size_t from = 0;;) {
    size_t at = header.find(kConstrainMarker, from);
    spaced.append(header, from, at == std::string::npos ? std::string::npos : at - from);
    if (at == std::string::npos) break;
    spaced += ' ';
    spaced += kConstrainMarker;
    from = at + kConstrainMarker.size();
  }
  header = spaced;
  std::vector<std::string> parts = split_ascii_whitespace(header);

  Role role = Role::kAssistant;
  if (header_role_) {
    role = *header_role_;
    if (!parts.empty() && parts.front() == role_name(role)) parts.erase(parts.begin());
  } else if (parts.empty()) {
    flag("message header without a role");
  } else if (auto r = role_from_name(parts.front())) {
    role = *r;
    parts.erase(parts.begin());
  } else {
    // Not a role: a tool's name, as in "<|start|>functions.f to=assistant<|channel|>commentary".
    role = Role::kTool;
    m.name = parts.front();
    parts.erase(parts.begin());
  }
  m.role = role;

  if (!complete) {
    for (const auto& p : parts) {
      if (!content_.empty()) content_ += ' ';
      content_ += p;
    }
    parts.clear();
  }
  if (!parts.empty()) {
    const std::string last = parts.back();
    parts.pop_back();
    if (last.starts_with("to=")) {
      m.recipient = last.substr(3);
    } else if (parts.empty() && !last.starts_with(kConstrainMarker)) {
      m.recipient = last;  // a lone word: harmony reads it as the recipient
    } else {
      m.content_type = last;
      if (!parts.empty()) {
        m.recipient = strip_to(parts.back());
        parts.pop_back();
      }
    }
  }
  if (!parts.empty()) {
    std::string extra;
    for (const auto& p : parts) extra += (extra.empty() ? "" : " ") + p;
    flag("unexpected words in the message header: " + extra);
  }
  for (TokenId t : header_tokens_) {
    if (!tokenizer_.contains(t)) flag("token id " + std::to_string(t) + " in the header is outside the vocabulary");
    else if (t != channel_ && t != constrain_ && tokenizer_.is_special(t))
      flag("special token " + std::to_string(t) + " inside the message header");
  }
  if (m.role == Role::kAssistant && m.channel.empty()) flag("assistant message without a channel");
}

void HarmonyStreamParser::end_message(MessageEnd end) {
  current_.end = end;
  current_.message.content = content_;
  for (auto& p : pending_problems_) flag(std::move(p));
  pending_problems_.clear();
  messages_.push_back(std::move(current_));
  current_ = ParsedMessage{};
  content_.clear();
  state_ = State::kExpectStart;
  if (end == MessageEnd::kReturn || end == MessageEnd::kCall) stopped_ = true;
}

std::string HarmonyStreamParser::finish() {
  std::string delta;
  if (state_ == State::kHeader) {
    if (header_tokens_.empty() && header_role_ && pending_problems_.empty()) {
      state_ = State::kExpectStart;  // nothing was generated
      return delta;
    }
    flag("the stream ended inside a message header");
    parse_header(/*complete=*/false);
    delta = content_;
    end_message(MessageEnd::kUnfinished);
  } else if (state_ == State::kContent) {
    delta = utf8::sanitize(decoder_.finish());
    content_ += delta;
    end_message(MessageEnd::kUnfinished);
  } else if (!pending_problems_.empty()) {
    current_.message.role = Role::kAssistant;
    end_message(MessageEnd::kUnfinished);
  }
  return delta;
}

}  // namespace ossrun
