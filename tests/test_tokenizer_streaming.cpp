// The invalid-UTF-8 policy (utf8.h) and the streaming detokenizer: whole characters only, nothing lost.
#include <doctest/doctest.h>

#include <random>

#include "src/model/error.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/streaming_decoder.h"
#include "src/tokenizer/utf8.h"
#include "tests/tokenizer/corpus.h"

namespace ossrun {

TEST_CASE("utf8: maximal ill-formed subparts become one U+FFFD each (WHATWG / Unicode §3.9)") {
  const std::string r = "\xEF\xBF\xBD";
  CHECK(utf8::sanitize("plain") == "plain");
  CHECK(utf8::sanitize("\x80") == r);
  CHECK(utf8::sanitize("a\xE4\xB8z") == "a" + r + "z");          // truncated 3-byte sequence: one replacement
  CHECK(utf8::sanitize("\xE0\x80\xAF") == r + r + r);             // overlong: E0 needs A0..BF next
  CHECK(utf8::sanitize("\xED\xA0\x80") == r + r + r);             // a surrogate
  CHECK(utf8::sanitize("\xF4\x90\x80\x80") == r + r + r + r);     // above U+10FFFF
  CHECK(utf8::sanitize("\xF0\x9F\x98") == r);                     // truncated emoji at the end
  CHECK(utf8::sanitize("\xC0\xAF") == r + r);
  CHECK(utf8::sanitize("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");
  CHECK(utf8::is_valid("\xF0\x9F\x98\x80 \xE4\xB8\xAD"));
  CHECK_FALSE(utf8::is_valid("0123456789abcdef\xFF"));
  CHECK(utf8::incomplete_tail_length("ab\xF0\x9F\x98") == 3);
  CHECK(utf8::incomplete_tail_length("ab\xF0\x9F\x98\x80") == 0);
  CHECK(utf8::incomplete_tail_length("ab\xE4") == 1);
  CHECK(utf8::incomplete_tail_length("ab\x80") == 0);        // a stray continuation never completes
  CHECK(utf8::incomplete_tail_length("ab\xE0\x80") == 0);    // already ill-formed
}

TEST_CASE("StreamingDecoder: whole characters out, every byte accounted for") {
  const Tokenizer tokenizer = Tokenizer::from_tiktoken(default_tiktoken_path());
  std::vector<std::string> texts = test::corpus_files();
  texts.push_back(test::repeat("\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB \xE4\xB8\xAD\xE6\x96\x87 ", 50));
  std::mt19937 rng(5);
  for (const std::string& text : texts) {
    std::vector<TokenId> ids = tokenizer.encode(text);
    // Also spell random stretches byte by byte, so tokens end in the middle of characters.
    std::vector<TokenId> spelled;
    for (TokenId id : ids) {
      std::string bytes = tokenizer.decode(std::vector<TokenId>{id});
      if (bytes.size() > 1 && rng() % 3 == 0) {
        for (char b : bytes) spelled.push_back(tokenizer.ranks().rank(std::string(1, b)));
      } else {
        spelled.push_back(id);
      }
    }
    StreamingDecoder decoder(tokenizer);
    std::string out;
    size_t partial = 0;
    for (TokenId id : spelled) {
      std::string piece = decoder.push(id);
      if (!utf8::is_valid(piece)) ++partial;
      out += piece;
    }
    out += decoder.finish();
    CHECK(partial == 0);
    CHECK(out == text);
  }
  // Bytes that never complete come out at finish(); ill-formed bytes pass through without waiting.
  StreamingDecoder decoder(tokenizer);
  TokenId f0 = tokenizer.ranks().rank("\xF0"), x80 = tokenizer.ranks().rank("\x80");
  CHECK(decoder.push(f0).empty());
  CHECK(decoder.pending_bytes() == 1);
  CHECK(decoder.finish() == "\xF0");
  CHECK(decoder.push(x80) == "\x80");
  CHECK_THROWS_AS(decoder.push(201088), InputError);
}

}  // namespace ossrun
