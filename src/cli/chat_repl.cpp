#include "src/cli/chat_repl.h"

#include <chrono>
#include <cstdio>

#include "src/chat/answer_printer.h"
#include "src/chat/answer_stream.h"
#include "src/chat/context_policy.h"
#include "src/chat/generation_loop.h"
#include "src/chat/input_assembler.h"
#include "src/cli/chat_interrupt.h"
#include "src/model/error.h"

namespace ossrun::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::string format(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

std::string speed(int64_t tokens, double seconds) {
  return seconds > 0 && tokens > 0 ? format("%.1f tok/s", static_cast<double>(tokens) / seconds) : std::string("n/a");
}

std::string mib(uint64_t bytes) { return format("%.1f MiB", static_cast<double>(bytes) / (1 << 20)); }

}  // namespace

void SpeedTotals::add(const SpeedTotals& o) {
  prefilled += o.prefilled, reused += o.reused, generated += o.generated, decoded += o.decoded;
  prefill_s += o.prefill_s, decode_s += o.decode_s;
}

ChatRepl::ChatRepl(engine::Session& session, const Tokenizer& tokenizer, chat::Conversation conversation,
                   const ChatOptions& options)
    : session_(session), tokenizer_(tokenizer), harmony_(tokenizer), renderer_(harmony_),
      conversation_(std::move(conversation)), options_(options) {
  restart_sampler();
}

void ChatRepl::run(LineReader& reader) {
  chat::InputAssembler input;
  bool ctrl_c_pending = false;  // the last event was a Ctrl-C at an empty prompt
  while (true) {
    interrupt_requested().store(false);
    const ReadResult r = reader.read(input.continuing());
    if (r.status == ReadStatus::kEof) {
      if (auto rest = input.finish()) answer(*rest);
      return;
    }
    if (r.status == ReadStatus::kInterrupted) {
      const bool empty = r.line_empty && !input.continuing();
      input.clear();
      if (empty && ctrl_c_pending) return;
      ctrl_c_pending = empty;
      if (empty) out_.note("(Ctrl-C again, /quit or Ctrl-D to leave)");
      continue;
    }
    ctrl_c_pending = false;
    reader.remember(r.line);
    const bool single_line = !input.continuing();
    const auto text = input.push(r.line);
    if (!text) continue;
    if (!single_line) {  // multi-line input is always a message
      answer(*text);
      continue;
    }
    const chat::ParsedInput parsed = chat::parse_input(*text);
    if (const auto* e = std::get_if<chat::CommandError>(&parsed)) {
      out_.error(e->message);
    } else if (const auto* c = std::get_if<chat::SlashCommand>(&parsed)) {
      if (!command(*c)) return;
    } else {
      answer(std::get<chat::NotACommand>(parsed).message);
    }
  }
}

bool ChatRepl::command(const chat::SlashCommand& c) {
  using chat::CommandKind;
  switch (c.kind) {
    case CommandKind::kHelp:
      out_.info(chat::help_text());
      return true;
    case CommandKind::kQuit:
      return false;
    case CommandKind::kReset:
      conversation_.messages.clear();
      out_.note("conversation cleared (settings kept)");
      return true;
    case CommandKind::kEffort:
      if (!c.argument.empty()) conversation_.settings.effort = *chat::effort_from_name(c.argument);
      out_.info(format("reasoning effort: %s\n", std::string(effort_name(conversation_.settings.effort)).c_str()));
      return true;
    case CommandKind::kStats:
      print_stats();
      return true;
    case CommandKind::kSave:
      try {
        chat::save_conversation(conversation_, c.argument);
        out_.note(format("saved %zu messages to %s", conversation_.messages.size(), c.argument.c_str()));
      } catch (const InputError& e) {
        out_.error(e.what());
      }
      return true;
    case CommandKind::kLoad:
      try {
        conversation_ = chat::load_conversation(c.argument);
        restart_sampler();
        out_.note(format("loaded %zu messages from %s (effort %s)", conversation_.messages.size(), c.argument.c_str(),
                         std::string(effort_name(conversation_.settings.effort)).c_str()));
      } catch (const InputError& e) {
        out_.error("cannot load: " + std::string(e.what()));
      }
      return true;
  }
  return true;
}

bool ChatRepl::fit_context() {
  const std::vector<size_t> turns = conversation_.turn_starts();
  const int64_t room = chat::answer_room(session_.ctx(), conversation_.settings.max_tokens);
  const auto length = [&](size_t dropped) {
    return static_cast<int64_t>(renderer_.render(conversation_, turns[dropped], options_.history).size());
  };
  const auto drop = chat::turns_to_drop(turns.size(), session_.ctx(), room, length);
  if (!drop) {
    out_.error(format("this message does not fit: with the system and developer messages it takes %lld tokens, and "
                      "the context of %lld must also leave %lld for the answer (raise --ctx, lower --max-tokens or "
                      "send a shorter message)",
                      static_cast<long long>(length(turns.size() - 1)), static_cast<long long>(session_.ctx()),
                      static_cast<long long>(room)));
    conversation_.messages.resize(turns.back());
    return false;
  }
  if (*drop > 0) {
    const size_t first = turns[*drop];
    conversation_.messages.erase(conversation_.messages.begin(), conversation_.messages.begin() + static_cast<std::ptrdiff_t>(first));
    out_.note(format("context full: dropped the %zu oldest turn%s (%zu messages) to leave %lld tokens for the "
                     "answer; the rest is read again",
                     *drop, *drop == 1 ? "" : "s", first, static_cast<long long>(room)));
  }
  return true;
}

