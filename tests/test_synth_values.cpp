// The value generators of synthetic checkpoints: Gaussian quantiles, MXFP4 blocks, and every tensor recipe.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "src/model/bf16.h"
#include "src/model/mxfp4.h"
#include "src/synth/mxfp4_sampler.h"
#include "src/synth/normal.h"
#include "src/synth/synthetic_weights.h"
#include "tests/test_synth_util.h"

using namespace ossrun;
using namespace ossrun::synth;

TEST_CASE("normal_quantile inverts normal_cdf") {
  CHECK(normal_quantile(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-14));
  CHECK(normal_quantile(0.5) == doctest::Approx(0.0).epsilon(1e-15));
  CHECK(normal_quantile(1e-10) == doctest::Approx(-6.361340902404056).epsilon(1e-12));
  for (double p : {1e-12, 1e-6, 0.001, 0.02, 0.0243, 0.0245, 0.3, 0.5, 0.77, 0.9757, 0.999, 1 - 1e-9}) {
    INFO("p = " << p);
    CHECK(normal_cdf(normal_quantile(p)) == doctest::Approx(p).epsilon(1e-12));
  }
  CHECK_THROWS_AS(normal_quantile(0.0), std::domain_error);
  CHECK_THROWS_AS(normal_quantile(1.0), std::domain_error);
}

TEST_CASE("standard_normal_quantiles is a symmetric N(0, 1) table") {
  const auto& q = standard_normal_quantiles();
  double sum = 0, sum2 = 0;
  for (int i = 0; i < kQuantiles; ++i) {
    CHECK(q[i] == -q[kQuantiles - 1 - i]);
    if (i > 0) CHECK(q[i] > q[i - 1]);
    sum += q[i];
    sum2 += double(q[i]) * q[i];
  }
  CHECK(sum == 0.0);
  CHECK(sum2 / kQuantiles == doctest::Approx(1.0).epsilon(2e-3));  // truncation at 4.3 sigma loses ~0.04%
  CHECK(q[kQuantiles - 1] == doctest::Approx(4.3).epsilon(0.02));
}

namespace {

struct BlockStats {
  std::map<int, double> exponent_share;  // scale byte -> share of blocks
  double magnitude_share[8] = {};        // E2M1 magnitude code -> share of values
  double mean = 0, std = 0;
};

BlockStats stats_of(const std::vector<uint8_t>& blocks, const std::vector<uint8_t>& scales) {
  BlockStats s;
  const size_t n = scales.size();
  double sum = 0, sum2 = 0;
  for (size_t b = 0; b < n; ++b) {
    s.exponent_share[scales[b]] += 1.0 / double(n);
    for (int k = 0; k < mxfp4::kBlock; ++k) {
      const uint8_t byte = blocks[b * 16 + k / 2];
      s.magnitude_share[((k & 1) ? byte >> 4 : byte) & 7] += 1.0 / double(n * 32);
      const double v = mxfp4::element(&blocks[b * 16], &scales[b], k);
      sum += v;
      sum2 += v * v;
    }
  }
  s.mean = sum / double(n * 32);
  s.std = std::sqrt(sum2 / double(n * 32) - s.mean * s.mean);
  return s;
}

}  // namespace

