// Tiny gpt-oss checkpoints with random weights for the engine tests, scaled so activations stay O(1):
// a sliding/full/sliding stack, window 5, 6 experts top-3, vocabulary 120.
#pragma once
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "src/model/bf16.h"
#include "src/model/config.h"
#include "src/model/tensor_specs.h"
#include "tests/support/safetensors_writer.h"

namespace ossrun::test {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline std::vector<RawTensor> random_tensors(const ModelConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<RawTensor> out;
  for (const TensorSpec& s : expected_tensors(c)) {
    RawTensor t{s.name, s.dtype, s.shape, std::vector<uint8_t>(s.nbytes())};
    if (ends_with(s.name, "_blocks")) {
      for (auto& b : t.bytes) b = static_cast<uint8_t>(rng());
    } else if (ends_with(s.name, "_scales")) {
      // E2M1 magnitudes average ~2.5: 2^-4..2^-6 keeps rows of 64-256 inputs at O(1) outputs.
      for (auto& b : t.bytes) b = static_cast<uint8_t>(121 + rng() % 3);
    } else {
      double mean = 0, sd;
      if (ends_with(s.name, "norm.weight")) mean = 1, sd = 0.1;
      else if (ends_with(s.name, "sinks") || ends_with(s.name, "embed_tokens.weight")) sd = 1;
      else if (ends_with(s.name, "bias")) sd = 0.1;
      else if (ends_with(s.name, "experts.gate_up_proj") || ends_with(s.name, "experts.down_proj")) sd = 1 / std::sqrt(double(s.shape[1]));
      else if (ends_with(s.name, "router.weight")) sd = 3 / std::sqrt(double(s.shape.back()));
      else sd = 1 / std::sqrt(double(s.shape.back()));  // (out, in) linear weights
      auto* p = reinterpret_cast<uint16_t*>(t.bytes.data());
      for (int64_t i = 0; i < s.numel(); ++i) p[i] = float_to_bf16(static_cast<float>(mean + sd * nd(rng)));
    }
    out.push_back(std::move(t));
  }
  return out;
}

inline ModelConfig tiny_config(ExpertFormat format) {
  ModelConfig c = micro_config(format);
  c.num_hidden_layers = 3;
  c.layer_types = {LayerType::SlidingAttention, LayerType::FullAttention, LayerType::SlidingAttention};
  c.num_local_experts = 6;
  c.num_experts_per_tok = 3;
  c.sliding_window = 5;
  c.vocab_size = 120;
  c.max_position_embeddings = 256;
  return c;
}

// Writes tiny_config(format) with random_tensors(seed) into dir.
inline ModelConfig write_tiny_checkpoint(const std::filesystem::path& dir, ExpertFormat format, uint32_t seed) {
  const ModelConfig c = tiny_config(format);
  write_checkpoint(dir, c, random_tensors(c, seed));
  return c;
}

}  // namespace ossrun::test
