// The hand-written o200k pre-tokenizer against the regex itself (PCRE2 with JIT): identical pieces on the corpus,
// generated cases and a million random characters; and linear time on pathological 1 MB inputs.
#include <doctest/doctest.h>

#include <chrono>

#include "src/tokenizer/pretokenizer.h"
#include "src/tokenizer/utf8.h"
#include "tests/tokenizer/corpus.h"

namespace ossrun {
namespace {

std::vector<std::string> pieces_fast(std::string_view text) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = next_o200k_piece(text, pos);
    REQUIRE(end > pos);
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::vector<std::string> pieces_regex(const O200kRegex& re, std::string_view text) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = re.next_piece(text, pos);
    REQUIRE(end > pos);
    out.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::string show(const std::vector<std::string>& pieces) {
  std::string s;
  for (const auto& p : pieces) s += "[" + p + "]";
  return s;
}

// Counts texts whose pieces differ, printing the first few.
size_t count_differences(const std::vector<std::string>& texts) {
  const O200kRegex re;
  size_t bad = 0;
  for (const std::string& raw : texts) {
    const std::string text = utf8::sanitize(raw);
    auto fast = pieces_fast(text), reference = pieces_regex(re, text);
    if (fast != reference && ++bad <= 5)
      MESSAGE("pieces differ for \"" << text << "\"\n  fast:  " << show(fast) << "\n  regex: " << show(reference));
  }
  return bad;
}

}  // namespace

TEST_CASE("next_o200k_piece: known splits") {
  CHECK(pieces_fast("Hello world") == std::vector<std::string>{"Hello", " world"});
  CHECK(pieces_fast("I'm DON'T you're") == std::vector<std::string>{"I'm", " DON'T", " you're"});
  CHECK(pieces_fast("12345 abc") == std::vector<std::string>{"123", "45", " abc"});
  CHECK(pieces_fast("a  b") == std::vector<std::string>{"a", " ", " b"});
  CHECK(pieces_fast("x\r\n\r\ny") == std::vector<std::string>{"x", "\r\n\r\n", "y"});
  CHECK(pieces_fast("end   ") == std::vector<std::string>{"end", "   "});
  CHECK(pieces_fast(" ...//\n") == std::vector<std::string>{" ...//\n"});
  CHECK(pieces_fast("HTTPServer camelCase") == std::vector<std::string>{"HTTPServer", " camel", "Case"});
}

TEST_CASE("next_o200k_piece equals the PCRE2 regex on the corpus and generated cases") {
  std::vector<std::string> texts;
  for (const std::string& file : test::corpus_files()) {
    texts.push_back(file);
    std::string line;
    for (char c : file) {
      if (c == '\n') {
        texts.push_back(line);
        line.clear();
      } else {
        line.push_back(c);
      }
    }
  }
  for (std::string& g : test::generated_cases()) texts.push_back(std::move(g));
  for (const std::string& w : test::white_space_kinds()) texts.push_back("\xEF\xBB\xBF" + w + "\xEF\xBB\xBF" + "x");
  CHECK(count_differences(texts) == 0);
}

TEST_CASE("next_o200k_piece equals the PCRE2 regex on random strings") {
  // 40,000 strings of up to 50 characters from an alphabet covering every class, U+FEFF included.
  CHECK(count_differences(test::fuzz_cases(/*seed=*/1, /*count=*/40000, /*max_chars=*/50, /*with_feff=*/true)) == 0);
}

TEST_CASE("next_o200k_piece: linear time on 1 MB without a split") {
  // A quadratic matcher takes minutes here; the bound only catches that, it is not a benchmark.
  const size_t mb = 1 << 20;
  for (const std::string& text : {test::repeat("a", mb), test::repeat(" ", mb), test::repeat("!", mb),
                                  test::repeat("\xE4\xB8\xAD", mb / 3), test::repeat(" \xCC\x81", mb / 3),
                                  test::repeat(" ", mb) + "x", test::repeat("Aa", mb / 2)}) {
    auto t0 = std::chrono::steady_clock::now();
    size_t pieces = 0;
    for (size_t pos = 0; pos < text.size(); ++pieces) pos = next_o200k_piece(text, pos);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK_MESSAGE(seconds < 5.0, "splitting took " << seconds << " s for " << text.substr(0, 8) << "...");
    CHECK(pieces >= 1);
  }
}

}  // namespace ossrun
