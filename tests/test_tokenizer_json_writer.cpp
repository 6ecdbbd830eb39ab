// write_tokenizer_json: the HF tokenizer.json of o200k_harmony written from the real o200k_base rank file.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "src/model/error.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/o200k_pattern.h"
#include "src/tokenizer/tiktoken_file.h"
#include "src/tokenizer/tokenizer_json_writer.h"
#include "tests/support/temp_dir.h"

namespace ossrun {
namespace {

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  REQUIRE_MESSAGE(in.good(), "cannot open " << p);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("byte_level: GPT-2 bytes_to_unicode order and round trip") {
  CHECK(byte_level_code_point('!') == U'!');
  CHECK(byte_level_code_point(' ') == U'\u0120');  // "Ġ"
  CHECK(byte_level_code_point('\n') == U'\u010A');  // "Ċ"
  CHECK(byte_level_code_point(0) == U'\u0100');
  CHECK(byte_level_code_point(0xAD) == U'\u0143');  // the last of the 68 remapped bytes
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string text;
  append_byte_level(all, text);
  CHECK(bytes_from_byte_level(text) == all);
  CHECK_FALSE(bytes_from_byte_level("\xE4\xB8\x80").has_value());  // U+4E00 is outside the alphabet
  CHECK_FALSE(bytes_from_byte_level(" ").has_value());             // space itself is remapped to Ġ
  CHECK_FALSE(bytes_from_byte_level("\xC0\xA1").has_value());      // overlong "!"
}

TEST_CASE("read_tiktoken_ranks: names the line of a malformed rank file") {
  test::TempDir dir("ossrun-tiktoken");
  auto write = [&](const std::string& body) {
    std::ofstream(dir.path() / "bad.tiktoken", std::ios::binary) << body;
    return dir.path() / "bad.tiktoken";
  };
  CHECK_THROWS_WITH_AS(read_tiktoken_ranks(write("IQ== 0\nIg== 2\n")), doctest::Contains(":2: expected rank 1"),
                       InputError);
  CHECK_THROWS_WITH_AS(read_tiktoken_ranks(write("IQ== 0\n%%%% 1\n")), doctest::Contains(":2: the token \"%%%%\""),
                       InputError);
  CHECK_THROWS_WITH_AS(read_tiktoken_ranks(write("IQ==0\n")), doctest::Contains(":1: expected \"BASE64 RANK\""),
                       InputError);
  CHECK_THROWS_WITH_AS(read_tiktoken_ranks(write("IQ== 0\nIQ== 1\n")), doctest::Contains("repeats"), InputError);
  CHECK_THROWS_WITH_AS(read_tiktoken_ranks(write("IQ== 0\n")), doctest::Contains("no token for the single byte 0"),
                       InputError);
  CHECK_THROWS_WITH_AS(read_tiktoken_ranks(dir.path() / "absent.tiktoken"), doctest::Contains("cannot open"),
                       InputError);
}

TEST_CASE("write_tokenizer_json: o200k_harmony tokenizer.json from the real rank file") {
  const auto tiktoken = default_tiktoken_path();
  test::TempDir dir("ossrun-tokjson");
  auto t0 = std::chrono::steady_clock::now();
  write_tokenizer_json(tiktoken, dir.path() / "tokenizer.json");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("write_tokenizer_json took " << seconds << " s");

  const auto j = read_json(dir.path() / "tokenizer.json");
  const auto& model = j["model"];
  CHECK(model["type"] == "BPE");
  CHECK(model["ignore_merges"] == true);
  CHECK(model["fuse_unk"] == false);
  const auto& vocab = model["vocab"];
  REQUIRE(vocab.size() == 199998);
  CHECK(vocab["!"] == 0);
  CHECK(vocab["\xC4\xA0"] == 220);      // "Ġ" = the space byte
  CHECK(vocab["system"] == 17360);
  CHECK(vocab["\xC4\xA0json"] == 5701);  // " json"

  // Every merge joins two vocab entries into a third; the merged ranks never decrease, and within one merged
  // token the (left, right) rank pairs ascend (TikTokenConverter's order).
  const auto& merges = model["merges"];
  std::unordered_map<std::string, int64_t> rank;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) rank[it.key()] = it.value().get<int64_t>();
  REQUIRE(merges.size() > 199998 - 256);
  int64_t prev_merged = -1, prev_left = -1, prev_right = -1;
  size_t bad = 0;
  for (const auto& m : merges) {
    const std::string l = m[0], r = m[1];
    auto li = rank.find(l), ri = rank.find(r), mi = rank.find(l + r);
    if (li == rank.end() || ri == rank.end() || mi == rank.end()) {
      ++bad;
      continue;
    }
    bool ordered = mi->second > prev_merged ||
                   (mi->second == prev_merged && (li->second > prev_left ||
                                                  (li->second == prev_left && ri->second > prev_right)));
    if (!ordered) ++bad;
    prev_merged = mi->second;
    prev_left = li->second;
    prev_right = ri->second;
  }
  CHECK(bad == 0);
  // Every token longer than one byte is reachable by some merge.
  std::vector<bool> has_merge(vocab.size());
  for (const auto& m : merges) has_merge[static_cast<size_t>(rank[m[0].get<std::string>() + m[1].get<std::string>()])] = true;
  size_t unreachable = 0;
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    if (bytes_from_byte_level(it.key())->size() > 1 && !has_merge[static_cast<size_t>(it.value().get<int64_t>())])
      ++unreachable;
  CHECK(unreachable == 0);

  const auto& pre = j["pre_tokenizer"];
  CHECK(pre["type"] == "Sequence");
  CHECK(pre["pretokenizers"][0]["type"] == "Split");
  CHECK(pre["pretokenizers"][0]["pattern"]["Regex"] == std::string(kO200kPattern));
  CHECK(pre["pretokenizers"][0]["behavior"] == "Isolated");
  CHECK(pre["pretokenizers"][1]["type"] == "ByteLevel");
  CHECK(pre["pretokenizers"][1]["add_prefix_space"] == false);
  CHECK(pre["pretokenizers"][1]["use_regex"] == false);
  CHECK(j["decoder"]["type"] == "ByteLevel");
  CHECK(j["post_processor"]["type"] == "ByteLevel");
  CHECK(j["post_processor"]["trim_offsets"] == false);
  CHECK(j["normalizer"].is_null());

  const auto& added = j["added_tokens"];
  REQUIRE(added.size() == 21);
  CHECK(added[0]["id"] == 199998);
  CHECK(added[0]["content"] == "<|startoftext|>");
  CHECK(added[4]["content"] == "<|return|>");
  CHECK(added[6]["content"] == "<|reserved_200004|>");
  CHECK(added[14]["content"] == "<|call|>");
  CHECK(added[20]["id"] == 200018);
  CHECK(added[20]["content"] == "<|endofprompt|>");
  for (const auto& a : added) CHECK(a["special"] == true);

  const auto map = read_json(dir.path() / "special_tokens_map.json");
  CHECK(map["bos_token"]["content"] == "<|startoftext|>");
  CHECK(map["eos_token"]["content"] == "<|return|>");
  CHECK(map["pad_token"]["content"] == "<|endoftext|>");
  const auto config = read_json(dir.path() / "tokenizer_config.json");
  CHECK(config["added_tokens_decoder"]["200012"]["content"] == "<|call|>");
  CHECK(config["eos_token"] == "<|return|>");
}

}  // namespace ossrun
