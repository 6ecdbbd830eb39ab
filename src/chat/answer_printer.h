// How an answer is shown while it streams: the final channel (and commentary, and output that is not harmony)
// as the answer; the reasoning (analysis channel) as --reasoning says:
//   show     the reasoning text as it comes (the terminal dims it), a line break when the answer begins;
//   hide     nothing;
//   summary  one line instead, when the reasoning ends: "(thought for N tokens, T s)", N counting the analysis
//            channel's content tokens and T the time from the start of the answer.
#pragma once
#include <chrono>
#include <functional>
#include <string>

#include "src/chat/answer_stream.h"

namespace ossrun::chat {

enum class ReasoningDisplay { kShow, kHide, kSummary };

struct AnswerSinks {
  std::function<void(const std::string&)> answer;     // text of the answer
  std::function<void(const std::string&)> reasoning;  // text of the reasoning
  std::function<void(const std::string&)> note;       // a line about the answer (the summary)
};

class AnswerPrinter {
 public:
  AnswerPrinter(AnswerSinks sinks, ReasoningDisplay mode);
  void show(const AnswerDelta& d, const AnswerStream& stream);
  // After the last delta: closes the reasoning and ends the answer's line.
  void finish(const AnswerStream& stream);

 private:
  void end_reasoning(const AnswerStream& stream);

  AnswerSinks sinks_;
  ReasoningDisplay mode_;
  std::chrono::steady_clock::time_point t0_;
  bool in_reasoning_ = false, answered_ = false;
};

}  // namespace ossrun::chat
