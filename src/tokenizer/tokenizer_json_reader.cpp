// Tokenizer::from_tokenizer_json: reads a HF tokenizer.json and checks that it is what this tokenizer implements,
// an o200k-style byte-level BPE (spec §7):
//   - model.type "BPE" with ignore_merges true, a vocab of byte-level strings with ids 0..n-1, every single byte
//     present;
//   - merges that join two vocab entries into a third, ordered by the merged token's id (so lowest-rank-first
//     merging over ids is the same BPE);
//   - no normalizer; a pre_tokenizer that is Split(the o200k regex) followed by ByteLevel without its own regex;
//   - added_tokens with ids above the vocab.
// Each failure names the file, the field and what was found.
// When the added tokens are o200k_harmony's (<|start|> at 200006), the reserved ids the file leaves out, up to
// the model's 201,087, are added as <|reserved_N|> the way tiktoken's o200k_harmony defines them, so every row
// of the model's vocabulary decodes.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "src/model/error.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/o200k_pattern.h"
#include "src/tokenizer/tokenizer.h"

namespace ossrun {
namespace {

using nlohmann::json;

class JsonChecker {
 public:
  explicit JsonChecker(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(file_ + ": " + field + ": " + what);
  }

  const json& member(const json& object, const std::string& path, const char* key) const {
    if (!object.is_object()) fail(path, "expected an object, found " + brief(object));
    auto it = object.find(key);
    if (it == object.end()) fail(path, std::string("has no \"") + key + "\"");
    return *it;
  }

  static std::string brief(const json& v) {
    std::string s = v.dump();
    return s.size() > 120 ? s.substr(0, 117) + "..." : s;
  }

 private:
  std::string file_;
};

// The bytes of vocab entry `text`, or a failure naming it.
std::string vocab_bytes(const JsonChecker& check, const std::string& field, const std::string& text) {
  auto bytes = bytes_from_byte_level(text);
  if (!bytes || bytes->empty())
    check.fail(field, "the entry " + json(text).dump() + " is not a byte-level (GPT-2 bytes_to_unicode) string");
  return *bytes;
}

std::vector<std::string> read_vocab(const JsonChecker& check, const json& model) {
  const json& vocab = check.member(model, "model", "vocab");
  if (!vocab.is_object() || vocab.empty()) check.fail("model.vocab", "expected a non-empty object of token -> id");
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it->is_number_integer()) check.fail("model.vocab", "the id of " + json(it.key()).dump() + " is not an integer");
    int64_t id = it->get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab.size()))
      check.fail("model.vocab", "the id " + std::to_string(id) + " of " + json(it.key()).dump() +
                                    " is outside 0.." + std::to_string(vocab.size() - 1) +
                                    " (ids must be 0..n-1)");
    if (seen[static_cast<size_t>(id)]) check.fail("model.vocab", "the id " + std::to_string(id) + " appears twice");
    seen[static_cast<size_t>(id)] = true;
    tokens[static_cast<size_t>(id)] = vocab_bytes(check, "model.vocab", it.key());
  }
  return tokens;
}

// A merge is ["a", "b"] (tokenizers >= 0.20) or "a b" (older files).
std::pair<std::string, std::string> merge_parts(const JsonChecker& check, const json& m, size_t index) {
  std::string field = "model.merges[" + std::to_string(index) + "]";
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    size_t space = s.find(' ');
    if (space != std::string::npos && s.find(' ', space + 1) == std::string::npos)
      return {s.substr(0, space), s.substr(space + 1)};
  }
  check.fail(field, "expected [\"left\", \"right\"] or \"left right\", found " + JsonChecker::brief(m));
}

void check_merges(const JsonChecker& check, const json& model, const Tokenizer& tokenizer) {
  auto it = model.find("merges");
  if (it == model.end()) return;  // ignore_merges with whole-token lookups needs none
  if (!it->is_array()) check.fail("model.merges", "expected an array, found " + JsonChecker::brief(*it));
  const BpeRanks& ranks = tokenizer.ranks();
  uint32_t previous = 0;
  for (size_t i = 0; i < it->size(); ++i) {
    auto [left, right] = merge_parts(check, (*it)[i], i);
    std::string field = "model.merges[" + std::to_string(i) + "]";
    std::string l = vocab_bytes(check, field, left), r = vocab_bytes(check, field, right);
    if (ranks.rank(l) == BpeRanks::kNoRank || ranks.rank(r) == BpeRanks::kNoRank)
      check.fail(field, "a part of " + JsonChecker::brief((*it)[i]) + " is not in the vocab");
    uint32_t merged = ranks.rank(l + r);
    if (merged == BpeRanks::kNoRank)
      check.fail(field, "the merge of " + JsonChecker::brief((*it)[i]) + " is not in the vocab");
    if (merged < previous)
      check.fail(field, "merges are not ordered by the merged token's id (" + std::to_string(merged) + " after " +
                            std::to_string(previous) + "), so they are not tiktoken ranks");
    previous = merged;
  }
}

