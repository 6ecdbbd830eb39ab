// Tiny synthetic checkpoints for the engine tests, from the synth library: the "tiny" preset (gpt-oss.md
// §11's shape: 3 layers sliding/full/sliding, hidden 256, 8 experts top-4, 8 query / 2 KV heads x 64,
// vocabulary 1000, window 8), deterministic from the seed.
#pragma once
#include <cstdint>
#include <filesystem>

#include "src/model/config.h"
#include "src/synth/checkpoint_writer.h"
#include "src/synth/synth_config.h"
#include "src/tokenizer/data_paths.h"

namespace ossrun::test {

inline ModelConfig write_tiny_checkpoint(const std::filesystem::path& dir, ExpertFormat format, uint64_t seed) {
  synth::SynthConfigRequest request;
  request.preset = "tiny";
  request.expert_format = format;
  const synth::SynthConfig config = synth::resolve_synth_config(request);
  synth::write_synthetic_checkpoint(dir, config, synth::SynthOptions{.seed = seed}, synth::WriteOptions{.threads = 1});
  return config.config;
}

// The "tiny-chat" preset (hidden 64, o200k_harmony's full vocabulary of 201088 ids) with its tokenizer.json:
// real text and harmony chats tokenize into it.
inline ModelConfig write_text_checkpoint(const std::filesystem::path& dir, uint64_t seed) {
  synth::SynthConfigRequest request;
  request.preset = "tiny-chat";
  const synth::SynthConfig config = synth::resolve_synth_config(request);
  synth::write_synthetic_checkpoint(dir, config, synth::SynthOptions{.seed = seed},
                                    synth::WriteOptions{.threads = 1, .tiktoken_file = default_tiktoken_path()});
  return config.config;
}

}  // namespace ossrun::test
