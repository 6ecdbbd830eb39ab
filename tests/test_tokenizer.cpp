// Tokenizer: known ids, special tokens, decode errors, the two BPE merge loops against each other, and linear
// time on pathological 1 MB inputs.
#include <doctest/doctest.h>

#include <chrono>
#include <random>

#include "src/model/error.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/tokenizer.h"
#include "tests/tokenizer/corpus.h"

namespace ossrun {
namespace {

const Tokenizer& o200k() {
  static const Tokenizer tokenizer = Tokenizer::from_tiktoken(default_tiktoken_path());
  return tokenizer;
}

}  // namespace

TEST_CASE("tokenizer: single-token words and known ids (spec §7, §8.5)") {
  const Tokenizer& t = o200k();
  CHECK(t.mergeable_count() == 199998);
  CHECK(t.vocab_size() == 201088);
  CHECK(t.encode("system") == std::vector<TokenId>{17360});
  CHECK(t.encode("user") == std::vector<TokenId>{1428});
  CHECK(t.encode("assistant") == std::vector<TokenId>{173781});
  CHECK(t.encode("developer") == std::vector<TokenId>{77944});
  CHECK(t.encode("analysis") == std::vector<TokenId>{35644});
  CHECK(t.encode("final") == std::vector<TokenId>{17196});
  CHECK(t.encode("json") == std::vector<TokenId>{4108});
  CHECK(t.encode(" json") == std::vector<TokenId>{5701});
  CHECK(t.encode("commentary") == std::vector<TokenId>{12606, 815});
  CHECK(t.encode("hello world") == std::vector<TokenId>{24912, 2375});  // harmony's test_encode_allowed_special
  CHECK(t.encode("What is 2 + 2?") == std::vector<TokenId>{4827, 382, 220, 17, 659, 220, 17, 30});
  CHECK(t.encode("").empty());
  CHECK(t.encode("!") == std::vector<TokenId>{0});
}

TEST_CASE("tokenizer: special tokens are text in encode and ids in encode_with_specials") {
  const Tokenizer& t = o200k();
  using namespace harmony_token;
  CHECK(t.special("<|start|>") == kStart);
  CHECK(t.special("<|constrain|>") == kConstrain);
  CHECK(t.special("<|reserved_201087|>") == 201087);
  CHECK_FALSE(t.find_special("<|nope|>").has_value());
  CHECK_THROWS_AS(t.special("<|nope|>"), InputError);

  const std::string text = "<|start|>user<|message|>Hi <|end|> <|nope|><|<|call|>";
  std::vector<TokenId> with = t.encode_with_specials(text);
  std::vector<TokenId> expected = {kStart, 1428, kMessage};
  for (TokenId id : t.encode("Hi ")) expected.push_back(id);
  expected.push_back(kEnd);
  for (TokenId id : t.encode(" <|nope|><|")) expected.push_back(id);
  expected.push_back(kCall);
  CHECK(with == expected);
  std::vector<TokenId> plain = t.encode(text);
  CHECK(std::find(plain.begin(), plain.end(), kStart) == plain.end());
  CHECK(t.decode(plain) == text);
  CHECK(t.decode(with) == text);
}

TEST_CASE("tokenizer: decode rejects ids outside the vocabulary") {
  const Tokenizer& t = o200k();
  CHECK(t.decode(std::vector<TokenId>{200018}) == "<|endofprompt|>");
  CHECK(t.decode(std::vector<TokenId>{200014}) == "<|reserved_200014|>");
  CHECK_THROWS_WITH_AS(t.decode(std::vector<TokenId>{201088}), doctest::Contains("201088 is not in the vocabulary"),
                       InputError);
  CHECK_FALSE(t.contains(201088));
  CHECK(t.contains(0));
}

TEST_CASE("BpeRanks: the scan and heap merge loops agree") {
  const BpeRanks& ranks = o200k().ranks();
  std::mt19937 rng(3);
  // Pieces cut from real text (so merges happen) and random bytes, from 2 bytes to 600.
  std::string source;
  for (const std::string& f : test::corpus_files()) source += f;
  size_t differ = 0;
  for (int i = 0; i < 3000; ++i) {
    size_t len = 2 + rng() % (i % 10 == 0 ? 600 : 40);
    std::string piece;
    if (i % 3 == 0) {
      for (size_t k = 0; k < len; ++k) piece.push_back(static_cast<char>(rng() & 0xFF));
    } else {
      size_t at = rng() % (source.size() - len);
      piece = source.substr(at, len);
    }
    std::vector<TokenId> scan, heap;
    ranks.merge_by_scan(piece, scan);
    ranks.merge_by_heap(piece, heap);
    if (scan != heap) ++differ;
    std::string joined;
    for (TokenId id : heap) joined += ranks.bytes(id);
    CHECK(joined == piece);
  }
  CHECK(differ == 0);
}

TEST_CASE("tokenizer: 1 MB of one character and 1 MB without white space encode in linear time") {
  // The bound catches quadratic behaviour (minutes), not a speed goal; bench tokenizer measures speed.
  const Tokenizer& t = o200k();
  const size_t mb = 1 << 20;
  for (const std::string& text :
       {test::repeat("a", mb), test::repeat(" ", mb), test::repeat("7", mb), test::repeat("\xE4\xB8\xAD", mb / 3),
        test::repeat("Pneumonoultramicroscopicsilicovolcanoconiosis", mb / 45), test::repeat("x\xCC\x81", mb / 3),
        test::repeat("#", mb), test::repeat("\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", mb / 8)}) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<TokenId> ids = t.encode(text);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK_MESSAGE(seconds < 5.0, "encoding took " << seconds << " s for " << text.substr(0, 12) << "...");
    CHECK(t.decode(ids) == text);
  }
}

}  // namespace ossrun
