// The tokenizer test corpus: the files under tests/tokenizer/corpus (one case per line, and each file whole),
// plus generated cases for what a text file shows badly: every kind of white space, CRLF and lone CR, long runs
// and long words. Shared by the conformance and pre-tokenizer tests.
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/tokenizer/peer.h"

namespace ossrun::test {

inline std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(tokenizer_test_dir() / "corpus"))
    if (entry.path().extension() == ".txt") {
      std::stringstream s;
      s << std::ifstream(entry.path(), std::ios::binary).rdbuf();
      files.push_back(s.str());
    }
  return files;
}

inline std::string repeat(std::string_view s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// White space as tiktoken defines it (White_Space), JavaScript's extra U+FEFF, and look-alikes that are not
// white space (zero-width space, joiners, word joiner, Mongolian vowel separator).
inline const std::vector<std::string>& white_space_kinds() {
  static const std::vector<std::string> kinds = {
      "\t", "\n", "\v", "\f", "\r", " ", "\xC2\x85", "\xC2\xA0", "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81",
      "\xE2\x80\x82", "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88",
      "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80",
      "\xE2\x80\x8B", "\xE2\x80\x8C", "\xE2\x80\x8D", "\xE2\x81\xA0", "\xE1\xA0\x8E"};
  return kinds;
}

// Generated cases. U+FEFF cases are left out here: the peer mishandles them (see the conformance test).
inline std::vector<std::string> generated_cases() {
  std::vector<std::string> cases;
  for (const std::string& w : white_space_kinds()) {
    cases.push_back("a" + w + "b");
    cases.push_back("a " + w + "b");
    cases.push_back("a" + w + w + "b");
    cases.push_back("x" + w + " y" + w);
    cases.push_back(w + "Word" + w + w + "." + w + "\n" + w);
    cases.push_back("end" + w + w + w);
    cases.push_back("!" + w + "?" + w + w + "1" + w + "\r\n");
  }
  cases.push_back("line one\r\nline two\r\n\r\nline four\rline five\r\rline seven\n\r\n\rend");
  cases.push_back("\r\n\r\n  \r\n\t\r\n   x");
  cases.push_back("trailing spaces   \n   leading spaces\n\t\ttabs\t\n \n");
  cases.push_back(repeat(" ", 1000) + "x" + repeat(" ", 999));
  cases.push_back(repeat("\n", 300) + repeat("\r\n", 300) + repeat("\r", 300));
  cases.push_back(repeat("a", 3000));
  cases.push_back(repeat("A", 2000) + repeat("b", 2000));
  cases.push_back(repeat("0123456789", 300));
  cases.push_back(repeat("!", 2000) + repeat("?!", 500) + repeat("/", 100) + "\n\n");
  cases.push_back(repeat("-=", 1000));
  cases.push_back(repeat("\xF0\x9F\x98\x80", 500));  // 😀 × 500
  cases.push_back(repeat("\xE4\xB8\xAD\xE6\x96\x87", 400));  // 中文 × 400
  cases.push_back(repeat("Supercalifragilisticexpialidocious", 40));
  cases.push_back(repeat("Pneumonoultramicroscopicsilicovolcanoconiosis", 30) + "'S");
  cases.push_back(repeat("\xD0\xB0\xD0\xB1\xD0\xB2", 500));  // абв × 500, no white space
  cases.push_back(repeat("e\xCC\x81", 600));  // e + combining acute × 600
  cases.push_back(repeat("\xE0\xA4\x95\xE0\xA5\x8D\xE0\xA4\xB7", 300));  // क्ष × 300
  cases.push_back(repeat("1,234.56 ", 200));
  cases.push_back("<|start|>user<|message|>special strings are plain text<|end|><|return|><|call|>");
  cases.push_back("<|endoftext|> <|reserved_200013|> <|endofprompt|> <|not_special|>");
  return cases;
}

}  // namespace ossrun::test

namespace ossrun::test {

// Random strings over an alphabet with members of every class the o200k regex distinguishes (upper, lower,
// title-case, modifier and other letters, the three kinds of marks, numbers, white space, line breaks,
// apostrophes and contraction letters, punctuation, emoji pieces). Deterministic for a given seed.
// All characters are from Unicode 13 or older, so every engine's tables agree on them.
inline std::vector<std::string> fuzz_cases(uint32_t seed, size_t count, size_t max_chars, bool with_feff) {
  static const char* alphabet[] = {
      "a", "s", "t", "r", "e", "v", "m", "l", "d", "x", "S", "T", "R", "E", "V", "M", "L", "D", "A", "Z", "'",
      "'", "\xE2\x80\x99", "0", "7", "9", "\xC2\xB2", "\xC2\xBD", "\xE2\x85\xAB", "\xD9\xA3", ".", ",", "!", "?",
      "-", "/", "/", "\"", "(", "@", "#", "%", "&", "*", "+", "<", "|", "_", "`", "{", "]", ";", ":", " ", " ",
      " ", "\t", "\n", "\r", "\n", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\xC2\x85", "\xE2\x80\x8B",
      "\xC3\x89", "\xCE\xA3", "\xD0\x94", "\xC3\xA9", "\xCF\x83", "\xD0\xB4", "\xC3\x9F", "\xC5\xBF", "\xC7\x85",
      "\xCA\xB0", "\xE3\x83\xBC", "\xE4\xB8\xAD", "\xE3\x81\x82", "\xD8\xA7", "\xD7\x90", "\xE0\xA4\x95",
      "\xCC\x81", "\xE0\xA4\x83", "\xE2\x83\x9D", "\xE0\xA4\xBF", "\xF0\x9F\x98\x80", "\xE2\x80\x8D",
      "\xEF\xB8\x8F", "\xF0\x9F\x8F\xBD", "\xF0\x9F\x87\xBA", "\xE2\x80\x8E", "\xEE\x80\x80", "\xEF\xBF\xBD"};
  constexpr size_t kAlphabet = sizeof(alphabet) / sizeof(alphabet[0]);
  uint64_t state = 0x9E3779B97F4A7C15ull ^ seed;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::vector<std::string> cases;
  for (size_t c = 0; c < count; ++c) {
    std::string s;
    size_t n = 1 + next() % max_chars;
    for (size_t i = 0; i < n; ++i) {
      if (with_feff && next() % 23 == 0) s += "\xEF\xBB\xBF";
      else s += alphabet[next() % kAlphabet];
    }
    cases.push_back(std::move(s));
  }
  return cases;
}

}  // namespace ossrun::test
