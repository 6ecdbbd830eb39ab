// Small device helpers shared by the kernels (include from .cu files only).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu::device_util {

// A 16-byte load of weights that are read once per launch: not kept in L1; L2 fetches 256 bytes around it
// (a warp reads runs of 512 contiguous bytes).
__device__ __forceinline__ uint4 load_stream16(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// Asks L2 to fetch the line holding p; takes no register, so it can run further ahead than loads can.
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// Sum over the warp, in a fixed butterfly order (deterministic); every lane gets the result.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float bf16_value(uint16_t b) { return __uint_as_float(static_cast<uint32_t>(b) << 16); }
// The two bf16 values packed in a word, low half first.
__device__ __forceinline__ float bf16_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

}  // namespace ossrun::gpu::device_util
