// Writes the Hugging Face tokenizer files of o200k_harmony (spec §7) from a tiktoken rank file, the way
// transformers' GptOssConverter / TikTokenConverter builds them, so synthetic checkpoints carry the same
// tokenizer as the published ones.
#pragma once
#include <filesystem>

namespace ossrun {

// Writes `out_file` (tokenizer.json): BPE with the byte-level vocabulary (rank = id), the merges recovered from
// the ranks (every split of a token into two ranked halves, ordered by the merged token's rank, then the halves'
// ranks), ignore_merges true, the Split(o200k regex, isolated) + ByteLevel(no prefix space, no regex)
// pre-tokenizer, ByteLevel decoder and post-processor, and the added tokens 199998..200018.
// Beside it, in the same directory, it writes tokenizer_config.json and special_tokens_map.json
// (bos <|startoftext|>, eos <|return|>, pad <|endoftext|>).
// Throws InputError when the rank file is unusable or a file cannot be written.
void write_tokenizer_json(const std::filesystem::path& tiktoken_file, const std::filesystem::path& out_file);

}  // namespace ossrun
