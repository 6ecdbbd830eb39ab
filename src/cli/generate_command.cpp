// `ossrun generate --model DIR --prompt TEXT [--chat]`: a completion streamed as it is sampled.
//
// Raw (default): the prompt is tokenized with special tokens recognised (so a harmony transcript can be
// typed as text) and every generated token is printed.
// --chat: the prompt is a harmony user message after the default system message, rendered for the
// assistant to complete; the output is parsed as harmony messages and only the final channel is printed
// (--show-analysis sends the other channels to stderr); output that is not harmony at all is printed as it is
// (chat::AnswerStream, shared with `ossrun chat`, says when).
// Generation stops at --max-tokens, at a harmony stop token (<|return|> 200002, <|call|> 200012) or at one
// of config.json's eos ids; the stop token is not printed. What ran where and the prefill and decode
// speeds go to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "src/chat/answer_stream.h"
#include "src/chat/conversation.h"
#include "src/chat/generation_loop.h"
#include "src/cli/commands.h"
#include "src/cli/session_flags.h"
#include "src/engine/sampler.h"
#include "src/model/error.h"
#include "src/tokenizer/harmony.h"
#include "src/tokenizer/streaming_decoder.h"
#include "src/tokenizer/tokenizer.h"

namespace ossrun::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void write(FILE* f, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

// Where generated text goes: all of it (raw), or the final channel of the harmony output (chat).
class OutputStream {
 public:
  OutputStream(const Tokenizer& tok, bool chat, bool show_analysis)
      : chat_(chat), show_analysis_(show_analysis), raw_(tok), answer_(tok) {}

  void push(TokenId id) {
    if (!chat_) return write(stdout, raw_.push(id));
    emit(answer_.push(id));
  }
  void finish() {
    if (!chat_) return write(stdout, raw_.finish() + "\n");
    emit(answer_.finish());
    write(stdout, "\n");
  }

 private:
  void emit(const chat::AnswerDelta& d) {
    if (d.channel == chat::Channel::kFinal || d.channel == chat::Channel::kRaw)
      write(stdout, d.text);
    else if (show_analysis_ && !d.text.empty())
      write(stderr, d.text);
  }

  bool chat_, show_analysis_;
  StreamingDecoder raw_;
  chat::AnswerStream answer_;
};

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Complete a prompt, streaming the tokens as they are sampled");
  struct Flags {
    SessionFlags session;
    std::string prompt;
    int64_t max_tokens = 256;
    engine::SamplerOptions sampling;
    std::optional<uint64_t> seed;
    bool greedy = false;
    bool chat = false;
    bool show_analysis = false;
    std::string reasoning = "medium";
  };
  auto f = std::make_shared<Flags>();
  add_session_flags(*cmd, f->session, "Context size (default: prompt + --max-tokens)");
  cmd->add_option("--prompt", f->prompt, "The text to complete")->required();
  cmd->add_option("--max-tokens", f->max_tokens, "Most tokens to generate (default 256)")->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", f->sampling.temperature, "Sampling temperature; 0 is greedy (default 1.0)");
  cmd->add_option("--top-p", f->sampling.top_p, "Nucleus sampling: keep the most likely tokens up to this mass (default 1: off)");
  cmd->add_option("--top-k", f->sampling.top_k, "Keep the k most likely tokens (default 0: off)");
  cmd->add_option("--min-p", f->sampling.min_p, "Drop tokens below min-p times the most likely one's probability (default 0: off)");
  cmd->add_option("--seed", f->seed, "Random seed; the same seed gives the same output (default: random, printed)");
  cmd->add_flag("--greedy", f->greedy, "Always take the most likely token (same as --temperature 0)");
  cmd->add_flag("--chat", f->chat, "Send the prompt as a harmony user message and print the final answer");
  cmd->add_option("--reasoning", f->reasoning, "--chat: reasoning effort in the system message (default medium)")
      ->check(CLI::IsMember({"low", "medium", "high"}));
  cmd->add_flag("--show-analysis", f->show_analysis, "--chat: print the other channels (chain of thought) to stderr");
  cmd->footer("Examples:\n  ossrun generate --model ~/models/gpt-oss-20b --prompt 'The capital of France is' --greedy\n"
              "  ossrun generate --model ~/models/gpt-oss-20b --chat --prompt 'What is 2 + 2?' --reasoning low\n"
              "  ossrun generate --model ~/models/gpt-oss-120b --profile laptop-8gb --vram 7G --prompt 'Once upon a time'");
  cmd->callback([f] {
    engine::SamplerOptions sampling = f->sampling;
    if (f->greedy) sampling.temperature = 0;
    sampling.seed = f->seed ? *f->seed : std::random_device{}();
    engine::validate(sampling);

    const Tokenizer tok = Tokenizer::from_model_dir(f->session.model);
    std::vector<TokenId> prompt_tokens;
    if (f->chat) {
      SystemContent system;
      system.reasoning_effort = *chat::effort_from_name(f->reasoning);  // CLI11 checked the name
      const Message conversation[] = {Message::system(system), Message::user(f->prompt)};
      prompt_tokens = HarmonyRenderer(tok).render_for_completion(conversation);
    } else {
      prompt_tokens = tok.encode_with_specials(f->prompt);
    }
    std::vector<int32_t> prompt(prompt_tokens.begin(), prompt_tokens.end());
    if (prompt.empty()) throw InputError("--prompt is empty: there is nothing to complete");
    OpenModel m = open_model(f->session, static_cast<int64_t>(prompt.size()) + f->max_tokens);
    engine::Session& s = *m.session;
    if (!f->seed && sampling.temperature > 0 && !f->session.quiet) std::fprintf(stderr, "seed %llu\n", static_cast<unsigned long long>(sampling.seed));

    s.set_sampler(sampling);
    OutputStream out(tok, f->chat, f->show_analysis);
    const auto t0 = Clock::now();
    const int32_t first = s.prefill_next(prompt);
    const double prefill_s = seconds_since(t0);
    const chat::GenerationResult g = chat::generate_tokens(
        s, first, {.max_tokens = f->max_tokens, .stop_tokens = chat::chat_stop_tokens(s), .interrupt = nullptr},
        [&](int32_t id) { out.push(static_cast<TokenId>(id)); });
    out.finish();
    if (!f->session.quiet)
      std::fprintf(stderr, "prefill: %zu tokens, %.2f tok/s; decode: %lld tokens generated, %.2f tok/s (%s)\n",
                   prompt.size(), static_cast<double>(prompt.size()) / prefill_s, static_cast<long long>(g.generated),
                   g.decoded > 0 ? static_cast<double>(g.decoded) / g.decode_s : 0.0, chat::stop_reason_text(g.reason));
  });
}

}  // namespace ossrun::cli
