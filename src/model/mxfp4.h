// The MXFP4 format of gpt-oss expert weights (gpt-oss.md §3), as plain definitions shared by the checkpoint
// writer, the kernels' scalar references and the tests.
//
// A row of K weights is K/32 blocks. Block g holds 16 bytes (32 E2M1 values) and one E8M0 scale byte.
// Within byte b of a block, the low nibble is element 2b and the high nibble element 2b+1.
// value = kE2M1[nibble] * 2^(scale - 127).
#pragma once
#include <cmath>
#include <cstdint>

namespace ossrun::mxfp4 {

constexpr int kBlock = 32;       // values per block
constexpr int kBlockBytes = 16;  // bytes of packed nibbles per block
constexpr int kScaleBias = 127;

// E2M1 values by nibble: bit 3 sign, bits 2-1 exponent, bit 0 mantissa.
inline constexpr float kE2M1[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// 2^(scale - 127) as a float (exact for every scale byte that yields a normal or subnormal float;
// 255, NaN in the OCP spec, decodes like the loaders do, as 2^128 = inf).
inline float scale_value(uint8_t scale) { return std::ldexp(1.0f, static_cast<int>(scale) - kScaleBias); }

// Element k of a row: blocks = the row's K/2 bytes, scales = its K/32 scale bytes.
inline float element(const uint8_t* blocks, const uint8_t* scales, int64_t k) {
  const uint8_t byte = blocks[k / 2];
  const uint8_t nib = (k & 1) ? (byte >> 4) : (byte & 0x0f);
  return kE2M1[nib] * scale_value(scales[k / kBlock]);
}

// Dequantizes one row of K values (K a multiple of 32) into out.
inline void dequantize_row(const uint8_t* blocks, const uint8_t* scales, int64_t K, float* out) {
  for (int64_t k = 0; k < K; ++k) out[k] = element(blocks, scales, k);
}

// Nearest E2M1 nibble for x (already divided by the block scale), ties to the even mantissa.
uint8_t quantize_e2m1(float x);

// Quantizes 32 values into 16 packed bytes and one scale byte. The scale is the smallest power of two that
// brings the block's largest magnitude within the E2M1 range (6.0), so quantization never saturates.
void quantize_block(const float* x, uint8_t* packed16, uint8_t* scale);

}  // namespace ossrun::mxfp4
