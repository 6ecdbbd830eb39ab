// RoPE with YaRN (src/engine/rope.h) against the values of gpt-oss.md §5.3 and a float64 rotation.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "src/engine/rope.h"

using namespace ossrun;
using namespace ossrun::engine;

namespace {
RopeConfig gpt_oss_rope() { return RopeConfig{}; }  // theta 150000, factor 32, betas 32/1, L0 4096, truncate false
}  // namespace

TEST_CASE("rope_frequencies: gpt-oss YaRN correction range, ramp and concentration (spec 5.3)") {
  const RopeFrequencies f = rope_frequencies(gpt_oss_rope(), 64);
  REQUIRE(f.inv_freq.size() == 32);
  CHECK(f.low == doctest::Approx(8.092779).epsilon(1e-6));
  CHECK(f.high == doctest::Approx(17.398025).epsilon(1e-6));
  CHECK(f.concentration == doctest::Approx(1.3465735902799727).epsilon(1e-15));
  CHECK(f.inv_freq[0] == 1.0);
  CHECK(f.inv_freq[9] == doctest::Approx(3.17057e-2).epsilon(1e-5));
  CHECK(f.inv_freq[18] == doctest::Approx(3.83088e-5).epsilon(1e-5));
  CHECK(f.inv_freq[31] == doctest::Approx(3.02351e-7).epsilon(1e-5));
  // Dims 0-8 keep their frequency, 18-31 are divided by the factor, 9-17 blend with the spec's ramp.
  const double ramp[] = {0.0975, 0.2050, 0.3124, 0.4199, 0.5274, 0.6348, 0.7423, 0.8498, 0.9572};
  for (int i = 0; i < 32; ++i) {
    const double base = std::pow(150000.0, -2.0 * i / 64);
    const double r = i < 9 ? 0.0 : i > 17 ? 1.0 : ramp[i - 9];
    CHECK(f.inv_freq[i] == doctest::Approx(base / 32 * r + base * (1 - r)).epsilon(i >= 9 && i <= 17 ? 2e-3 : 1e-12));
  }
}

TEST_CASE("rope_frequencies: truncate rounds the correction range, plain RoPE has no concentration") {
  RopeConfig r = gpt_oss_rope();
  r.truncate = true;
  const RopeFrequencies t = rope_frequencies(r, 64);
  CHECK(t.low == 8.0);
  CHECK(t.high == 18.0);
  CHECK(t.inv_freq[8] == doctest::Approx(std::pow(150000.0, -16.0 / 64)));  // ramp 0 at i = low
  CHECK(t.inv_freq[12] == doctest::Approx(std::pow(150000.0, -24.0 / 64) * (1 - 0.4 + 0.4 / 32)));

  RopeConfig plain = gpt_oss_rope();
  plain.yarn = false;
  const RopeFrequencies p = rope_frequencies(plain, 64);
  CHECK(p.concentration == 1.0);
  for (int i = 0; i < 32; ++i) CHECK(p.inv_freq[i] == doctest::Approx(std::pow(150000.0, -2.0 * i / 64)).epsilon(1e-14));
}

TEST_CASE("apply_rope: half-split rotation with the concentration on cos and sin, against float64") {
  const RopeFrequencies f = rope_frequencies(gpt_oss_rope(), 64);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int64_t pos : {int64_t{0}, int64_t{1}, int64_t{127}, int64_t{4095}, int64_t{131071}}) {
    std::vector<float> x(3 * 64), c(32), s(32);
    for (float& v : x) v = nd(rng);
    const std::vector<float> x0 = x;
    rope_cos_sin(f, pos, c.data(), s.data());
    apply_rope(x.data(), 3, 64, c.data(), s.data());
    for (int h = 0; h < 3; ++h)
      for (int i = 0; i < 32; ++i) {
        const double angle = static_cast<double>(pos) * f.inv_freq[i];
        const double a = x0[h * 64 + i], b = x0[h * 64 + 32 + i];
        const double want1 = f.concentration * (a * std::cos(angle) - b * std::sin(angle));
        const double want2 = f.concentration * (b * std::cos(angle) + a * std::sin(angle));
        INFO("pos " << pos << " head " << h << " dim " << i);
        CHECK(x[h * 64 + i] == doctest::Approx(want1).epsilon(1e-5).scale(4));
        CHECK(x[h * 64 + 32 + i] == doctest::Approx(want2).epsilon(1e-5).scale(4));
      }
  }
}
