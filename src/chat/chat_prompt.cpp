#include "src/chat/chat_prompt.h"

#include <algorithm>

namespace ossrun::chat {

std::vector<int32_t> ChatPromptRenderer::render(const Conversation& c, size_t first_message,
                                                HistoryReasoning reasoning) const {
  const ChatSettings& s = c.settings;
  std::vector<TokenId> out;
  SystemContent system;
  system.reasoning_effort = s.effort;
  if (s.system) system.model_identity = *s.system;
  renderer_.render_message(Message::system(system), /*conversation_has_function_tools=*/false, out);
  if (s.developer) {
    DeveloperContent developer;
    developer.instructions = *s.developer;
    renderer_.render_message(Message::developer(developer), false, out);
  }
  const Tokenizer& tok = renderer_.tokenizer();
  const TokenId end = tok.special("<|end|>");
  bool final_follows = false;  // walking backwards: has a later final answer been seen?
  std::vector<bool> dropped(c.messages.size(), false);
  for (size_t i = c.messages.size(); i-- > first_message;) {
    const ChatMessage& m = c.messages[i];
    if (m.role != Role::kAssistant) continue;
    if (reasoning == HistoryReasoning::kDrop && m.channel == "analysis" && final_follows) dropped[i] = true;
    if (m.channel == "final") final_follows = true;
  }
  for (size_t i = first_message; i < c.messages.size(); ++i) {
    const ChatMessage& m = c.messages[i];
    if (dropped[i]) continue;
    if (m.role == Role::kUser) {
      renderer_.render_message(Message::user(m.content), false, out);
    } else if (!m.tokens.empty() && tok.decode(m.tokens) == m.content) {
      // The header as rendered, then the content as sampled: <|start|>assistant<|channel|>C<|message|> TOKENS <|end|>.
      renderer_.render_message(Message::assistant(m.channel, ""), false, out);
      out.pop_back();  // the empty message's <|end|>
      out.insert(out.end(), m.tokens.begin(), m.tokens.end());
      out.push_back(end);
    } else {
      renderer_.render_message(Message::assistant(m.channel, m.content), false, out);
    }
  }
  out.push_back(tok.special("<|start|>"));
  tok.encode_into("assistant", out);
  return {out.begin(), out.end()};
}

size_t reusable_prefix(std::span<const int32_t> session, std::span<const int32_t> prompt) {
  if (session.empty() || session.size() >= prompt.size()) return 0;
  return std::equal(session.begin(), session.end(), prompt.begin()) ? session.size() : 0;
}

}  // namespace ossrun::chat
