// Incremental detokenizer for streaming output. A token can end in the middle of a UTF-8 character (emoji and
// CJK often span tokens), so each push() returns only text up to the last complete character and holds back an
// incomplete tail until the bytes that complete it arrive. Nothing is dropped or altered: the concatenation of
// every push() and finish() equals Tokenizer::decode of all the ids. Bytes that can never become a character
// (an invalid sequence) are passed through as they are, not held.
#pragma once
#include <string>

#include "src/tokenizer/tokenizer.h"

namespace ossrun {

class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

  // The text completed by this token (possibly empty). Throws InputError for an id outside the vocabulary.
  std::string push(TokenId id);
  // The held-back bytes of a sequence that never completed; the decoder is empty afterwards.
  std::string finish();
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
};

}  // namespace ossrun
