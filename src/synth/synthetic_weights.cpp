#include "src/synth/synthetic_weights.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "src/model/bf16.h"
#include "src/model/error.h"
#include "src/model/mxfp4.h"
#include "src/synth/routing_skew.h"

namespace ossrun::synth {
namespace {

constexpr double kNormWeightStd = 0.1;  // norm weights N(1, 0.1^2)
constexpr double kBiasStd = 0.05;
constexpr double kSinkStd = 0.5;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void store_bf16(std::byte* out, int64_t i, uint16_t v) { std::memcpy(out + 2 * i, &v, 2); }

}  // namespace

SyntheticWeights::SyntheticWeights(const ModelConfig& config, const SynthOptions& options)
    : config_(config), options_(options), specs_(expected_tensors(config)) {
  bias_by_rank_ = calibrate_router_bias(config.num_local_experts, config.num_experts_per_tok, options.routing_skew);
  for (const TensorSpec& spec : specs_) recipes_.push_back(make_recipe(spec));
}

size_t SyntheticWeights::bf16_table(double mean, double std) {
  for (size_t i = 0; i < table_keys_.size(); ++i)
    if (table_keys_[i] == std::make_pair(mean, std)) return i;
  const auto& q = standard_normal_quantiles();
  Bf16Table t;
  for (int i = 0; i < kQuantiles; ++i) t[i] = float_to_bf16(static_cast<float>(mean + std * q[i]));
  table_keys_.emplace_back(mean, std);
  bf16_tables_.push_back(t);
  return bf16_tables_.size() - 1;
}

size_t SyntheticWeights::sampler(double std) {
  for (size_t i = 0; i < samplers_.size(); ++i)
    if (samplers_[i].std() == std) return i;
  samplers_.emplace_back(std);
  return samplers_.size() - 1;
}

SyntheticWeights::Recipe SyntheticWeights::make_recipe(const TensorSpec& spec) {
  const ModelConfig& c = config_;
  const double H = double(c.hidden_size), I = double(c.intermediate_size);
  Recipe r;
  r.stream = spec.name;
  r.layer = spec.layer;
  const std::string& n = spec.name;
  auto normal = [&](double mean, double std) {
    r.kind = Kind::Normal;
    r.table = bf16_table(mean, std);
    r.units = spec.numel();
    r.unit_bytes = 2;
  };
  if (spec.component == Component::Experts && (ends_with(n, "_blocks") || ends_with(n, "_scales"))) {
    const bool blocks = ends_with(n, "_blocks");
    r.kind = blocks ? Kind::Mxfp4Blocks : Kind::Mxfp4Scales;
    r.stream = n.substr(0, n.size() - 7);
    r.sampler = sampler(1 / std::sqrt(ends_with(r.stream, "gate_up_proj") ? H : I));
    r.units = spec.shape[0] * spec.shape[1];                       // rows of all experts
    r.unit_bytes = uint64_t(spec.shape[2]) * (blocks ? mxfp4::kBlockBytes : 1);  // G blocks per row
    r.hole = options_.sparse_experts;
  } else if (spec.component == Component::Experts && (ends_with(n, "gate_up_proj") || ends_with(n, "down_proj"))) {
    // [E, in, out]: the MXFP4 stream's logical [out, in] rows, transposed. A unit is the 32 input rows of one
    // block column (all `out` blocks g of one expert), so it can be made without the rest of the expert.
    r.kind = Kind::ExpertBf16;
    r.sampler = sampler(1 / std::sqrt(double(spec.shape[1])));
    r.cols = spec.shape[1];
    r.rows = spec.shape[2];
    if (r.cols % mxfp4::kBlock)
      throw InputError(n + ": synthetic BF16 experts are dequantized MXFP4 blocks, so the input dimension " +
                       std::to_string(r.cols) + " must be a multiple of 32");
    r.units = spec.shape[0] * (r.cols / mxfp4::kBlock);
    r.unit_bytes = uint64_t(mxfp4::kBlock * r.rows) * 2;
    r.hole = options_.sparse_experts;
  } else if (ends_with(n, "mlp.router.weight")) {
    r.kind = Kind::RouterWeight;
    r.rows = spec.shape[0];
    r.cols = spec.shape[1];
    r.units = r.rows;
    r.unit_bytes = uint64_t(r.cols) * 2;
  } else if (ends_with(n, "mlp.router.bias")) {
    r.kind = Kind::RouterBias;
    r.units = 1;
    r.unit_bytes = uint64_t(spec.numel()) * 2;
  } else if (ends_with(n, "layernorm.weight") || n == "model.norm.weight") {
    normal(1.0, kNormWeightStd);
  } else if (ends_with(n, ".bias")) {  // q/k/v/o biases (the router bias is handled above)
    normal(0.0, kBiasStd);
  } else if (ends_with(n, "self_attn.sinks")) {
    normal(0.0, kSinkStd);
  } else if (n == "model.embed_tokens.weight") {
    normal(0.0, c.tie_word_embeddings ? 1 / std::sqrt(H) : 1.0);
  } else if (n == "lm_head.weight" || ends_with(n, "_proj.weight")) {
    normal(0.0, 1 / std::sqrt(double(spec.shape[1])));  // [out, in]: fan_in is the last dim
  } else if (spec.component == Component::Experts && ends_with(n, "_bias")) {  // gate_up_proj_bias, down_proj_bias
    normal(0.0, kBiasStd);
  } else {
    throw std::logic_error("synthetic weights: no recipe for tensor '" + n + "'");
  }
  return r;
}

void SyntheticWeights::fill(size_t i, int64_t first_unit, int64_t n_units, std::byte* out) const {
  const Recipe& r = recipes_.at(i);
  if (first_unit < 0 || n_units < 0 || first_unit + n_units > r.units)
    throw std::out_of_range(specs_[i].name + ": units [" + std::to_string(first_unit) + ", " +
                            std::to_string(first_unit + n_units) + ") outside [0, " + std::to_string(r.units) + ")");
  if (r.hole) {
    std::memset(out, 0, uint64_t(n_units) * r.unit_bytes);
    return;
  }
  switch (r.kind) {
    case Kind::Normal: return fill_normal(r, first_unit, n_units, out);
    case Kind::RouterWeight: return fill_router_weight(r, first_unit, n_units, out);
    case Kind::RouterBias: return fill_router_bias(r, out);
    case Kind::ExpertBf16: return fill_expert_bf16(r, first_unit, n_units, out);
    case Kind::Mxfp4Blocks:
    case Kind::Mxfp4Scales: {
      const uint64_t groups = r.kind == Kind::Mxfp4Blocks ? r.unit_bytes / mxfp4::kBlockBytes : r.unit_bytes;
      const Mxfp4Streams streams(options_.seed, r.stream);
      const Mxfp4Sampler& s = samplers_[r.sampler];
      auto* o = reinterpret_cast<uint8_t*>(out);
      if (r.kind == Kind::Mxfp4Blocks) s.blocks(streams, uint64_t(first_unit) * groups, uint64_t(n_units) * groups, o);
      else s.scales(streams, uint64_t(first_unit) * groups, uint64_t(n_units) * groups, o);
      return;
    }
  }
}

std::vector<std::byte> SyntheticWeights::tensor_bytes(size_t i) const {
  std::vector<std::byte> out(uint64_t(units(i)) * unit_bytes(i));
  fill(i, 0, units(i), out.data());
  return out;
}

void SyntheticWeights::fill_normal(const Recipe& r, int64_t first, int64_t n, std::byte* out) const {
  // Element i takes 16 bits of draw i/4.
  const Bf16Table& table = bf16_tables_[r.table];
  const CounterRng rng(options_.seed, r.stream);
  int64_t i = first;
  const int64_t end = first + n;
  while (i < end) {
    const uint64_t d = rng.at(uint64_t(i) / 4);
    for (int lane = int(i % 4); lane < 4 && i < end; ++lane, ++i) store_bf16(out, i - first, table[(d >> (16 * lane)) & 0xffff]);
  }
}

void SyntheticWeights::fill_router_weight(const Recipe& r, int64_t first, int64_t n, std::byte* out) const {
  const auto& q = standard_normal_quantiles();
  const CounterRng rng(options_.seed, r.stream);
  std::vector<float> row(r.cols);
  for (int64_t e = first; e < first + n; ++e) {
    double norm2 = 0;
    for (int64_t h = 0; h < r.cols; ++h) {
      const uint64_t k = uint64_t(e * r.cols + h);
      row[h] = q[(rng.at(k / 4) >> (16 * (k % 4))) & 0xffff];
      norm2 += double(row[h]) * row[h];
    }
    const double inv = 1 / std::sqrt(norm2);
    for (int64_t h = 0; h < r.cols; ++h) store_bf16(out, (e - first) * r.cols + h, float_to_bf16(float(row[h] * inv)));
  }
}

void SyntheticWeights::fill_router_bias(const Recipe& r, std::byte* out) const {
  const std::vector<int64_t> ranking = expert_ranking(options_.seed, r.layer, config_.num_local_experts);
  for (size_t rank = 0; rank < ranking.size(); ++rank)
    store_bf16(out, ranking[rank], float_to_bf16(float(bias_by_rank_[rank])));
}

void SyntheticWeights::fill_expert_bf16(const Recipe& r, int64_t first, int64_t n, std::byte* out) const {
  const Mxfp4Streams streams(options_.seed, r.stream);
  const Mxfp4Sampler& s = samplers_[r.sampler];
  const int64_t groups = r.cols / mxfp4::kBlock;
  uint8_t scale, packed[mxfp4::kBlockBytes];
  float values[mxfp4::kBlock];
  for (int64_t u = first; u < first + n; ++u) {
    const int64_t e = u / groups, g = u % groups;
    std::byte* unit = out + uint64_t(u - first) * r.unit_bytes;  // [32 input rows][out]
    for (int64_t o = 0; o < r.rows; ++o) {
      const uint64_t block = uint64_t((e * r.rows + o) * groups + g);
      s.scales(streams, block, 1, &scale);
      s.blocks(streams, block, 1, packed);
      mxfp4::dequantize_row(packed, &scale, mxfp4::kBlock, values);
      for (int k = 0; k < mxfp4::kBlock; ++k) store_bf16(unit, k * r.rows + o, float_to_bf16(values[k]));
    }
  }
}

}  // namespace ossrun::synth
