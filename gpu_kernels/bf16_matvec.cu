// bf16_matvec: kernel, then the launcher.
//
// One warp per row at a time; persistent warps take contiguous row ranges. Each lane reads 16 bytes
// (8 weights) per load, so a warp reads 512 contiguous bytes of the row per load instruction, and a lane
// issues up to kLoadsInFlight loads before using the first (one round trip per row up to K = 3072). x comes
// through L1 (the weights bypass it), read as two float4 per load.
#include <string>

#include "gpu_kernels/bf16_matvec.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/persistent_grid.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using device_util::bf16_hi;
using device_util::bf16_lo;
using device_util::bf16_value;
using device_util::load_stream16;
using device_util::warp_sum;

constexpr int kThreads = 256;
constexpr int kWarpsPerCta = kThreads / 32;
constexpr int kLoadsInFlight = 12;

// ---------------------------------------------------------------------------------------------------------
// Kernel

__device__ __forceinline__ float dot8(const uint4 w, const float4* x, float acc) {
  const float4 xa = __ldg(x), xb = __ldg(x + 1);
  acc = fmaf(bf16_lo(w.x), xa.x, acc);
  acc = fmaf(bf16_hi(w.x), xa.y, acc);
  acc = fmaf(bf16_lo(w.y), xa.z, acc);
  acc = fmaf(bf16_hi(w.y), xa.w, acc);
  acc = fmaf(bf16_lo(w.z), xb.x, acc);
  acc = fmaf(bf16_hi(w.z), xb.y, acc);
  acc = fmaf(bf16_lo(w.w), xb.z, acc);
  acc = fmaf(bf16_hi(w.w), xb.w, acc);
  return acc;
}

__global__ void __launch_bounds__(kThreads) bf16_matvec_kernel(const uint16_t* __restrict__ W,
                                                               const uint16_t* __restrict__ bias,
                                                               const float* __restrict__ x, float* __restrict__ y,
                                                               long long rows, int K) {
  const int lane = threadIdx.x & 31;
  const long long warp = (static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x) >> 5;
  const long long n_warps = static_cast<long long>(gridDim.x) * kWarpsPerCta;
  const long long r0 = rows * warp / n_warps, r1 = rows * (warp + 1) / n_warps;
  const int chunks = K / 8;  // 16-byte chunks per row
  const float4* x4 = reinterpret_cast<const float4*>(x);
  for (long long r = r0; r < r1; ++r) {
    const uint4* row = reinterpret_cast<const uint4*>(W + r * K);
    float acc[2] = {0.0f, 0.0f};
    for (int base = 0; base < chunks; base += 32 * kLoadsInFlight) {
      uint4 w[kLoadsInFlight];
#pragma unroll
      for (int i = 0; i < kLoadsInFlight; ++i) {
        const int c = base + lane + 32 * i;
        w[i] = load_stream16(row + (c < chunks ? c : chunks - 1));  // unconditional: no branch between the loads
      }
#pragma unroll
      for (int i = 0; i < kLoadsInFlight; ++i) {
        const int c = base + lane + 32 * i;
        if (c < chunks) acc[i & 1] = dot8(w[i], x4 + 2 * c, acc[i & 1]);
      }
    }
    const float sum = warp_sum(acc[0] + acc[1]);
    if (lane == 0) y[r] = sum + (bias ? bf16_value(bias[r]) : 0.0f);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Launcher

}  // namespace

void bf16_matvec(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t rows, int K,
                 cudaStream_t stream) {
  if (K <= 0 || K % 8 != 0 || K > kBf16MatvecMaxK)
    throw InputError("bf16_matvec: K = " + std::to_string(K) + "; the GPU kernel needs a positive multiple of 8 up to " +
                     std::to_string(kBf16MatvecMaxK));
  if (rows < 0) throw InputError("bf16_matvec: negative row count " + std::to_string(rows));
  if (reinterpret_cast<uintptr_t>(W) % 16 != 0 || reinterpret_cast<uintptr_t>(x) % 16 != 0)
    throw InputError("bf16_matvec: W and x must be 16-byte aligned");
  if (rows == 0) return;
  const long long wanted = (rows + kWarpsPerCta - 1) / kWarpsPerCta;
  const int resident = resident_ctas(reinterpret_cast<const void*>(bf16_matvec_kernel), kThreads, 0);
  const int grid = static_cast<int>(wanted < resident ? wanted : resident);
  bf16_matvec_kernel<<<grid, kThreads, 0, stream>>>(W, bias, x, y, rows, K);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
