// `ossrun chat --model DIR`: a multi-turn conversation in the harmony format, the answer streamed as it is
// sampled. On a terminal: a line editor with history (kept in the user's data directory), the reasoning dimmed,
// slash commands (/help). With stdin piped: each line (or multi-line input) is a message, the final answers go to
// stdout, the reasoning to stderr (or nowhere), and the chat ends at the end of input with exit code 0.
#include <unistd.h>

#include <optional>
#include <random>
#include <string>

#include "src/chat/conversation.h"
#include "src/cli/chat_interrupt.h"
#include "src/cli/chat_line_reader.h"
#include "src/cli/chat_repl.h"
#include "src/cli/commands.h"
#include "src/cli/session_flags.h"
#include "src/tokenizer/tokenizer.h"

namespace ossrun::cli {

void add_chat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "Chat with the model (harmony format, streamed answers, slash commands)");
  struct Flags {
    SessionFlags session;
    chat::ChatSettings settings;
    std::optional<uint64_t> seed;
    std::string effort = "medium";
    std::string reasoning = "show";
    std::string history_reasoning = "keep";
    std::string system, developer;
    std::string load;
  };
  auto f = std::make_shared<Flags>();
  add_session_flags(*cmd, f->session, "Context size in tokens (default 4096, at most the model's)");
  cmd->add_option("--effort", f->effort, "Reasoning effort in the system message: low, medium, high (default medium; /effort changes it)")
      ->check(CLI::IsMember({"low", "medium", "high"}));
  cmd->add_option("--reasoning", f->reasoning,
                  "The reasoning (analysis channel): show (dimmed), hide, or summary (one line: \"thought for N tokens, T s\"); default show")
      ->check(CLI::IsMember({"show", "hide", "summary"}));
  cmd->add_option("--history-reasoning", f->history_reasoning,
                  "Earlier answers' reasoning in the prompt: keep (each turn only prefills the new message) or drop "
                  "(harmony's training format; each turn prefills the whole conversation again); default keep")
      ->check(CLI::IsMember({"keep", "drop"}));
  cmd->add_option("--system", f->system, "The system message's identity line (default: harmony's \"You are ChatGPT, ...\")");
  cmd->add_option("--developer", f->developer, "Developer instructions (the usual \"system prompt\")");
  cmd->add_option("--max-tokens", f->settings.max_tokens, "Most tokens per answer, reasoning included (default 1024)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", f->settings.sampling.temperature, "Sampling temperature; 0 is greedy (default 1.0)");
  cmd->add_option("--top-p", f->settings.sampling.top_p, "Nucleus sampling mass (default 1: off)");
  cmd->add_option("--top-k", f->settings.sampling.top_k, "Keep the k most likely tokens (default 0: off)");
  cmd->add_option("--min-p", f->settings.sampling.min_p, "Drop tokens below min-p times the most likely one's probability (default 0: off)");
  cmd->add_option("--seed", f->seed, "Random seed (default: random)");
  cmd->add_option("--load", f->load, "Start from a conversation saved with /save (its settings replace --effort, --system, --developer, the sampling flags and --max-tokens)");
  cmd->footer(
      "Input: a line ending in \\ continues; a line that is just \"\"\" opens a block that another closes.\n"
      "Commands: /help /reset /effort /stats /save FILE /load FILE /quit. Ctrl-C stops an answer (kept, marked\n"
      "interrupted); twice at an empty prompt leaves. When the context fills, the oldest turns are dropped (the\n"
      "system and developer messages stay). History: $OSSRUN_DATA/history, $XDG_DATA_HOME/ossrun/history or\n"
      "~/.local/share/ossrun/history.\n"
      "Examples:\n  ossrun chat --model ~/models/gpt-oss-20b --effort low --reasoning summary\n"
      "  echo 'What is 2 + 2?' | ossrun chat --model ~/models/gpt-oss-20b --reasoning hide --temperature 0");
  cmd->callback([f] {
    chat::Conversation conversation;
    if (!f->load.empty()) conversation = chat::load_conversation(f->load);
    chat::ChatSettings& s = conversation.settings;
    if (f->load.empty()) {
      s = f->settings;
      s.effort = *chat::effort_from_name(f->effort);  // CLI11 checked the name
      if (!f->system.empty()) s.system = f->system;
      if (!f->developer.empty()) s.developer = f->developer;
      s.sampling.seed = f->seed ? *f->seed : std::random_device{}();
    }
    engine::validate(s.sampling);

    const Tokenizer tok = Tokenizer::from_model_dir(f->session.model);
    OpenModel m = open_model(f->session, /*default_ctx=*/4096);
    ChatOptions options;
    options.reasoning = f->reasoning == "hide" ? chat::ReasoningDisplay::kHide
                        : f->reasoning == "summary" ? chat::ReasoningDisplay::kSummary
                                                    : chat::ReasoningDisplay::kShow;
    options.history = f->history_reasoning == "drop" ? chat::HistoryReasoning::kDrop : chat::HistoryReasoning::kKeep;
    options.interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    install_interrupt_handler();
    auto reader = make_line_reader(options.interactive, chat_history_path());
    if (options.interactive) std::fprintf(stderr, "Type a message, /help for commands; Ctrl-D or /quit leaves.\n");
    ChatRepl repl(*m.session, tok, std::move(conversation), options);
    repl.run(*reader);
  });
}

}  // namespace ossrun::cli
