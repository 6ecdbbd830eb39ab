#include "src/engine/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ossrun::engine {
namespace {

// The dimension index (of head_dim/2) whose wavelength makes `rotations` turns over the original context
// (transformers' find_correction_dim; OpenAI's reference writes the same formula).
double correction_dim(double rotations, double head_dim, double base, double original_ctx) {
  return head_dim * std::log(original_ctx / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
}

}  // namespace

RopeFrequencies rope_frequencies(const RopeConfig& rope, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  RopeFrequencies f;
  f.inv_freq.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    f.inv_freq[i] = 1.0 / std::pow(rope.theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
  if (!rope.yarn || rope.factor <= 1.0) return f;

  const double L0 = static_cast<double>(rope.original_max_position_embeddings);
  const double d = static_cast<double>(head_dim);
  f.low = correction_dim(rope.beta_fast, d, rope.theta, L0);
  f.high = correction_dim(rope.beta_slow, d, rope.theta, L0);
  if (rope.truncate) {
    f.low = std::floor(f.low);
    f.high = std::ceil(f.high);
  }
  f.low = std::max(f.low, 0.0);
  f.high = std::min(f.high, d - 1);
  const double span = f.high == f.low ? 0.001 : f.high - f.low;  // transformers avoids a zero division the same way
  for (int64_t i = 0; i < half; ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - f.low) / span, 0.0, 1.0);
    const double extrapolated = f.inv_freq[i];
    const double interpolated = extrapolated / rope.factor;
    f.inv_freq[i] = interpolated * ramp + extrapolated * (1 - ramp);
  }
  f.concentration = 0.1 * std::log(rope.factor) + 1.0;
  return f;
}

void rope_cos_sin(const RopeFrequencies& f, int64_t pos, float* out_cos, float* out_sin) {
  const double p = static_cast<double>(pos);
  for (size_t i = 0; i < f.inv_freq.size(); ++i) {
    const double angle = p * f.inv_freq[i];
    out_cos[i] = static_cast<float>(f.concentration * std::cos(angle));
    out_sin[i] = static_cast<float>(f.concentration * std::sin(angle));
  }
}

void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* x1 = x + h * head_dim;
    float* x2 = x1 + half;
    for (int64_t i = 0; i < half; ++i) {
      const float a = x1[i], b = x2[i];
      x1[i] = a * cos[i] - b * sin[i];
      x2[i] = b * cos[i] + a * sin[i];
    }
  }
}

}  // namespace ossrun::engine
