#include "src/tokenizer/tokenizer_json_writer.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/model/error.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/o200k_pattern.h"
#include "src/tokenizer/special_tokens.h"
#include "src/tokenizer/tiktoken_file.h"

namespace ossrun {
namespace {

// Longest context the model supports; written as the tokenizer's model_max_length.
constexpr int kModelMaxLength = 131072;

// Appends `s` as a JSON string literal. Non-ASCII UTF-8 passes through unescaped, as tokenizers writes it.
void append_json_string(std::string_view s, std::string& out) {
  out.push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

// A token's byte-level form as a JSON string literal.
void append_token_literal(std::string_view bytes, std::string& out) {
  std::string text;
  append_byte_level(bytes, text);
  append_json_string(text, out);
}

struct Merge {
  uint32_t left, right;  // ranks of the two halves
};

// For every token in rank order, each split into two halves that are both tokens, sorted by the halves' ranks
// (transformers' TikTokenConverter order: merged rank, then left rank, then right rank).
std::vector<Merge> recover_merges(const std::vector<std::string>& tokens) {
  std::unordered_map<std::string_view, uint32_t> rank_of;
  rank_of.reserve(tokens.size() * 2);
  for (uint32_t r = 0; r < tokens.size(); ++r) rank_of.emplace(tokens[r], r);
  std::vector<Merge> merges;
  merges.reserve(tokens.size() * 3);
  for (const std::string& token : tokens) {
    size_t first = merges.size();
    std::string_view t = token;
    for (size_t split = 1; split < t.size(); ++split) {
      auto left = rank_of.find(t.substr(0, split));
      if (left == rank_of.end()) continue;
      auto right = rank_of.find(t.substr(split));
      if (right == rank_of.end()) continue;
      merges.push_back({left->second, right->second});
    }
    std::sort(merges.begin() + static_cast<std::ptrdiff_t>(first), merges.end(), [](const Merge& a, const Merge& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
  }
  return merges;
}

void append_added_token(const SpecialToken& t, std::string& out) {
  out += "{\"id\": " + std::to_string(t.id) + ", \"content\": ";
  append_json_string(t.text, out);
  out += ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}";
}

std::string tokenizer_json(const std::vector<std::string>& tokens) {
  std::vector<Merge> merges = recover_merges(tokens);
  std::string out;
  out.reserve(tokens.size() * 24 + merges.size() * 24 + 4096);
  out += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n";
  std::vector<SpecialToken> added = o200k_harmony_added_tokens();
  for (size_t i = 0; i < added.size(); ++i) {
    out += "    ";
    append_added_token(added[i], out);
    out += i + 1 < added.size() ? ",\n" : "\n";
  }
  out += "  ],\n  \"normalizer\": null,\n";
  out += "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n";
  out += "    {\"type\": \"Split\", \"pattern\": {\"Regex\": ";
  append_json_string(kO200kPattern, out);
  out += "}, \"behavior\": \"Isolated\", \"invert\": false},\n";
  out += "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}\n  ]},\n";
  out += "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, "
         "\"use_regex\": true},\n";
  out += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, "
         "\"use_regex\": true},\n";
  out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
         "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
         "    \"byte_fallback\": false,\n    \"ignore_merges\": true,\n    \"vocab\": {\n";
  for (size_t r = 0; r < tokens.size(); ++r) {
    out += "      ";
    append_token_literal(tokens[r], out);
    out += ": " + std::to_string(r);
    out += r + 1 < tokens.size() ? ",\n" : "\n";
  }
  out += "    },\n    \"merges\": [\n";
  for (size_t i = 0; i < merges.size(); ++i) {
    out += "      [";
    append_token_literal(tokens[merges[i].left], out);
    out += ", ";
    append_token_literal(tokens[merges[i].right], out);
    out += i + 1 < merges.size() ? "],\n" : "]\n";
  }
  out += "    ]\n  }\n}\n";
  return out;
}

std::string special_token_object(std::string_view text) {
  std::string out = "{\"content\": ";
  append_json_string(text, out);
  out += ", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false}";
  return out;
}

std::string special_tokens_map_json() {
  return "{\n  \"bos_token\": " + special_token_object("<|startoftext|>") +
         ",\n  \"eos_token\": " + special_token_object("<|return|>") +
         ",\n  \"pad_token\": " + special_token_object("<|endoftext|>") + "\n}\n";
}

std::string tokenizer_config_json() {
  std::string out = "{\n  \"added_tokens_decoder\": {\n";
  std::vector<SpecialToken> added = o200k_harmony_added_tokens();
  for (size_t i = 0; i < added.size(); ++i) {
    out += "    \"" + std::to_string(added[i].id) + "\": {\"content\": ";
    append_json_string(added[i].text, out);
    out += ", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, \"special\": true}";
    out += i + 1 < added.size() ? ",\n" : "\n";
  }
  out += "  },\n  \"bos_token\": \"<|startoftext|>\",\n  \"clean_up_tokenization_spaces\": false,\n"
         "  \"eos_token\": \"<|return|>\",\n  \"extra_special_tokens\": {},\n"
         "  \"model_input_names\": [\"input_ids\", \"attention_mask\"],\n"
         "  \"model_max_length\": " + std::to_string(kModelMaxLength) + ",\n"
         "  \"pad_token\": \"<|endoftext|>\",\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n";
  return out;
}

void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw InputError("cannot create " + path.string());
  bool ok = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) throw InputError("cannot write " + path.string() + " (disk full?)");
}

}  // namespace

void write_tokenizer_json(const std::filesystem::path& tiktoken_file, const std::filesystem::path& out_file) {
  std::vector<std::string> tokens = read_tiktoken_ranks(tiktoken_file);
  if (tokens.size() > harmony_token::kStartOfText)
    throw InputError(tiktoken_file.string() + ": " + std::to_string(tokens.size()) +
                     " mergeable tokens would overlap the o200k_harmony special tokens at " +
                     std::to_string(harmony_token::kStartOfText));
  write_file(out_file, tokenizer_json(tokens));
  std::filesystem::path dir = out_file.parent_path();
  write_file(dir / "tokenizer_config.json", tokenizer_config_json());
  write_file(dir / "special_tokens_map.json", special_tokens_map_json());
}

}  // namespace ossrun