void ChatRepl::answer(const std::string& user_text) {
  try {
    answer_or_throw(user_text);
  } catch (const InputError& e) {  // the session refused a token or the context: say so, keep chatting
    out_.error(e.what());
    session_.reset();
    session_tokens_.clear();
  }
}

void ChatRepl::answer_or_throw(const std::string& user_text) {
  if (user_text.find_first_not_of(" \t\r\n") == std::string::npos) return;
  conversation_.messages.push_back({.role = Role::kUser, .channel = "", .content = user_text, .interrupted = false, .tokens = {}});
  if (!fit_context()) return;

  const std::vector<int32_t> prompt = renderer_.render(conversation_, 0, options_.history);
  const size_t reused = chat::reusable_prefix(session_tokens_, prompt);
  if (reused == 0) {
    session_.reset();
    session_tokens_.clear();
  }
  SpeedTotals turn;
  turn.reused = static_cast<int64_t>(reused);
  turn.prefilled = static_cast<int64_t>(prompt.size() - reused);
  const auto t0 = Clock::now();
  const int32_t first = session_.prefill_next(std::span(prompt).subspan(reused));
  turn.prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  session_tokens_ = prompt;

  chat::AnswerStream stream(tokenizer_);
  chat::AnswerPrinter printer({.answer = [&](const std::string& t) { out_.answer(t); },
                               .reasoning = [&](const std::string& t) { out_.reasoning(t); },
                               .note = [&](const std::string& t) { out_.note(t); }},
                              options_.reasoning);
  const chat::GenerationResult g = chat::generate_tokens(
      session_, first,
      {.max_tokens = conversation_.settings.max_tokens, .stop_tokens = chat::chat_stop_tokens(session_),
       .interrupt = &interrupt_requested()},
      [&](int32_t id) { printer.show(stream.push(static_cast<TokenId>(id)), stream); },
      [&](int32_t id) { session_tokens_.push_back(id); });
  printer.show(stream.finish(), stream);
  printer.finish(stream);
  const bool cut_short = g.reason != chat::StopReason::kStopToken;
  for (chat::ChatMessage& m : stream.messages(cut_short)) conversation_.messages.push_back(std::move(m));

  turn.generated = g.generated;
  turn.decoded = g.decoded;
  turn.decode_s = g.decode_s;
  last_ = turn;
  total_.add(turn);
  if (g.reason == chat::StopReason::kInterrupted)
    out_.note(format("[interrupted after %lld tokens; the partial answer is kept]", static_cast<long long>(g.generated)));
  else if (g.reason == chat::StopReason::kMaxTokens)
    out_.note(format("[--max-tokens %lld reached; the answer is cut short]", static_cast<long long>(g.generated)));
  else if (g.reason == chat::StopReason::kContextFull)
    out_.note("[context full: the answer is cut short; the next message drops the oldest turns]");
  interrupt_requested().store(false);
}

void ChatRepl::print_stats() const {
  const engine::SessionReport r = session_.report();
  const auto line = [](const char* what, const SpeedTotals& t) {
    return format("%s: prefill %lld tokens (%lld reused from the KV cache) %s; decode %lld tokens %s\n", what,
                  static_cast<long long>(t.prefilled), static_cast<long long>(t.reused), speed(t.prefilled, t.prefill_s).c_str(),
                  static_cast<long long>(t.generated), speed(t.decoded, t.decode_s).c_str());
  };
  std::string s = line("last answer", last_) + line("session", total_);
  const std::string hit = r.vram_bytes == 0 ? std::string("n/a (CPU only)")
                          : r.expert_calls == 0
                              ? std::string("n/a (no expert calls yet)")
                              : format("%.1f%% (%llu of %llu expert calls on the GPU)",
                                       100.0 * static_cast<double>(r.expert_calls_gpu) / static_cast<double>(r.expert_calls),
                                       static_cast<unsigned long long>(r.expert_calls_gpu),
                                       static_cast<unsigned long long>(r.expert_calls));
  s += "expert hit rate: " + hit + "\n";
  s += "placement: " + r.placement + "\n";
  s += "memory: VRAM " + mib(r.vram_bytes) + ", RAM " + mib(r.ram_bytes) + "\n";
  s += format("context: %lld of %lld positions used; %zu messages, effort %s\n", static_cast<long long>(session_.position()),
              static_cast<long long>(session_.ctx()), conversation_.messages.size(),
              std::string(effort_name(conversation_.settings.effort)).c_str());
  out_.info(s);
}

}  // namespace ossrun::cli
