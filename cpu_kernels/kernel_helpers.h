// Small definitions every kernel variant shares: the E8M0 scale table, bf16 widening and the clamped SwiGLU.
//
// Everything here has internal linkage on purpose (an unnamed namespace in a header). Each ISA translation unit
// is compiled with its own flags; an inline function with external linkage used there would be emitted once per
// TU and the linker would keep one arbitrary copy for every caller, possibly an AVX-512 one for the scalar path.
// With internal linkage each TU keeps its own copy, built with its own flags. Constant tables are data, not code,
// so sharing them is safe. For the same reason this header calls builtins and C functions (__builtin_bit_cast,
// ::expf) rather than std:: inline templates, which an unoptimized build would emit out of line.
#pragma once
#include <cmath>
#include <cstdint>

#include "cpu_kernels/kernels.h"
#include "src/model/mxfp4.h"

namespace ossrun::cpu {
namespace {  // NOLINT(google-build-namespaces): internal linkage per TU is the point, see above

// 2^(s - 127) for every E8M0 scale byte, as mxfp4::scale_value computes it: s = 0 is the subnormal 2^-127,
// s = 255 decodes to +inf like the reference loaders do.
constexpr float e8m0_value(uint8_t s) {
  return __builtin_bit_cast(float, s == 0 ? 0x00400000u : static_cast<uint32_t>(s) << 23);
}

struct E8m0Table {
  float value[256];
  constexpr E8m0Table() : value{} {
    for (int s = 0; s < 256; ++s) value[s] = e8m0_value(static_cast<uint8_t>(s));
  }
};
inline constexpr E8m0Table kE8m0{};

inline float bf16_value(uint16_t bits) { return __builtin_bit_cast(float, static_cast<uint32_t>(bits) << 16); }

// The bias of row r, or 0 without a bias.
inline float bias_value(const uint16_t* bias, int64_t r) { return bias ? bf16_value(bias[r]) : 0.0f; }

// gpt-oss's clamped SwiGLU (gpt-oss.md §4): the gate is clamped from above only, up on both sides, and up gets +1.
// Comparisons rather than fmin/fmax so that a NaN propagates as it does in torch.clamp.
inline float swiglu(float gate, float up, SwigluParams p) {
  if (gate > p.limit) gate = p.limit;
  if (up > p.limit) up = p.limit;
  if (up < -p.limit) up = -p.limit;
  const float glu = gate / (1.0f + ::expf(-p.alpha * gate));  // gate * sigmoid(alpha * gate)
  return glu * (up + 1.0f);
}

}  // namespace
}  // namespace ossrun::cpu