TEST_CASE("Mxfp4Sampler blocks are canonical MXFP4 and look like quantize_block of Gaussian weights") {
  constexpr uint64_t kBlocks = 40000;
  for (double std : {1 / std::sqrt(2880.0), 1 / std::sqrt(192.0), 1.0, 3e-3}) {
    INFO("std = " << std);
    const Mxfp4Sampler sampler(std);
    const Mxfp4Streams streams(/*seed=*/7, "model.layers.0.mlp.experts.gate_up_proj");
    std::vector<uint8_t> blocks(kBlocks * 16), scales(kBlocks);
    sampler.blocks(streams, 0, kBlocks, blocks.data());
    sampler.scales(streams, 0, kBlocks, scales.data());

    // Canonical: quantize_block of the dequantized values gives the same bytes; never -0.
    int mismatches = 0, negative_zeros = 0;
    for (uint64_t b = 0; b < kBlocks; ++b) {
      float values[32];
      mxfp4::dequantize_row(&blocks[b * 16], &scales[b], 32, values);
      uint8_t packed[16], scale;
      mxfp4::quantize_block(values, packed, &scale);
      mismatches += scale != scales[b] || std::memcmp(packed, &blocks[b * 16], 16) != 0;
      for (int k = 0; k < 16; ++k) negative_zeros += (blocks[b * 16 + k] & 0x0f) == 8 || (blocks[b * 16 + k] >> 4) == 8;
    }
    CHECK(mismatches == 0);
    CHECK(negative_zeros == 0);

    // The same statistics from really quantizing Gaussian blocks (an independent path through quantize_block).
    std::mt19937_64 gen(12345);
    std::normal_distribution<double> normal(0.0, std);
    std::vector<uint8_t> ref_blocks(kBlocks * 16), ref_scales(kBlocks);
    for (uint64_t b = 0; b < kBlocks; ++b) {
      float x[32];
      for (float& v : x) v = static_cast<float>(normal(gen));
      mxfp4::quantize_block(x, &ref_blocks[b * 16], &ref_scales[b]);
    }
    const BlockStats ours = stats_of(blocks, scales), ref = stats_of(ref_blocks, ref_scales);
    double exponent_tv = 0;
    std::map<int, double> all = ours.exponent_share;
    for (const auto& [e, p] : ref.exponent_share) all[e] += 0;
    for (const auto& [e, p] : all) {
      const double a = ours.exponent_share.count(e) ? ours.exponent_share.at(e) : 0;
      const double r = ref.exponent_share.count(e) ? ref.exponent_share.at(e) : 0;
      exponent_tv += std::fabs(a - r) / 2;
    }
    CHECK(exponent_tv < 0.01);  // sampling noise of 40000 blocks: ~0.003
    double magnitude_tv = 0;
    for (int m = 0; m < 8; ++m) magnitude_tv += std::fabs(ours.magnitude_share[m] - ref.magnitude_share[m]) / 2;
    CHECK(magnitude_tv < 0.015);  // measured 0.004-0.008: the fix-up and truncation are approximations
    CHECK(ours.std == doctest::Approx(ref.std).epsilon(0.03));
    CHECK(ours.std == doctest::Approx(std).epsilon(0.05));
    CHECK(std::fabs(ours.mean) < 4 * std / std::sqrt(32.0 * kBlocks));
    CHECK(sampler.exponents().size() >= 2);  // blocks do not all share one scale

    // The realised exponent shares match the sampler's table.
    for (size_t j = 0; j < sampler.exponents().size(); ++j) {
      const double p = sampler.exponent_probability(j);
      const int byte = 127 + sampler.exponents()[j];
      const double got = ours.exponent_share.count(byte) ? ours.exponent_share.at(byte) : 0;
      CHECK(std::fabs(got - p) < 5 * std::sqrt(p * (1 - p) / kBlocks) + 1e-4);
    }
  }
}

TEST_CASE("Mxfp4Sampler output does not depend on how the blocks are split") {
  const Mxfp4Sampler sampler(0.05);
  const Mxfp4Streams streams(3, "w");
  std::vector<uint8_t> whole(1000 * 16), parts(1000 * 16), scales(1000), scale_parts(1000);
  sampler.blocks(streams, 0, 1000, whole.data());
  sampler.blocks(streams, 0, 337, parts.data());
  sampler.blocks(streams, 337, 663, parts.data() + 337 * 16);
  CHECK(whole == parts);
  sampler.scales(streams, 0, 1000, scales.data());
  sampler.scales(streams, 0, 1, scale_parts.data());
  sampler.scales(streams, 1, 999, scale_parts.data() + 1);
  CHECK(scales == scale_parts);
  const Mxfp4Streams other_seed(4, "w");
  sampler.blocks(other_seed, 0, 1000, parts.data());
  CHECK(whole != parts);
}

TEST_CASE("SyntheticWeights: every tensor is the same whether made whole or in pieces") {
  for (ExpertFormat format : {ExpertFormat::MXFP4, ExpertFormat::BF16}) {
    const SynthConfig config = testing::tiny_config({}, format);
    const SyntheticWeights w(config.config, SynthOptions{/*seed=*/11});
    for (size_t i = 0; i < w.specs().size(); ++i) {
      INFO(w.specs()[i].name);
      const std::vector<std::byte> whole = w.tensor_bytes(i);
      REQUIRE(whole.size() == w.specs()[i].nbytes());
      const int64_t n = w.units(i), a = n / 3, b = a + (n - a) / 2;
      std::vector<std::byte> parts(whole.size());
      const uint64_t u = w.unit_bytes(i);
      w.fill(i, 0, a, parts.data());
      w.fill(i, a, b - a, parts.data() + a * u);
      w.fill(i, b, n - b, parts.data() + b * u);
      CHECK(whole == parts);
    }
    CHECK_THROWS_AS(w.fill(0, w.units(0), 1, nullptr), std::out_of_range);
  }
}

