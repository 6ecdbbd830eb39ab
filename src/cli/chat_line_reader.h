// Reading the chat's input lines: libedit (emacs keys, history kept across runs) on a terminal, plain lines
// from stdin otherwise.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

namespace ossrun::cli {

enum class ReadStatus { kLine, kInterrupted, kEof };
struct ReadResult {
  ReadStatus status = ReadStatus::kEof;
  std::string line;         // without the newline
  bool line_empty = true;   // kInterrupted: nothing had been typed on the line
};

class LineReader {
 public:
  virtual ~LineReader() = default;
  // continuation: the input goes on from the previous line (prompt "... " instead of "> ").
  virtual ReadResult read(bool continuation) = 0;
  virtual void remember(const std::string& line) = 0;  // adds to the history (kept across runs)
};

// libedit (emacs keys, history in history_file; Ctrl-C is read as a key, not a signal, while editing) when
// `interactive`, else plain lines from stdin without a prompt. An empty history_file: no history file.
std::unique_ptr<LineReader> make_line_reader(bool interactive, const std::filesystem::path& history_file);

// $OSSRUN_DATA/history, else $XDG_DATA_HOME/ossrun/history, else ~/.local/share/ossrun/history; empty when none
// of those is set.
std::filesystem::path chat_history_path();

}  // namespace ossrun::cli
