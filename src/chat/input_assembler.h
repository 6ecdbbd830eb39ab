// Multi-line input for the chat, from lines as typed (or piped):
//   - a line ending in a backslash continues: the backslash is removed and the next line follows after "\n";
//   - a line that is exactly """ (spaces around allowed) opens a block, which the next such line closes; the
//     lines between are the message, as typed (no backslash handling inside).
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace ossrun::chat {

class InputAssembler {
 public:
  // Feeds one line (without its newline). Returns the whole input when this line completes it.
  std::optional<std::string> push(std::string_view line);
  // At the end of input: what was pending (an unclosed block or a trailing backslash), if anything.
  std::optional<std::string> finish();
  // True while a continuation or a block is open (for the "... " prompt).
  bool continuing() const { return in_block_ || continued_; }
  // Forgets a half-typed input (Ctrl-C).
  void clear();

 private:
  std::string pending_;
  bool in_block_ = false;
  bool continued_ = false;
};

}  // namespace ossrun::chat
