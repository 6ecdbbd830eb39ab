// rope_apply_f32: kernel, then the launcher. One thread per (token, head, pair i); q heads first, then k heads.
// The products are kept apart from fused multiply-adds so the result is the CPU reference's to the bit.
#include <cmath>
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/rope.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

constexpr int kThreads = 256;

// ---------------------------------------------------------------------------------------------------------
// Kernel

__global__ void __launch_bounds__(kThreads)
    rope_apply_f32_kernel(float* __restrict__ q, float* __restrict__ k, long long n_pairs, int n_heads, int n_kv_heads,
                          int half, const float* __restrict__ cos_table, const float* __restrict__ sin_table,
                          const int32_t* __restrict__ positions, int table_rows) {
  const long long idx = static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= n_pairs) return;
  const int heads = n_heads + n_kv_heads;
  const int i = static_cast<int>(idx % half);
  const long long head_of_all = idx / half;
  const int h = static_cast<int>(head_of_all % heads);
  const long long t = head_of_all / heads;
  float* x = h < n_heads ? q + (t * n_heads + h) * 2 * half : k + (t * n_kv_heads + (h - n_heads)) * 2 * half;
  const int32_t pos = positions[t];
  if (table_rows >= 0 && (pos < 0 || pos >= table_rows)) {
    x[i] = x[i + half] = __int_as_float(0x7fffffff);  // NaN: the caller passed a position outside the table
    return;
  }
  const float c = cos_table[static_cast<long long>(pos) * half + i];
  const float s = sin_table[static_cast<long long>(pos) * half + i];
  const float a = x[i], b = x[i + half];
  x[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  x[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Launcher

void rope_apply_f32(float* q, float* k, int n_tokens, int n_heads, int n_kv_heads, int head_dim,
                    const float* cos_table, const float* sin_table, const int32_t* positions, cudaStream_t stream,
                    int table_rows) {
  if (n_tokens < 0 || n_heads < 0 || n_kv_heads < 0 || head_dim < 2 || head_dim % 2 != 0 || table_rows < -1)
    throw InputError("rope_apply_f32: n_tokens = " + std::to_string(n_tokens) + ", n_heads = " +
                     std::to_string(n_heads) + ", n_kv_heads = " + std::to_string(n_kv_heads) + ", head_dim = " +
                     std::to_string(head_dim) + ", table_rows = " + std::to_string(table_rows) +
                     "; needs counts >= 0, an even head_dim >= 2 and table_rows >= -1");
  const long long n_pairs = static_cast<long long>(n_tokens) * (n_heads + n_kv_heads) * (head_dim / 2);
  if (n_pairs == 0) return;
  const long long blocks = (n_pairs + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffffLL) throw InputError("rope_apply_f32: " + std::to_string(n_pairs) + " pairs is too many for one launch");
  rope_apply_f32_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      q, k, n_pairs, n_heads, n_kv_heads, head_dim / 2, cos_table, sin_table, positions, table_rows);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