void check_pre_tokenizer(const JsonChecker& check, const json& root) {
  auto normalizer = root.find("normalizer");
  if (normalizer != root.end() && !normalizer->is_null())
    check.fail("normalizer", "expected null (o200k has none), found " + JsonChecker::brief(*normalizer));
  const json& pre = check.member(root, "tokenizer.json", "pre_tokenizer");
  const json& steps = check.member(pre, "pre_tokenizer", "pretokenizers");
  const std::string expected = "Sequence [Split(o200k regex, Isolated), ByteLevel(use_regex false)]";
  if (check.member(pre, "pre_tokenizer", "type") != "Sequence" || !steps.is_array() || steps.size() != 2)
    check.fail("pre_tokenizer", "expected " + expected + ", found " + JsonChecker::brief(pre));
  const json& split = steps[0];
  if (check.member(split, "pre_tokenizer[0]", "type") != "Split")
    check.fail("pre_tokenizer[0]", "expected a Split, found " + JsonChecker::brief(split));
  const json& pattern = check.member(check.member(split, "pre_tokenizer[0]", "pattern"), "pre_tokenizer[0].pattern",
                                     "Regex");
  if (pattern != std::string(kO200kPattern))
    check.fail("pre_tokenizer[0].pattern.Regex", "is not the o200k regex this tokenizer implements; found " +
                                                     JsonChecker::brief(pattern));
  if (check.member(split, "pre_tokenizer[0]", "behavior") != "Isolated")
    check.fail("pre_tokenizer[0].behavior", "expected \"Isolated\"");
  const json& byte_level = steps[1];
  if (check.member(byte_level, "pre_tokenizer[1]", "type") != "ByteLevel")
    check.fail("pre_tokenizer[1]", "expected ByteLevel, found " + JsonChecker::brief(byte_level));
  auto use_regex = byte_level.find("use_regex");
  if (use_regex != byte_level.end() && *use_regex != false)
    check.fail("pre_tokenizer[1].use_regex", "expected false (the Split does the splitting)");
  auto prefix = byte_level.find("add_prefix_space");
  if (prefix != byte_level.end() && *prefix != false) check.fail("pre_tokenizer[1].add_prefix_space", "expected false");
}

std::vector<SpecialToken> read_added_tokens(const JsonChecker& check, const json& root, size_t vocab_size) {
  std::vector<SpecialToken> specials;
  auto added = root.find("added_tokens");
  if (added == root.end()) return specials;
  if (!added->is_array()) check.fail("added_tokens", "expected an array");
  for (size_t i = 0; i < added->size(); ++i) {
    std::string field = "added_tokens[" + std::to_string(i) + "]";
    const json& t = (*added)[i];
    const json& id = check.member(t, field, "id");
    const json& content = check.member(t, field, "content");
    if (!id.is_number_integer() || id.get<int64_t>() < static_cast<int64_t>(vocab_size) ||
        id.get<int64_t>() > INT32_MAX)
      check.fail(field + ".id", "expected an id above the vocab (>= " + std::to_string(vocab_size) + "), found " +
                                    JsonChecker::brief(id));
    if (!content.is_string() || content.get_ref<const std::string&>().empty())
      check.fail(field + ".content", "expected a non-empty string");
    specials.push_back({static_cast<TokenId>(id.get<int64_t>()), content.get<std::string>()});
  }
  return specials;
}

void add_harmony_reserved_tokens(std::vector<SpecialToken>& specials) {
  bool harmony = false;
  std::vector<bool> used(kO200kHarmonyVocabSize, false);
  for (const SpecialToken& s : specials) {
    if (s.text == "<|start|>" && s.id == harmony_token::kStart) harmony = true;
    if (s.id < used.size()) used[s.id] = true;
  }
  if (!harmony) return;
  for (TokenId id = harmony_token::kEndOfPrompt + 1; id < kO200kHarmonyVocabSize; ++id)
    if (!used[id]) specials.push_back({id, "<|reserved_" + std::to_string(id) + "|>"});
}

}  // namespace

Tokenizer Tokenizer::from_tokenizer_json(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError("cannot open " + file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  json root;
  try {
    root = json::parse(buffer.str());
  } catch (const json::parse_error& e) {
    throw InputError(file.string() + ": not valid JSON: " + e.what());
  }
  const JsonChecker check(file.string());
  const json& model = check.member(root, "tokenizer.json", "model");
  auto type = model.find("type");
  if (type != model.end() && *type != "BPE")
    check.fail("model.type", "expected \"BPE\", found " + JsonChecker::brief(*type));
  auto ignore_merges = model.find("ignore_merges");
  if (ignore_merges == model.end() || *ignore_merges != true)
    check.fail("model.ignore_merges", "expected true (tiktoken BPE looks whole pieces up before merging)");
  check_pre_tokenizer(check, root);
  std::vector<std::string> tokens = read_vocab(check, model);
  std::vector<SpecialToken> specials = read_added_tokens(check, root, tokens.size());
  add_harmony_reserved_tokens(specials);
  Tokenizer tokenizer = [&] {
    try {
      return Tokenizer(tokens, specials);
    } catch (const InputError& e) {
      check.fail("model.vocab / added_tokens", e.what());
    }
  }();
  check_merges(check, model, tokenizer);
  return tokenizer;
}

}  // namespace ossrun
