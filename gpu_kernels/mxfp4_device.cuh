// Device-side MXFP4 decoding shared by the MXFP4 kernels (include from .cu files only).
//
// Values: E2M1 nibbles (low nibble of byte b = element 2b, gpt-oss.md §3), block scale 2^(s-127).
// Decoding goes through a table in shared memory indexed by a whole packed byte, giving both of its values
// at once. The table is replicated once per lane (entry for byte B and lane L at byte offset
// (B << 8) | L * entry_size) so that a warp's 32 lookups never meet in a bank, and so that one byte-permute
// instruction (__byte_perm) turns a packed byte and the lane offset into the address.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"

namespace ossrun::gpu::mxfp4_device {

constexpr int kLutBytes = 256 * 256;  // 64 KiB of dynamic shared memory per CTA

template <Mxfp4Lut L>
__host__ __device__ constexpr uint32_t lut_entry_bytes() {
  return L == Mxfp4Lut::F32x2 ? 8u : 4u;
}

// The E2M1 value of a nibble: bit 3 sign, bits 2-1 exponent (bias 1), bit 0 mantissa; exponent 0 is subnormal.
// Integer arithmetic only, so that no compiler flag (flush-to-zero, fast math) can change it.
__device__ __forceinline__ float e2m1_value(uint32_t nibble) {
  const uint32_t e = (nibble >> 1) & 3u, m = nibble & 1u;
  const uint32_t halves = e == 0 ? m : (2u + m) << (e - 1);  // the magnitude times 2: 0, 1, 2, 3, 4, 6, 8, 12
  const float mag = static_cast<float>(halves) * 0.5f;
  return (nibble & 8u) ? -mag : mag;
}

// 2^(s - 127) for an E8M0 scale byte: the byte is the float's exponent field, except 0, which is the
// subnormal 2^-127. 255 gives +inf, as the CPU reference does.
__device__ __forceinline__ float e8m0_value(uint32_t s) { return __uint_as_float(s == 0 ? 0x00400000u : s << 23); }

// Fills the table (all threads of the CTA; the caller synchronizes before use). Warp w writes the entries of
// bytes w, w + n_warps, ...; lane l writes replica l, so a warp's stores cover 256 contiguous bytes.
template <Mxfp4Lut L>
__device__ void fill_lut(char* lut) {
  const uint32_t lane = threadIdx.x & 31u, n_warps = blockDim.x >> 5;
  for (uint32_t byte = threadIdx.x >> 5; byte < 256; byte += n_warps) {
    const float lo = e2m1_value(byte & 15u), hi = e2m1_value(byte >> 4);
    char* entry = lut + (byte << 8) + lane * lut_entry_bytes<L>();
    if constexpr (L == Mxfp4Lut::F32x2) {
      *reinterpret_cast<float2*>(entry) = make_float2(lo, hi);
    } else {  // E2M1 values are exact in bf16: the high half of the float
      *reinterpret_cast<uint32_t*>(entry) = (__float_as_uint(lo) >> 16) | (__float_as_uint(hi) & 0xffff0000u);
    }
  }
}

// Sum over one 16-byte block (32 values) of value[i] * x[i], without the block scale.
// lane_off = lane * lut_entry_bytes<L>().
template <Mxfp4Lut L>
__device__ __forceinline__ float block_dot(const uint4 q, const float (&x)[32], const char* lut, uint32_t lane_off) {
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
  float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      // Result bytes: [lane_off, byte b of w, 0, 0] = (byte << 8) | lane_off.
      const uint32_t off = __byte_perm(w[i], lane_off, 0x6504u | (static_cast<uint32_t>(b) << 4));
      float lo, hi;
      if constexpr (L == Mxfp4Lut::F32x2) {
        const float2 v = *reinterpret_cast<const float2*>(lut + off);
        lo = v.x;
        hi = v.y;
      } else {
        const uint32_t v = *reinterpret_cast<const uint32_t*>(lut + off);
        lo = device_util::bf16_lo(v);
        hi = device_util::bf16_hi(v);
      }
      acc0 = fmaf(lo, x[8 * i + 2 * b], acc0);
      acc1 = fmaf(hi, x[8 * i + 2 * b + 1], acc1);
    }
  }
  return acc0 + acc1;
}

}  // namespace ossrun::gpu::mxfp4_device
