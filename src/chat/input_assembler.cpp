#include "src/chat/input_assembler.h"

namespace ossrun::chat {
namespace {

bool is_block_fence(std::string_view line) {
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
  return line == "\"\"\"";
}

}  // namespace

std::optional<std::string> InputAssembler::push(std::string_view line) {
  if (in_block_) {
    if (is_block_fence(line)) {
      in_block_ = false;
      continued_ = false;
      std::string out = std::move(pending_);
      pending_.clear();
      return out;
    }
    if (!pending_.empty() || continued_) pending_ += '\n';
    pending_ += line;
    continued_ = true;  // inside the block: later lines join with "\n" even after an empty first line
    return std::nullopt;
  }
  if (!continued_ && is_block_fence(line)) {
    in_block_ = true;
    continued_ = false;
    pending_.clear();
    return std::nullopt;
  }
  if (continued_) pending_ += '\n';
  if (line.ends_with('\\')) {
    pending_ += line.substr(0, line.size() - 1);
    continued_ = true;
    return std::nullopt;
  }
  pending_ += line;
  continued_ = false;
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

std::optional<std::string> InputAssembler::finish() {
  const bool had = in_block_ || continued_;
  std::string out = std::move(pending_);
  clear();
  if (!had) return std::nullopt;
  return out;
}

void InputAssembler::clear() {
  pending_.clear();
  in_block_ = false;
  continued_ = false;
}

}  // namespace ossrun::chat
