// The portable reference kernels: plain loops written to be read, compiled with the baseline flags.
//
// Every SIMD variant is tested against these, and they are what runs on a CPU without AVX2. Accumulation is
// fp32 in a fixed order: for MXFP4, the 32 products of a block are summed first and the block sum is then scaled
// by its E8M0 factor (the scale is common to the block, so this is the format's own factorisation).
#include <cstdint>

#include "cpu_kernels/kernel_helpers.h"
#include "cpu_kernels/kernels.h"
#include "src/model/bf16.h"
#include "src/model/mxfp4.h"

namespace ossrun::cpu {
namespace {

using mxfp4::kBlock;
using mxfp4::kBlockBytes;
using mxfp4::kE2M1;

void matvec_bf16_scalar(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t r0,
                        int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* w = W + r * K;
    float acc = 0.0f;
    for (int64_t k = 0; k < K; ++k) acc += bf16_value(w[k]) * x[k];
    y[r] = acc + bias_value(bias, r);
  }
}

void matvec_bf16_t_scalar(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t cols,
                          int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; ++c) y[c] = 0.0f;
  for (int64_t k = 0; k < K; ++k) {
    const uint16_t* w = W + k * cols;
    for (int64_t c = c0; c < c1; ++c) y[c] += bf16_value(w[c]) * x[k];
  }
  for (int64_t c = c0; c < c1; ++c) y[c] += bias_value(bias, c);
}

// W[r, :] . x for one MXFP4 row: blocks = the row's K/2 bytes, scales = its K/32 bytes.
float dot_mxfp4_row(const uint8_t* blocks, const uint8_t* scales, const float* x, int64_t K) {
  float acc = 0.0f;
  for (int64_t g = 0; g < K / kBlock; ++g) {
    const uint8_t* b = blocks + g * kBlockBytes;
    const float* xb = x + g * kBlock;
    float block_sum = 0.0f;
    for (int i = 0; i < kBlockBytes; ++i) {
      block_sum += kE2M1[b[i] & 0x0f] * xb[2 * i];     // low nibble: element 2i
      block_sum += kE2M1[b[i] >> 4] * xb[2 * i + 1];  // high nibble: element 2i+1
    }
    acc += block_sum * kE8m0.value[scales[g]];
  }
  return acc;
}

void matvec_mxfp4_scalar(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x, float* y,
                         int64_t K, int64_t r0, int64_t r1) {
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  for (int64_t r = r0; r < r1; ++r) {
    y[r] = dot_mxfp4_row(blocks + r * row_bytes, scales + r * row_scales, x, K) + bias_value(bias, r);
  }
}

void gate_up_swiglu_mxfp4_scalar(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x,
                                 float* a, int64_t K, int64_t j0, int64_t j1, SwigluParams p) {
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  for (int64_t j = j0; j < j1; ++j) {
    const int64_t gate_row = 2 * j, up_row = 2 * j + 1;
    const float gate = dot_mxfp4_row(blocks + gate_row * row_bytes, scales + gate_row * row_scales, x, K) +
                       bias_value(bias, gate_row);
    const float up =
        dot_mxfp4_row(blocks + up_row * row_bytes, scales + up_row * row_scales, x, K) + bias_value(bias, up_row);
    a[j] = swiglu(gate, up, p);
  }
}

void dequantize_mxfp4_bf16_scalar(const uint8_t* blocks, const uint8_t* scales, uint16_t* out, int64_t K, int64_t r0,
                                  int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t k = 0; k < K; ++k) {
      const uint8_t byte = blocks[r * (K / 2) + k / 2];
      const uint8_t nibble = (k & 1) ? (byte >> 4) : (byte & 0x0f);
      // Exact in fp32 for every scale; exact in bf16 too (E2M1 values have two significant bits).
      const float value = kE2M1[nibble] * kE8m0.value[scales[r * (K / kBlock) + k / kBlock]];
      out[r * K + k] = float_to_bf16(value);
    }
  }
}

constexpr KernelTable kScalarTable = {
    .isa = Isa::Scalar,
    .matvec_bf16 = matvec_bf16_scalar,
    .matvec_bf16_t = matvec_bf16_t_scalar,
    .matvec_mxfp4 = matvec_mxfp4_scalar,
    .gate_up_swiglu_mxfp4 = gate_up_swiglu_mxfp4_scalar,
    .dequantize_mxfp4_bf16 = dequantize_mxfp4_bf16_scalar,
};

}  // namespace

const KernelTable& scalar_kernel_table() { return kScalarTable; }

}  // namespace ossrun::cpu
