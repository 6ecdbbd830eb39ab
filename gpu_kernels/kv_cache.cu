// kv_store_bf16: kernel, then the launcher; and the shape check every attention launcher shares.
#include <cmath>
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/kv_cache.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

constexpr int kThreads = 256;

// Round to nearest even, NaN kept quiet: the same bits as ossrun::float_to_bf16 (src/model/bf16.h).
__device__ __forceinline__ uint32_t bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  u += 0x7fffu + ((u >> 16) & 1u);
  return u >> 16;
}

__device__ __forceinline__ uint4 pack_bf16x8(const float4 a, const float4 b) {
  return make_uint4(bf16_bits(a.x) | bf16_bits(a.y) << 16, bf16_bits(a.z) | bf16_bits(a.w) << 16,
                    bf16_bits(b.x) | bf16_bits(b.y) << 16, bf16_bits(b.z) | bf16_bits(b.w) << 16);
}

// One thread per 8 values of one row of k and of v.
__global__ void __launch_bounds__(kThreads)
    kv_store_bf16_kernel(const float* __restrict__ k, const float* __restrict__ v, const int32_t* __restrict__ positions,
                         int n, int kv_dim, int capacity, uint16_t* __restrict__ k_cache, uint16_t* __restrict__ v_cache) {
  const int chunks = kv_dim / 8;
  const long long idx = static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= static_cast<long long>(n) * chunks) return;
  const int t = static_cast<int>(idx / chunks), c = static_cast<int>(idx % chunks);
  const int pos = positions[t];
  if (pos < 0) return;
  const long long src = static_cast<long long>(t) * kv_dim + c * 8;
  const long long dst = static_cast<long long>(pos % capacity) * kv_dim + c * 8;
  const float4* k4 = reinterpret_cast<const float4*>(k + src);
  const float4* v4 = reinterpret_cast<const float4*>(v + src);
  *reinterpret_cast<uint4*>(k_cache + dst) = pack_bf16x8(k4[0], k4[1]);
  *reinterpret_cast<uint4*>(v_cache + dst) = pack_bf16x8(v4[0], v4[1]);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void validate_attn_shape(const AttnShape& s, const char* who) {
  const std::string w = who;
  if (s.n_heads <= 0 || s.n_kv_heads <= 0 || s.n_heads % s.n_kv_heads != 0)
    throw InputError(w + ": n_heads " + std::to_string(s.n_heads) + " must be a positive multiple of n_kv_heads " +
                     std::to_string(s.n_kv_heads));
  if (s.n_heads / s.n_kv_heads > kAttnMaxGroup)
    throw InputError(w + ": " + std::to_string(s.n_heads / s.n_kv_heads) + " query heads per KV head; at most " +
                     std::to_string(kAttnMaxGroup) + " supported");
  if (s.head_dim != 16 && s.head_dim != 32 && s.head_dim != 64 && s.head_dim != 128)
    throw InputError(w + ": head_dim " + std::to_string(s.head_dim) + " is not one of 16, 32, 64, 128");
  if (!(std::isfinite(s.scale) && s.scale > 0))
    throw InputError(w + ": scale " + std::to_string(s.scale) + " must be finite and positive");
  if (s.window < 0) throw InputError(w + ": negative window " + std::to_string(s.window));
  if (s.capacity <= 0) throw InputError(w + ": capacity " + std::to_string(s.capacity) + " must be positive");
  if (s.window > 0 && s.capacity < s.window)
    throw InputError(w + ": a sliding layer's cache needs at least window = " + std::to_string(s.window) +
                     " rows; capacity is " + std::to_string(s.capacity));
}

void kv_store_bf16(const float* k, const float* v, const int32_t* positions, int n, const AttnShape& s,
                   uint16_t* k_cache, uint16_t* v_cache, cudaStream_t stream) {
  validate_attn_shape(s, "kv_store_bf16");
  if (n < 0 || n > s.capacity)
    throw InputError("kv_store_bf16: " + std::to_string(n) + " positions for a cache of " + std::to_string(s.capacity) +
                     " rows (at most capacity, so no two share a row)");
  if (n == 0) return;
  if (!k || !v || !positions || !k_cache || !v_cache) throw InputError("kv_store_bf16: null pointer");
  if (!aligned16(k) || !aligned16(v) || !aligned16(k_cache) || !aligned16(v_cache))
    throw InputError("kv_store_bf16: k, v and the caches must be 16-byte aligned");
  const int kv_dim = s.n_kv_heads * s.head_dim;
  const long long work = static_cast<long long>(n) * (kv_dim / 8);
  const int grid = static_cast<int>((work + kThreads - 1) / kThreads);
  kv_store_bf16_kernel<<<grid, kThreads, 0, stream>>>(k, v, positions, n, kv_dim, s.capacity, k_cache, v_cache);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
