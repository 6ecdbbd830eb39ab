// The o200k_harmony tokenizer: BPE over tiktoken ranks with the o200k pre-tokenizer, plus special tokens.
// Loaded from a checkpoint's HF tokenizer.json or from a tiktoken rank file.
//
// encode() treats special-token strings typed in the text as plain text, as harmony does (encode_ordinary);
// encode_with_specials() turns them into their ids. Invalid UTF-8 in the input is replaced (utf8.h states the
// policy). decode() returns the tokens' bytes, which need not be valid UTF-8 (a token can end mid-character);
// StreamingDecoder (streaming_decoder.h) cuts that stream at character boundaries.
// A loaded Tokenizer is immutable; its const methods may run on several threads at once.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "src/tokenizer/bpe_ranks.h"
#include "src/tokenizer/special_tokens.h"

namespace ossrun {

class Tokenizer {
 public:
  // mergeable[r] holds the bytes of token id r; specials have ids at or above mergeable.size().
  // Throws InputError when tokens repeat, a byte has no token, or a special id collides.
  Tokenizer(const std::vector<std::string>& mergeable, const std::vector<SpecialToken>& specials);

  // A tiktoken rank file with the o200k_harmony special tokens (every id up to 201087 decodes).
  static Tokenizer from_tiktoken(const std::filesystem::path& file);
  // A HF tokenizer.json; throws InputError naming the file and what is wrong when it is not an o200k-style
  // byte-level BPE (tokenizer_json_reader.cpp lists the checks).
  static Tokenizer from_tokenizer_json(const std::filesystem::path& file);
  // DIR/tokenizer.json.
  static Tokenizer from_model_dir(const std::filesystem::path& dir);

  std::vector<TokenId> encode(std::string_view text) const;
  void encode_into(std::string_view text, std::vector<TokenId>& out) const;
  std::vector<TokenId> encode_with_specials(std::string_view text) const;
  size_t count(std::string_view text) const;

  std::string decode(std::span<const TokenId> ids) const;
  void append_token(TokenId id, std::string& out) const;  // throws InputError for an id outside the vocabulary
  bool contains(TokenId id) const;

  // The id of a special token such as "<|start|>"; throws InputError when absent.
  TokenId special(std::string_view text) const;
  std::optional<TokenId> find_special(std::string_view text) const;
  bool is_special(TokenId id) const { return special_text_.count(id) != 0; }

  size_t mergeable_count() const { return ranks_.size(); }
  // One past the largest id.
  TokenId vocab_size() const { return vocab_size_; }
  const BpeRanks& ranks() const { return ranks_; }

 private:
  // Encodes text that is valid UTF-8 and holds no special tokens to recognise.
  void encode_valid(std::string_view text, std::vector<TokenId>& out) const;

  BpeRanks ranks_;
  std::unordered_map<std::string, TokenId> special_id_;
  std::unordered_map<TokenId, std::string> special_text_;
  size_t longest_special_ = 0;
  TokenId vocab_size_ = 0;
};

}  // namespace ossrun
