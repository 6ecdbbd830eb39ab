// Conformance with the peer (gpt-tokenizer 4.0.0, o200k_harmony): identical ids for every line and whole file of
// the corpus, the generated cases, 3,000 random strings and ill-formed UTF-8; decode(encode(x)) == x.
// Two divergences are named, U+0085 and U+FEFF: there the peer differs from tiktoken (the tokenizer the model
// was trained with, checked with tiktoken 1.0.22's Rust core), and we follow tiktoken. Texts holding either
// character are kept out of the plain comparison and checked against tiktoken's ids instead.
#include <doctest/doctest.h>

#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/tokenizer.h"
#include "src/tokenizer/utf8.h"
#include "tests/tokenizer/corpus.h"

namespace ossrun {
namespace {

struct Case {
  std::string text;     // raw bytes (may be ill-formed UTF-8)
  std::string source;   // where it came from, for messages
};

std::vector<Case> conformance_cases() {
  std::vector<Case> cases;
  size_t file_index = 0;
  for (const std::string& file : test::corpus_files()) {
    cases.push_back({file, "corpus file #" + std::to_string(file_index)});
    size_t start = 0, line = 1;
    while (start <= file.size()) {
      size_t end = file.find('\n', start);
      if (end == std::string::npos) end = file.size();
      cases.push_back({file.substr(start, end - start),
                       "corpus file #" + std::to_string(file_index) + " line " + std::to_string(line++)});
      start = end + 1;
    }
    ++file_index;
  }
  for (std::string& g : test::generated_cases()) cases.push_back({std::move(g), "generated"});
  // Random strings with U+0085 turned into U+00A0, so that all of them stay in the plain comparison.
  for (std::string& f : test::fuzz_cases(/*seed=*/7, /*count=*/3000, /*max_chars=*/40, /*with_feff=*/false)) {
    for (size_t at = f.find("\xC2\x85"); at != std::string::npos; at = f.find("\xC2\x85", at)) f[at + 1] = '\xA0';
    cases.push_back({std::move(f), "random"});
  }
  // Ill-formed UTF-8: stray continuation, invalid lead bytes, truncated sequences, a surrogate, overlong forms,
  // beyond U+10FFFF, and a truncated emoji between valid text.
  for (const char* bad : {"\x80", "abc\x80" "def", "\xFF\xFE", "\xE4\xB8", "x\xE4\xB8y", "\xED\xA0\x80",
                          "\xC0\xAF", "\xE0\x80\xAF", "\xF4\x90\x80\x80", "a\xF0\x9F\x98" "b", "\xF0\x9F\x98",
                          "ok \xC3 \xC3\xA9 \xE2\x82 \xE2\x82\xAC \xF0\x90\x8D end", "\xC2\xC2\xC2", "\xF8\x88\x80\x80\x80"})
    cases.push_back({bad, "ill-formed UTF-8"});
  // Leave out what holds U+0085 or U+FEFF (the named divergences below).
  std::erase_if(cases, [](const Case& c) {
    return c.text.find("\xC2\x85") != std::string::npos || c.text.find("\xEF\xBB\xBF") != std::string::npos;
  });
  return cases;
}

struct DivergentCase {
  const char* text;
  std::vector<TokenId> tiktoken;
  std::vector<TokenId> peer;
};

// U+0085 (NEL) is White_Space, so tiktoken's \s matches it; JavaScript's \s does not, so the peer glues it to a
// preceding space as punctuation. (Where the pieces' BPE comes out the same, as in "x \x85\x85y", they agree.)
const std::vector<DivergentCase> kNelCases = {
    {"a \xC2\x85" "b", {64, 220, 126, 227, 65}, {64, 1322, 227, 65}},
    {" \xC2\x85x", {220, 126, 227, 87}, {1322, 227, 87}},
    {"  \xC2\x85x", {256, 126, 227, 87}, {220, 1322, 227, 87}},
    {"x \xC2\x85\xC2\x85y", {87, 1322, 227, 126, 227, 88}, {87, 1322, 227, 126, 227, 88}},
};

// U+FEFF: tiktoken (checked with tiktoken 1.0.22, the Rust core) keeps it out of \s and has tokens for it
// (5574 = EF BB BF, 135153 = it twice, 71280 = " " + it). The peer diverges twice: JavaScript's \s contains
// U+FEFF, and its rank table lost those tokens (a BOM stripped when the table was built), so it spells them in
// two pieces. We follow tiktoken.
const std::vector<DivergentCase> kFeffCases = {
    {"\xEF\xBB\xBF", {5574}, {5416, 123}},
    {"\xEF\xBB\xBF\xEF\xBB\xBF", {135153}, {5416, 123, 5416, 123}},
    {"a\xEF\xBB\xBF\xEF\xBB\xBF" "b", {64, 135153, 65}, {64, 5416, 123, 5416, 123, 65}},
    {"x \xEF\xBB\xBF\xEF\xBB\xBF. y", {87, 71280, 5574, 13, 342}, {87, 71280, 5416, 123, 13, 342}},
    {"  \xEF\xBB\xBF", {220, 71280}, {256, 5416, 123}},
    {"\xEF\xBB\xBFHello", {5574, 13225}, {5416, 123, 13225}},
};

std::string show_ids(const std::vector<TokenId>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 40; ++i) s += std::to_string(ids[i]) + " ";
  return ids.size() > 40 ? s + "..." : s;
}

}  // namespace