namespace {

struct Moments {
  double mean = 0, std = 0;
  bool finite = true;
};

Moments bf16_moments(const std::vector<std::byte>& bytes) {
  Moments m;
  const size_t n = bytes.size() / 2;
  double sum = 0, sum2 = 0;
  for (size_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, &bytes[2 * i], 2);
    const double x = bf16_to_float(v);
    m.finite = m.finite && std::isfinite(x);
    sum += x;
    sum2 += x * x;
  }
  m.mean = sum / double(n);
  m.std = std::sqrt(std::max(0.0, sum2 / double(n) - m.mean * m.mean));
  return m;
}

}  // namespace

TEST_CASE("SyntheticWeights: dense tensors have the documented scales") {
  const SynthConfig config = testing::tiny_config({{"num_hidden_layers", 2}, {"num_attention_heads", 16}, {"num_key_value_heads", 4}});
  const SyntheticWeights w(config.config, SynthOptions{/*seed=*/5, /*routing_skew=*/1.0});
  const double H = 256;
  auto spec_index = [&](const std::string& name) {
    for (size_t i = 0; i < w.specs().size(); ++i)
      if (w.specs()[i].name == name) return i;
    FAIL("no tensor " << name);
    return size_t(0);
  };
  struct Want {
    const char* name;
    double mean, std, tolerance;  // tolerance on std, relative
  };
  for (const Want& want : {Want{"model.embed_tokens.weight", 0, 1, 0.02}, Want{"lm_head.weight", 0, 1 / std::sqrt(H), 0.02},
                           Want{"model.layers.1.self_attn.q_proj.weight", 0, 1 / std::sqrt(H), 0.02},
                           Want{"model.layers.1.self_attn.o_proj.weight", 0, 1 / std::sqrt(1024.0), 0.02},
                           Want{"model.layers.0.self_attn.q_proj.bias", 0, 0.05, 0.1},
                           Want{"model.layers.0.mlp.experts.gate_up_proj_bias", 0, 0.05, 0.1},
                           Want{"model.layers.0.input_layernorm.weight", 1, 0.1, 0.15},
                           Want{"model.layers.0.post_attention_layernorm.weight", 1, 0.1, 0.15},
                           Want{"model.norm.weight", 1, 0.1, 0.15}}) {
    INFO(want.name);
    const Moments m = bf16_moments(w.tensor_bytes(spec_index(want.name)));
    CHECK(m.finite);
    CHECK(m.std == doctest::Approx(want.std).epsilon(want.tolerance));
    CHECK(std::fabs(m.mean - want.mean) < 4 * want.std / std::sqrt(double(w.specs()[spec_index(want.name)].numel())) + 1e-3);
  }
  const Moments sinks = bf16_moments(w.tensor_bytes(spec_index("model.layers.0.self_attn.sinks")));
  CHECK(sinks.finite);
  CHECK(sinks.std > 0.2);
  CHECK(sinks.std < 1.0);

  // Router rows are unit vectors (up to bf16 rounding); all tensors finite.
  const std::vector<std::byte> router = w.tensor_bytes(spec_index("model.layers.0.mlp.router.weight"));
  for (int64_t e = 0; e < config.config.num_local_experts; ++e) {
    double norm2 = 0;
    for (int64_t h = 0; h < 256; ++h) {
      uint16_t v;
      std::memcpy(&v, &router[2 * (e * 256 + h)], 2);
      norm2 += double(bf16_to_float(v)) * bf16_to_float(v);
    }
    CHECK(std::sqrt(norm2) == doctest::Approx(1.0).epsilon(0.005));
  }
  for (size_t i = 0; i < w.specs().size(); ++i)
    if (w.specs()[i].dtype == DType::BF16) CHECK_MESSAGE(bf16_moments(w.tensor_bytes(i)).finite, w.specs()[i].name);
}
