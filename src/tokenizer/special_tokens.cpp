#include "src/tokenizer/special_tokens.h"

namespace ossrun {
namespace {

const char* named_harmony_token(TokenId id) {
  switch (id) {
    case harmony_token::kStartOfText: return "<|startoftext|>";
    case harmony_token::kEndOfText: return "<|endoftext|>";
    case harmony_token::kReturn: return "<|return|>";
    case harmony_token::kConstrain: return "<|constrain|>";
    case harmony_token::kChannel: return "<|channel|>";
    case harmony_token::kStart: return "<|start|>";
    case harmony_token::kEnd: return "<|end|>";
    case harmony_token::kMessage: return "<|message|>";
    case harmony_token::kCall: return "<|call|>";
    case harmony_token::kEndOfPrompt: return "<|endofprompt|>";
    default: return nullptr;
  }
}

std::vector<SpecialToken> special_tokens_up_to(TokenId last) {
  std::vector<SpecialToken> out;
  for (TokenId id = harmony_token::kStartOfText; id <= last; ++id) {
    const char* name = named_harmony_token(id);
    out.push_back({id, name ? std::string(name) : "<|reserved_" + std::to_string(id) + "|>"});
  }
  return out;
}

}  // namespace

std::vector<SpecialToken> o200k_harmony_added_tokens() { return special_tokens_up_to(harmony_token::kEndOfPrompt); }

std::vector<SpecialToken> o200k_harmony_all_special_tokens() {
  return special_tokens_up_to(kO200kHarmonyVocabSize - 1);
}

}  // namespace ossrun
