// Where the chat writes, and how: colours and dim only on a terminal.
#pragma once
#include <string>

namespace ossrun::cli {

// Where the chat writes: answers to stdout; reasoning, notes and errors to stderr, dim or coloured when that
// stream is a terminal and NO_COLOR is not set (and TERM is not "dumb").
class ChatOutput {
 public:
  ChatOutput();
  void answer(const std::string& text) const;     // stdout, plain
  void reasoning(const std::string& text) const;  // stderr, dim
  void note(const std::string& text) const;       // stderr, dim, a line
  void error(const std::string& text) const;      // stderr, red, a line
  void info(const std::string& text) const;       // stdout, plain (command output: /help, /stats)

 private:
  bool styled_ = false;  // stderr takes escape codes
};

}  // namespace ossrun::cli
