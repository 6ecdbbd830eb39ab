#include "src/model/mxfp4.h"

#include <algorithm>

namespace ossrun::mxfp4 {

uint8_t quantize_e2m1(float x) {
  const float a = std::fabs(x);
  // Magnitudes in nibble order 0..7 are 0, .5, 1, 1.5, 2, 3, 4, 6. Midpoints decide; a tie goes to the
  // code with an even mantissa bit (even nibble), as round-to-nearest-even does.
  static constexpr float kMid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  uint8_t code = 7;
  for (uint8_t i = 0; i < 7; ++i) {
    if (a < kMid[i] || (a == kMid[i] && i % 2 == 0)) {
      code = i;
      break;
    }
  }
  const bool negative = std::signbit(x) && code != 0;
  return static_cast<uint8_t>(code | (negative ? 8 : 0));
}

void quantize_block(const float* x, uint8_t* packed16, uint8_t* scale) {
  float amax = 0;
  for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  int e = 0;  // exponent of the scale: amax / 2^e <= 6
  if (amax > 0) {
    e = static_cast<int>(std::ceil(std::log2(amax / 6.0f)));
    while (std::ldexp(6.0f, e) < amax) ++e;
    while (e > -kScaleBias && std::ldexp(6.0f, e - 1) >= amax) --e;
  }
  e = std::clamp(e, -kScaleBias, 127);
  *scale = static_cast<uint8_t>(e + kScaleBias);
  for (int b = 0; b < kBlockBytes; ++b) {
    const uint8_t lo = quantize_e2m1(std::ldexp(x[2 * b], -e));
    const uint8_t hi = quantize_e2m1(std::ldexp(x[2 * b + 1], -e));
    packed16[b] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

}  // namespace ossrun::mxfp4
