// Tiny synthetic checkpoints for the engine tests, from the synth library: the "tiny" preset (gpt-oss.md
// §11's shape: 3 layers sliding/full/sliding, hidden 256, 8 experts top-4, 8 query / 2 KV heads x 64,
// vocabulary 1000, window 8), deterministic from the seed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "src/model/config.h"
#include "src/synth/checkpoint_writer.h"
#include "src/synth/synth_config.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/tokenizer_json_writer.h"

namespace ossrun::test {

inline ModelConfig write_tiny_checkpoint(const std::filesystem::path& dir, ExpertFormat format, uint64_t seed,
                                         std::vector<std::pair<std::string, nlohmann::json>> fields = {}) {
  synth::SynthConfigRequest request;
  request.preset = "tiny";
  request.expert_format = format;
  request.fields = std::move(fields);
  const synth::SynthConfig config = synth::resolve_synth_config(request);
  synth::write_synthetic_checkpoint(dir, config, synth::SynthOptions{.seed = seed}, synth::WriteOptions{.threads = 1});
  return config.config;
}

}  // namespace ossrun::test

namespace ossrun::test {

// The tiny shape with hidden size 64 and o200k_harmony's full vocabulary (201088 ids), plus a tokenizer.json
// written from the tiktoken rank file of tools/setup.sh: real text and harmony chats tokenize into it.
inline ModelConfig write_text_checkpoint(const std::filesystem::path& dir, uint64_t seed) {
  const ModelConfig c =
      write_tiny_checkpoint(dir, ExpertFormat::MXFP4, seed, {{"vocab_size", 201088}, {"hidden_size", 64}});
  write_tokenizer_json(default_tiktoken_path(), dir / "tokenizer.json");
  return c;
}

}  // namespace ossrun::test
