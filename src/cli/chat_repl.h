// The chat loop: read input, run slash commands, answer messages (KV cache reused where the prompt extends it,
// the context policy applied), stream the answer, keep the statistics /stats prints.
#pragma once
#include <memory>
#include <vector>

#include "src/chat/answer_printer.h"
#include "src/chat/chat_prompt.h"
#include "src/chat/conversation.h"
#include "src/chat/slash_command.h"
#include "src/cli/chat_line_reader.h"
#include "src/cli/chat_output.h"
#include "src/engine/sampler.h"
#include "src/engine/session.h"

namespace ossrun::cli {

struct ChatOptions {
  chat::ReasoningDisplay reasoning = chat::ReasoningDisplay::kShow;
  chat::HistoryReasoning history = chat::HistoryReasoning::kKeep;
  bool interactive = false;  // a terminal: line editor, hints
};

// Token and time totals of prefill and decode.
struct SpeedTotals {
  int64_t prefilled = 0, reused = 0, generated = 0, decoded = 0;
  double prefill_s = 0, decode_s = 0;
  void add(const SpeedTotals& o);
};

class ChatRepl {
 public:
  ChatRepl(engine::Session& session, const Tokenizer& tokenizer, chat::Conversation conversation, const ChatOptions& options);
  // Runs until /quit, end of input or a second Ctrl-C at an empty prompt.
  void run(LineReader& reader);

 private:
  // False to quit.
  bool command(const chat::SlashCommand& c);
  void answer(const std::string& user_text);
  void answer_or_throw(const std::string& user_text);
  // Drops the oldest turns until the prompt leaves room for the answer; false (and the message removed) when the
  // newest message does not fit even alone.
  bool fit_context();
  void print_stats() const;
  void restart_sampler() { session_.set_sampler(conversation_.settings.sampling); }

  engine::Session& session_;
  const Tokenizer& tokenizer_;
  HarmonyRenderer harmony_;
  chat::ChatPromptRenderer renderer_;
  chat::Conversation conversation_;
  ChatOptions options_;
  ChatOutput out_;
  std::vector<int32_t> session_tokens_;  // what the session's KV cache holds, in order
  SpeedTotals last_, total_;
};

}  // namespace ossrun::cli
