#include "src/chat/answer_printer.h"

#include <cstdio>

namespace ossrun::chat {

AnswerPrinter::AnswerPrinter(AnswerSinks sinks, ReasoningDisplay mode)
    : sinks_(std::move(sinks)), mode_(mode), t0_(std::chrono::steady_clock::now()) {}

void AnswerPrinter::show(const AnswerDelta& d, const AnswerStream& stream) {
  if (d.text.empty() || d.channel == Channel::kOther) return;
  if (d.channel == Channel::kAnalysis) {
    in_reasoning_ = true;
    if (mode_ == ReasoningDisplay::kShow) sinks_.reasoning(d.text);
    return;
  }
  end_reasoning(stream);
  sinks_.answer(d.text);
  answered_ = true;
}

void AnswerPrinter::finish(const AnswerStream& stream) {
  end_reasoning(stream);
  if (answered_) sinks_.answer("\n");
}

void AnswerPrinter::end_reasoning(const AnswerStream& stream) {
  if (!in_reasoning_) return;
  in_reasoning_ = false;
  if (mode_ == ReasoningDisplay::kShow) sinks_.reasoning("\n");
  if (mode_ == ReasoningDisplay::kSummary) {
    char line[96];
    std::snprintf(line, sizeof line, "(thought for %zu tokens, %.1f s)", stream.analysis_tokens(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
    sinks_.note(line);
  }
}

}  // namespace ossrun::chat
