// The o200k pre-tokenizer: splits text into the pieces BPE encodes one by one (spec §7), with the regex's
// leftmost-first, backtracking semantics.
//
// Two implementations with one contract:
//  - next_o200k_piece: hand-written matching over the character classes of unicode_classes.h; the fast path.
//  - O200kRegex: the regex itself through PCRE2 with JIT; the reference the tests hold the fast path to.
#pragma once
#include <cstddef>
#include <string_view>

namespace ossrun {

// End (byte offset) of the piece that starts at `pos` < text.size(); text must be valid UTF-8.
size_t next_o200k_piece(std::string_view text, size_t pos);

// The o200k regex compiled by PCRE2 (UTF, UCP, JIT). One instance per thread (it owns its match data).
class O200kRegex {
 public:
  O200kRegex();
  ~O200kRegex();
  O200kRegex(const O200kRegex&) = delete;
  O200kRegex& operator=(const O200kRegex&) = delete;

  // Same contract as next_o200k_piece.
  size_t next_piece(std::string_view text, size_t pos) const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace ossrun
