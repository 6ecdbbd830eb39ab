// Tiny synthetic checkpoints for the engine tests, from the synth library: the "tiny" preset (gpt-oss.md
// §11's shape: 3 layers sliding/full/sliding, hidden 256, 8 experts top-4, 8 query / 2 KV heads x 64,
// vocabulary 1000, window 8), deterministic from the seed.
#pragma once
#include <cstdint>
#include <filesystem>

#include "src/model/config.h"
#include "src/synth/checkpoint_writer.h"
#include "src/synth/synth_config.h"

namespace ossrun::test {

inline ModelConfig write_tiny_checkpoint(const std::filesystem::path& dir, ExpertFormat format, uint64_t seed) {
  synth::SynthConfigRequest request;
  request.preset = "tiny";
  request.expert_format = format;
  const synth::SynthConfig config = synth::resolve_synth_config(request);
  synth::write_synthetic_checkpoint(dir, config, synth::SynthOptions{.seed = seed}, synth::WriteOptions{.threads = 1});
  return config.config;
}

}  // namespace ossrun::test
