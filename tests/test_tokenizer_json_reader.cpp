// Tokenizer::from_tokenizer_json: the file write_tokenizer_json makes loads into the same tokenizer as the rank
// file (same ids on the corpus), and malformed files get an error naming the field.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "src/model/error.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/o200k_pattern.h"
#include "src/tokenizer/tokenizer.h"
#include "src/tokenizer/tokenizer_json_writer.h"
#include "tests/tokenizer/corpus.h"

namespace ossrun {
namespace {

// A small valid tokenizer.json: the 256 bytes, "ab" (256) and "abc" (257), two added tokens.
nlohmann::ordered_json tiny_tokenizer_json() {
  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["added_tokens"] = nlohmann::ordered_json::array(
      {{{"id", 258}, {"content", "<|start|>"}, {"special", true}}, {{"id", 259}, {"content", "<|end|>"}, {"special", true}}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", std::string(kO200kPattern)}}}, {"behavior", "Isolated"},
                           {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) {
    std::string text;
    append_byte_level(std::string(1, static_cast<char>(b)), text);
    vocab[text] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  j["model"] = {{"type", "BPE"},     {"ignore_merges", true},
                {"vocab", vocab},    {"merges", nlohmann::ordered_json::array({{"a", "b"}, "ab c"})}};
  return j;
}

}  // namespace

TEST_CASE("tokenizer.json: the written file loads into the same tokenizer as the rank file") {
  test::TempDir dir("ossrun-tokjson-read");
  write_tokenizer_json(default_tiktoken_path(), dir.path() / "tokenizer.json");
  const Tokenizer from_json = Tokenizer::from_model_dir(dir.path());
  const Tokenizer from_ranks = Tokenizer::from_tiktoken(default_tiktoken_path());
  CHECK(from_json.mergeable_count() == 199998);
  // The file's added tokens are 199998..200018; the reserved ids up to 201087 are added as tiktoken has them.
  CHECK(from_json.vocab_size() == 201088);
  CHECK(from_json.decode(std::vector<TokenId>{200019, 201087}) == "<|reserved_200019|><|reserved_201087|>");
  CHECK(from_json.special("<|endofprompt|>") == 200018);
  CHECK(from_json.special("<|call|>") == 200012);
  size_t differ = 0;
  for (const std::string& file : test::corpus_files()) {
    if (from_json.encode(file) != from_ranks.encode(file)) ++differ;
    if (from_json.encode_with_specials(file) != from_ranks.encode_with_specials(file)) ++differ;
  }
  for (const std::string& g : test::generated_cases())
    if (from_json.encode(g) != from_ranks.encode(g)) ++differ;
  CHECK(differ == 0);
}

TEST_CASE("tokenizer.json: a small hand-made file") {
  test::TempDir dir("ossrun-tokjson-tiny");
  std::ofstream(dir.path() / "tokenizer.json") << tiny_tokenizer_json().dump();
  const Tokenizer t = Tokenizer::from_model_dir(dir.path());
  CHECK(t.encode("abc") == std::vector<TokenId>{257});
  CHECK(t.encode("abd") == std::vector<TokenId>{256, 'd'});  // here each byte's id is its value
  CHECK(t.encode_with_specials("<|start|>ab<|end|>") == std::vector<TokenId>{258, 256, 259});
}

TEST_CASE("tokenizer.json: malformed files name what is wrong") {
  test::TempDir dir("ossrun-tokjson-bad");
  auto load = [&](const nlohmann::ordered_json& j) {
    std::ofstream(dir.path() / "tokenizer.json") << j.dump();
    return Tokenizer::from_model_dir(dir.path());
  };
  auto expect = [&](auto&& mutate, const char* message) {
    nlohmann::ordered_json j = tiny_tokenizer_json();
    mutate(j);
    CHECK_THROWS_WITH_AS(load(j), doctest::Contains(message), InputError);
  };
  expect([](auto& j) { j["model"]["type"] = "WordPiece"; }, "model.type: expected \"BPE\"");
  expect([](auto& j) { j["model"]["ignore_merges"] = false; }, "model.ignore_merges");
  expect([](auto& j) { j.erase("model"); }, "has no \"model\"");
  expect([](auto& j) { j["model"]["vocab"]["\xE4\xB8\xAD"] = 258; }, "is not a byte-level");
  expect([](auto& j) { j["model"]["vocab"]["ab"] = 257; }, "appears twice");
  expect([](auto& j) { j["model"]["vocab"]["ab"] = 9000; }, "outside 0..257");
  expect([](auto& j) { j["model"]["vocab"].erase("a"); }, "outside 0..256");
  expect([](auto& j) { j["model"]["merges"] = nlohmann::ordered_json::array({"ab c", {"a", "b"}}); },
         "not ordered by the merged token's id");
  expect([](auto& j) { j["model"]["merges"].push_back({"x", "y"}); }, "is not in the vocab");
  expect([](auto& j) { j["model"]["merges"].push_back(42); }, "model.merges[2]");
  expect([](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+"; }, "not the o200k regex");
  expect([](auto& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true; }, "use_regex");
  expect([](auto& j) { j["normalizer"] = {{"type", "NFC"}}; }, "normalizer");
  expect([](auto& j) { j["added_tokens"][0]["id"] = 5; }, "added_tokens[0].id");
  expect([](auto& j) { j["added_tokens"][1]["content"] = "<|start|>"; }, "appears twice");
  std::ofstream(dir.path() / "tokenizer.json") << "{\"model\": ";
  CHECK_THROWS_WITH_AS(Tokenizer::from_model_dir(dir.path()), doctest::Contains("not valid JSON"), InputError);
  CHECK_THROWS_WITH_AS(Tokenizer::from_model_dir(dir.path() / "absent"), doctest::Contains("no tokenizer.json"),
                       InputError);
}

}  // namespace ossrun
