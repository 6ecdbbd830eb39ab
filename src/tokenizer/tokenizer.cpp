#include "src/tokenizer/tokenizer.h"

#include <algorithm>
#include <stdexcept>

#include "src/model/error.h"
#include "src/tokenizer/pretokenizer.h"
#include "src/tokenizer/tiktoken_file.h"
#include "src/tokenizer/utf8.h"

namespace ossrun {

namespace {

BpeRanks make_ranks(const std::vector<std::string>& mergeable) {
  try {
    return BpeRanks(mergeable);
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string("tokenizer vocabulary: ") + e.what());
  }
}

}  // namespace

Tokenizer::Tokenizer(const std::vector<std::string>& mergeable, const std::vector<SpecialToken>& specials)
    : ranks_(make_ranks(mergeable)), vocab_size_(static_cast<TokenId>(mergeable.size())) {
  for (const SpecialToken& s : specials) {
    if (s.id < mergeable.size())
      throw InputError("special token " + s.text + " has id " + std::to_string(s.id) +
                       ", which belongs to a mergeable token");
    if (s.text.empty()) throw InputError("special token " + std::to_string(s.id) + " has no text");
    if (!special_text_.emplace(s.id, s.text).second)
      throw InputError("special token id " + std::to_string(s.id) + " appears twice");
    if (!special_id_.emplace(s.text, s.id).second) throw InputError("special token " + s.text + " appears twice");
    longest_special_ = std::max(longest_special_, s.text.size());
    vocab_size_ = std::max(vocab_size_, s.id + 1);
  }
}

Tokenizer Tokenizer::from_tiktoken(const std::filesystem::path& file) {
  std::vector<std::string> tokens = read_tiktoken_ranks(file);
  if (tokens.size() > harmony_token::kStartOfText)
    throw InputError(file.string() + ": " + std::to_string(tokens.size()) +
                     " tokens overlap the o200k_harmony special tokens that start at id 199998");
  return Tokenizer(tokens, o200k_harmony_all_special_tokens());
}

Tokenizer Tokenizer::from_model_dir(const std::filesystem::path& dir) {
  std::filesystem::path file = dir / "tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw InputError("no tokenizer.json in " + dir.string() + " (a gpt-oss checkpoint directory has one)");
  return from_tokenizer_json(file);
}

void Tokenizer::encode_valid(std::string_view text, std::vector<TokenId>& out) const {
  for (size_t pos = 0; pos < text.size();) {
    size_t end = next_o200k_piece(text, pos);
    ranks_.encode_piece(text.substr(pos, end - pos), out);
    pos = end;
  }
}

void Tokenizer::encode_into(std::string_view text, std::vector<TokenId>& out) const {
  if (utf8::is_valid(text)) {
    encode_valid(text, out);
  } else {
    encode_valid(utf8::sanitize(text), out);
  }
}

std::vector<TokenId> Tokenizer::encode(std::string_view text) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 4);
  encode_into(text, out);
  return out;
}

size_t Tokenizer::count(std::string_view text) const { return encode(text).size(); }

std::vector<TokenId> Tokenizer::encode_with_specials(std::string_view raw) const {
  std::string sanitized;
  std::string_view text = raw;
  if (!utf8::is_valid(raw)) {
    sanitized = utf8::sanitize(raw);
    text = sanitized;
  }
  std::vector<TokenId> out;
  size_t plain_start = 0;
  for (size_t pos = text.find("<|"); pos != std::string_view::npos; pos = text.find("<|", pos + 1)) {
    size_t close = text.find("|>", pos + 2);
    if (close == std::string_view::npos) break;
    size_t len = close + 2 - pos;
    if (len > longest_special_) continue;
    auto it = special_id_.find(std::string(text.substr(pos, len)));
    if (it == special_id_.end()) continue;
    encode_valid(text.substr(plain_start, pos - plain_start), out);
    out.push_back(it->second);
    plain_start = pos + len;
    pos = plain_start - 1;
  }
  encode_valid(text.substr(plain_start), out);
  return out;
}

bool Tokenizer::contains(TokenId id) const { return id < ranks_.size() || special_text_.count(id) != 0; }

void Tokenizer::append_token(TokenId id, std::string& out) const {
  if (id < ranks_.size()) {
    out += ranks_.bytes(id);
    return;
  }
  auto it = special_text_.find(id);
  if (it == special_text_.end())
    throw InputError("token id " + std::to_string(id) + " is not in the vocabulary (" +
                     std::to_string(ranks_.size()) + " mergeable tokens, " + std::to_string(special_text_.size()) +
                     " special tokens, largest id " + std::to_string(vocab_size_ - 1) + ")");
  out += it->second;
}

std::string Tokenizer::decode(std::span<const TokenId> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (TokenId id : ids) append_token(id, out);
  return out;
}

std::optional<TokenId> Tokenizer::find_special(std::string_view text) const {
  auto it = special_id_.find(std::string(text));
  if (it == special_id_.end()) return std::nullopt;
  return it->second;
}

TokenId Tokenizer::special(std::string_view text) const {
  auto id = find_special(text);
  if (!id) throw InputError("the tokenizer has no special token " + std::string(text));
  return *id;
}

}  // namespace ossrun