TEST_CASE("tokenizer conformance: ids identical to the peer (gpt-tokenizer o200k_harmony)") {
  const Tokenizer tokenizer = Tokenizer::from_tiktoken(default_tiktoken_path());
  const std::vector<Case> cases = conformance_cases();
  nlohmann::json request;
  request["texts_b64"] = nlohmann::json::array();
  for (const Case& c : cases) request["texts_b64"].push_back(test::base64_encode(c.text));
  std::vector<DivergentCase> divergent = kNelCases;
  divergent.insert(divergent.end(), kFeffCases.begin(), kFeffCases.end());
  for (const DivergentCase& c : divergent) request["texts_b64"].push_back(test::base64_encode(c.text));
  const nlohmann::json response = test::run_peer("peer_encode.mjs", request);
  REQUIRE(response["ids"].size() == cases.size() + divergent.size());

  size_t differ = 0, roundtrip_bad = 0, total_tokens = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::vector<TokenId> ours = tokenizer.encode(c.text);
    std::vector<TokenId> peer = response["ids"][i].get<std::vector<TokenId>>();
    total_tokens += ours.size();
    if (ours != peer && ++differ <= 5)
      MESSAGE(c.source << ": \"" << utf8::sanitize(c.text.substr(0, 80)) << "\"\n  ours: " << show_ids(ours)
                       << "\n  peer: " << show_ids(peer));
    // decode(encode(x)) == x for well-formed x; ill-formed parts come back as U+FFFD, as the peer's do.
    std::string decoded = tokenizer.decode(ours);
    std::string peer_decoded = test::base64_decode(response["roundtrip_b64"][i].get<std::string>());
    if ((decoded != utf8::sanitize(c.text) || decoded != peer_decoded) && ++roundtrip_bad <= 5)
      MESSAGE(c.source << ": decode(encode(x)) != x for \"" << utf8::sanitize(c.text.substr(0, 80)) << "\"");
  }
  MESSAGE(cases.size() << " texts, " << total_tokens << " tokens compared with the peer");
  CHECK(differ == 0);
  CHECK(roundtrip_bad == 0);
  CHECK(total_tokens > 50000);

  // The named divergences: U+0085 and U+FEFF.
  for (size_t k = 0; k < divergent.size(); ++k) {
    const DivergentCase& c = divergent[k];
    INFO("divergent case " << k << ": " << test::base64_encode(c.text));
    CHECK(tokenizer.encode(c.text) == c.tiktoken);
    CHECK(response["ids"][cases.size() + k].get<std::vector<TokenId>>() == c.peer);
    CHECK(tokenizer.decode(tokenizer.encode(c.text)) == c.text);
  }
}

}  // namespace ossrun
