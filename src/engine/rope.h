// Rotary position embedding of gpt-oss: half-split (NeoX) pairing with YaRN "NTK-by-parts" frequencies and
// the YaRN concentration applied to cos and sin (gpt-oss.md §5.3).
//
// Angles are computed in double (position * inv_freq) and rounded to float once, so long positions keep
// their precision; the references compute them in fp32, which differs only by rounding.
#pragma once
#include <cstdint>
#include <vector>

#include "src/model/config.h"

namespace ossrun::engine {

struct RopeFrequencies {
  std::vector<double> inv_freq;  // (head_dim/2)
  double concentration = 1.0;    // YaRN mscale: 0.1 ln(factor) + 1, multiplies both cos and sin
  double low = 0, high = 0;      // the YaRN correction range (dims below `low` extrapolate, above `high` interpolate)
};

// inv_freq and concentration for `rope` and `head_dim` (even). Plain RoPE (rope.yarn false) gives
// theta^(-2i/d) and concentration 1. Honours rope.truncate (floor/ceil of the correction range).
RopeFrequencies rope_frequencies(const RopeConfig& rope, int64_t head_dim);

// cos/sin for one position: out_cos[i] = c cos(pos * inv_freq[i]), out_sin[i] = c sin(pos * inv_freq[i]),
// i in [0, head_dim/2).
void rope_cos_sin(const RopeFrequencies& f, int64_t pos, float* out_cos, float* out_sin);

// Rotates `n_heads` vectors of `head_dim` floats in place (x1 = x[:d/2], x2 = x[d/2:]):
// x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin.
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

}  // namespace ossrun::engine
