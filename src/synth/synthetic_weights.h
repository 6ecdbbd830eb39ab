// The values of a synthetic gpt-oss checkpoint: for every tensor of expected_tensors(config), a deterministic
// function from (seed, tensor name, position) to bytes, generated in independent units (elements, rows or
// experts) so the writer can split the work among threads without changing a byte.
//
// Scales are chosen so activations stay O(1) through any number of layers (the residual stream grows like
// sqrt(layers), which RMSNorm absorbs), logits are spread but not degenerate, and nothing overflows bf16:
//  - linear weights (q/k/v/o, lm_head, experts): N(0, 1/fan_in). For the real shapes (fan_in 2880)
//    this is std 0.0186, about transformers' initializer_range 0.02; unlike a fixed 0.02 it also keeps small
//    test shapes well-conditioned (outputs of a linear layer on an RMS-normalised input have unit variance);
//  - embedding: N(0, 1), a unit-RMS residual stream to which every layer adds O(1) updates (N(0, 1/H) when tied,
//    since it is then also the unembedding);
//  - norm weights N(1, 0.1^2); linear and expert biases N(0, 0.05^2); attention sinks N(0, 0.5^2) (they are
//    logits on the scale of the attention scores);
//  - router rows: Gaussian directions scaled to unit norm, so the logits of a random RMS-normalised input are
//    N(0, 1); router bias: routing_skew.h (zero for skew 0);
//  - MXFP4 experts: mxfp4_sampler.h, N(0, 1/fan_in) as quantize_block would store it. BF16 experts
//    (--expert-format bf16) are exactly those dequantized values, transposed to transformers' [E, in, out]:
//    the same seed gives the same model in either format.
// Dense BF16 values come from a 65536-entry quantile table (16 random bits each), so N(0, std^2) truncated at
// about 4.3 std.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "src/model/config.h"
#include "src/model/tensor_specs.h"
#include "src/synth/mxfp4_sampler.h"
#include "src/synth/normal.h"

namespace ossrun::synth {

struct SynthOptions {
  uint64_t seed = 0;
  double routing_skew = 0.5;    // Zipf exponent of expert popularity per layer; 0 = uniform routing
  bool sparse_experts = false;  // expert weights (MXFP4 blocks/scales or BF16 matrices) are left as holes
};

class SyntheticWeights {
 public:
  // Throws std::invalid_argument for a bad routing skew, InputError for BF16 experts whose hidden or intermediate
  // size is not a multiple of 32 (they are made from MXFP4 blocks).
  SyntheticWeights(const ModelConfig& config, const SynthOptions& options);

  const ModelConfig& config() const { return config_; }
  const SynthOptions& options() const { return options_; }
  const std::vector<TensorSpec>& specs() const { return specs_; }

  // Tensor i is made of units(i) equal units of unit_bytes(i) bytes.
  int64_t units(size_t i) const { return recipes_.at(i).units; }
  uint64_t unit_bytes(size_t i) const { return recipes_.at(i).unit_bytes; }
  // Expert weights that --sparse-experts leaves unwritten (they read back as zeros).
  bool is_hole(size_t i) const { return recipes_.at(i).hole; }

  // Writes units [first_unit, first_unit + n_units) of tensor i to out (n_units * unit_bytes(i) bytes).
  // Holes are filled with zeros. Throws std::out_of_range for units outside the tensor.
  void fill(size_t i, int64_t first_unit, int64_t n_units, std::byte* out) const;
  // The whole tensor (tests; small tensors).
  std::vector<std::byte> tensor_bytes(size_t i) const;

  // Router bias by popularity rank (layer l gives rank r to expert expert_ranking(seed, l, E)[r]).
  const std::vector<double>& router_bias_by_rank() const { return bias_by_rank_; }

 private:
  enum class Kind : uint8_t { Normal, RouterWeight, RouterBias, Mxfp4Blocks, Mxfp4Scales, ExpertBf16 };
  struct Recipe {
    Kind kind = Kind::Normal;
    int64_t units = 0;
    uint64_t unit_bytes = 0;
    bool hole = false;
    size_t table = 0;    // Normal: index into bf16_tables_
    size_t sampler = 0;  // MXFP4 and BF16 experts: index into samplers_
    std::string stream;  // random stream name: the tensor name, or the expert weight without _blocks/_scales
    int64_t layer = -1;
    int64_t rows = 0, cols = 0;  // RouterWeight: [E, H]; ExpertBf16: logical rows (out) and cols (in) per expert
  };
  using Bf16Table = std::array<uint16_t, kQuantiles>;

  Recipe make_recipe(const TensorSpec& spec);
  size_t bf16_table(double mean, double std);
  size_t sampler(double std);
  void fill_normal(const Recipe& r, int64_t first, int64_t n, std::byte* out) const;
  void fill_router_weight(const Recipe& r, int64_t first, int64_t n, std::byte* out) const;
  void fill_router_bias(const Recipe& r, std::byte* out) const;
  void fill_expert_bf16(const Recipe& r, int64_t first, int64_t n, std::byte* out) const;

  ModelConfig config_;
  SynthOptions options_;
  std::vector<TensorSpec> specs_;
  std::vector<Recipe> recipes_;
  std::vector<std::pair<double, double>> table_keys_;  // (mean, std) of each bf16 table
  std::vector<Bf16Table> bf16_tables_;
  std::vector<Mxfp4Sampler> samplers_;
  std::vector<double> bias_by_rank_;
};

}  // namespace ossrun::synth
