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

constexpr int kLutBytes = 256 * 256;  // 64 KiB: 256 bytes x 32 lane replicas x 8-byte entries (half used by bf16)

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

// Fills the table (all threads of the CTA; the caller synchronizes before use). Thread t computes the entry of
// byte t once and writes its 32 replicas (256 contiguous bytes) with 16-byte stores; store i of a lane goes to
// 16-byte slot (i + lane) mod n, so that the 8 lanes of one store wavefront meet in no bank.
template <Mxfp4Lut L>
__device__ void fill_lut(char* lut) {
  constexpr uint32_t kSlots = 256 / 16;  // 16-byte slots per byte's 32 replicas
  for (uint32_t byte = threadIdx.x; byte < 256; byte += blockDim.x) {
    const float lo = e2m1_value(byte & 15u), hi = e2m1_value(byte >> 4);
    uint4 v;
    if constexpr (L == Mxfp4Lut::F32x2) {
      v = make_uint4(__float_as_uint(lo), __float_as_uint(hi), __float_as_uint(lo), __float_as_uint(hi));
    } else {  // E2M1 values are exact in bf16: the high half of the float; 4 replicas per 16 bytes
      const uint32_t e = (__float_as_uint(lo) >> 16) | (__float_as_uint(hi) & 0xffff0000u);
      v = make_uint4(e, e, e, e);
    }
    // bf16 entries fill only the first half of each 256 bytes (32 replicas x 4 bytes).
    constexpr uint32_t kUsed = L == Mxfp4Lut::F32x2 ? kSlots : kSlots / 2;
    uint4* row = reinterpret_cast<uint4*>(lut + (byte << 8));
#pragma unroll
    for (uint32_t i = 0; i < kUsed; ++i) row[(i + byte) % kUsed] = v;
  }
}

// Where a CTA's table lies. Aligned: at a 64 KiB-aligned shared address inside 2 * kLutBytes of dynamic shared
// memory, so that the byte permute can also supply the address's high half and a lookup needs no add.
template <bool kAligned>
__host__ __device__ constexpr int lut_smem_bytes() {
  return kAligned ? 2 * kLutBytes : kLutBytes;
}
struct LutPlace {
  char* ptr;       // generic pointer to the table (for filling it)
  uint32_t lane;   // the lane's lookup operand: lane * entry size, plus (aligned) the table's shared address
};
template <bool kAligned, Mxfp4Lut L>
__device__ __forceinline__ LutPlace place_lut(char* dynamic_smem) {
  const uint32_t lane_off = (threadIdx.x & 31u) * lut_entry_bytes<L>();
  if constexpr (!kAligned) {
    return {dynamic_smem, lane_off};
  } else {
    const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(dynamic_smem));
    const uint32_t table = (base + kLutBytes - 1) & ~static_cast<uint32_t>(kLutBytes - 1);
    return {dynamic_smem + (table - base), table | lane_off};
  }
}

// Sum over one 16-byte block (32 values) of value[i] * x[i], without the block scale.
// lane = LutPlace::lane; lut = LutPlace::ptr (unused when aligned).
template <Mxfp4Lut L, bool kAligned>
__device__ __forceinline__ float block_dot(const uint4 q, const float (&x)[32], const char* lut, uint32_t lane) {
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
  float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      float lo, hi;
      if constexpr (kAligned) {
        // Result bytes: [lane offset, byte b of w, table address bits 16-31]: the entry's shared address.
        const uint32_t addr = __byte_perm(w[i], lane, 0x7604u | (static_cast<uint32_t>(b) << 4));
        if constexpr (L == Mxfp4Lut::F32x2) {
          asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(lo), "=f"(hi) : "r"(addr));
        } else {
          uint32_t v;
          asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(addr));
          lo = device_util::bf16_lo(v);
          hi = device_util::bf16_hi(v);
        }
      } else {
        // Result bytes: [lane offset, byte b of w, 0, 0] = (byte << 8) | lane offset.
        const uint32_t off = __byte_perm(w[i], lane, 0x6504u | (static_cast<uint32_t>(b) << 4));
        if constexpr (L == Mxfp4Lut::F32x2) {
          const float2 v = *reinterpret_cast<const float2*>(lut + off);
          lo = v.x;
          hi = v.y;
        } else {
          const uint32_t v = *reinterpret_cast<const uint32_t*>(lut + off);
          lo = device_util::bf16_lo(v);
          hi = device_util::bf16_hi(v);
        }
      }
      acc0 = fmaf(lo, x[8 * i + 2 * b], acc0);
      acc1 = fmaf(hi, x[8 * i + 2 * b + 1], acc1);
    }
  }
  return acc0 + acc1;
}

}  // namespace ossrun::gpu::mxfp4_device
