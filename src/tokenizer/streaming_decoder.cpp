#include "src/tokenizer/streaming_decoder.h"

#include "src/tokenizer/utf8.h"

namespace ossrun {

std::string StreamingDecoder::push(TokenId id) {
  tokenizer_.append_token(id, pending_);
  size_t hold = utf8::incomplete_tail_length(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamingDecoder::finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace ossrun
