// Device helpers shared by the attention kernels (include from .cu files only).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "gpu_kernels/kv_cache.cuh"
#include "src/model/error.h"

namespace ossrun::gpu::attention_device {

// Scores are kept in log2 units (q pre-multiplied by scale * log2(e)), so the softmax uses exp2f.
constexpr float kLog2e = 1.4426950408889634f;

// 16-byte asynchronous copy global -> shared (sm_80+), and its fences.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// Eight bf16 (one 16-byte chunk) to f32.
__device__ __forceinline__ void bf16x8_to_float(const uint4 w, float* f) {
  const uint32_t u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(u[i] << 16);
    f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
  }
}

// The first key position query position `pos` sees (0 on full layers).
__host__ __device__ __forceinline__ int first_visible_key(int pos, int window) {
  return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

// Calls f(std::integral_constant<int, D>{}) for the supported head dims; InputError otherwise.
template <typename F>
void dispatch_head_dim(int head_dim, const char* who, F&& f) {
  switch (head_dim) {
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    case 64: return f(std::integral_constant<int, 64>{});
    case 128: return f(std::integral_constant<int, 128>{});
  }
  throw InputError(std::string(who) + ": head_dim " + std::to_string(head_dim) + " is not one of 16, 32, 64, 128");
}

}  // namespace ossrun::gpu::attention_device
