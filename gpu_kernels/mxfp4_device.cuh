// Device-side MXFP4 decoding for the tensor-core MXFP4 kernels (include from .cu files only).
//
// Values: E2M1 nibbles (low nibble of byte b = element 2b, gpt-oss.md §3), block scale 2^(s-127).
//
// Decoding to fp16 without a table. An E2M1 nibble s|e1 e0|m, placed as the fp16 bits s at 15 and e1 e0 m at
// 11..9, is exactly the E2M1 value times 2^-14: e1 e0 become the two low exponent bits and m the top mantissa
// bit, and exponent 0 (E2M1's subnormal 0.5) lands on fp16's subnormal 2^-15. Only the high byte of such an
// fp16 is non-zero: s 0 0 0 e1 e0 m 0. So a 32-bit word of 8 nibbles turns into two words of four such high
// bytes (one for the even, one for the odd nibbles: 7 integer instructions), and one byte permute per fp16
// pair puts two of them over zero low bytes: 11 instructions for 8 values, all in registers.
//
// Those pairs feed mma.sync m16n8k16 (f16 inputs, f32 accumulation, sm_80 and later). The inputs go in as
// fp16 hi + lo pairs of x scaled by a power of two (see the kernels), so every product is exact and the sum
// carries about 22 bits of x.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu::mxfp4_device {

// The fp16 pairs of one word w of 8 nibbles n0..n7 (n_i = bits 4i..4i+3), each value E2M1 * 2^-14, low half
// first: h[0] = (n0, n4), h[1] = (n2, n6), h[2] = (n1, n5), h[3] = (n3, n7).
__device__ __forceinline__ void decode_e2m1x8_f16(uint32_t w, uint32_t (&h)[4]) {
  // Byte i of `odd` is the fp16 high byte of nibble 2i+1 (sign stays at bit 7, magnitude moves down 3);
  // byte i of `even` that of nibble 2i (sign up 4, magnitude up 1).
  const uint32_t odd = (w & 0x80808080u) | ((w >> 3) & 0x0E0E0E0Eu);
  const uint32_t even = ((w << 4) & 0x80808080u) | ((w << 1) & 0x0E0E0E0Eu);
  // Result bytes [0, src byte a, 0, src byte b]: selector nibbles 4 (a zero byte of the second operand), a, 4, b.
  h[0] = __byte_perm(even, 0u, 0x2404u);
  h[1] = __byte_perm(even, 0u, 0x3414u);
  h[2] = __byte_perm(odd, 0u, 0x2404u);
  h[3] = __byte_perm(odd, 0u, 0x3414u);
}

// Offset within its word of the lower element of fp16 pair h (the upper one is 4 further), for h as in
// decode_e2m1x8_f16: 0, 2, 1, 3.
__host__ __device__ constexpr int pair_first_element(int h) { return ((h & 1) << 1) | (h >> 1); }
// The inverse: which pair (0..3) and which half (0 low, 1 high) holds element i (0..7) of a word.
__host__ __device__ constexpr int element_pair(int i) { return ((i & 1) << 1) | ((i >> 1) & 1); }
__host__ __device__ constexpr int element_half(int i) { return i >> 2; }

// 2^(s - 127) for an E8M0 scale byte: the byte is the float's exponent field, except 0, which is the
// subnormal 2^-127. 255 gives +inf, as the CPU reference does.
__device__ __forceinline__ float e8m0_value(uint32_t s) { return __uint_as_float(max(s << 23, 0x00400000u)); }

// 2^e for -126 <= e <= 127, exactly.
__device__ __forceinline__ float exp2_int(int e) { return __uint_as_float(static_cast<uint32_t>(e + 127) << 23); }

// d += A * B for one m16n8k16 tile: a = the thread's four A registers (fp16 pairs), b0/b1 its two B registers.
__device__ __forceinline__ void mma_f16_m16n8k16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                 uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// x (fp32) as fp16 hi + lo, both already scaled: x == hi + lo to about 2^-22 relative while x is in fp16's
// normal range; the pair packs (hi of v0, hi of v1) or (lo of v0, lo of v1).
__device__ __forceinline__ uint32_t f16x2_bits(__half lo_elem, __half hi_elem) {
  return static_cast<uint32_t>(__half_as_ushort(lo_elem)) | (static_cast<uint32_t>(__half_as_ushort(hi_elem)) << 16);
}
__device__ __forceinline__ void split_f16(float v, __half& hi, __half& lo) {
  hi = __float2half_rn(v);
  lo = __float2half_rn(v - __half2float(hi));  // v - hi is exact in fp32
}

}  // namespace ossrun::gpu::mxfp4_device
