// The o200k_harmony special tokens (spec §7): ids, names, and the ranges the tokenizer files carry.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ossrun {

using TokenId = uint32_t;

namespace harmony_token {
constexpr TokenId kStartOfText = 199998;
constexpr TokenId kEndOfText = 199999;
constexpr TokenId kReturn = 200002;
constexpr TokenId kConstrain = 200003;
constexpr TokenId kChannel = 200005;
constexpr TokenId kStart = 200006;
constexpr TokenId kEnd = 200007;
constexpr TokenId kMessage = 200008;
constexpr TokenId kCall = 200012;
constexpr TokenId kEndOfPrompt = 200018;
}  // namespace harmony_token

// o200k_base has 199,998 mergeable tokens (ranks 0..199997); the model's vocabulary has 201,088 rows.
constexpr TokenId kO200kMergeableCount = 199998;
constexpr TokenId kO200kHarmonyVocabSize = 201088;

struct SpecialToken {
  TokenId id;
  std::string text;
};

// The added tokens of the HF tokenizer.json: ids 199998..200018, the named ones, <|endofprompt|> at 200018 and
// <|reserved_N|> in the gaps, in id order.
std::vector<SpecialToken> o200k_harmony_added_tokens();

// Everything tiktoken's o200k_harmony defines: the added tokens above plus <|reserved_N|> for 200019..201087,
// so that every row of the model's vocabulary decodes. In id order.
std::vector<SpecialToken> o200k_harmony_all_special_tokens();

}  // namespace ossrun
