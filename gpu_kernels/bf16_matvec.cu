// bf16_matvec: kernel, then the launcher.
//
// One warp per row at a time; persistent warps take contiguous row ranges. Each lane reads 16 bytes
// (8 weights) per load, so a warp reads 512 contiguous bytes of the row per load instruction, with four
// loads in flight per lane. x sits in shared memory (staged once per CTA), read as two float4 per load.
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

// ---------------------------------------------------------------------------------------------------------
// Kernel

__device__ __forceinline__ float dot8(const uint4 w, const float4 xa, const float4 xb, float acc) {
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
  extern __shared__ float4 xs[];  // (K/4)
  const float4* x4 = reinterpret_cast<const float4*>(x);
  for (int i = threadIdx.x; i < K / 4; i += kThreads) xs[i] = __ldg(x4 + i);
  __syncthreads();

  const int lane = threadIdx.x & 31;
  const long long warp = (static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x) >> 5;
  const long long n_warps = static_cast<long long>(gridDim.x) * kWarpsPerCta;
  const long long r0 = rows * warp / n_warps, r1 = rows * (warp + 1) / n_warps;
  const int chunks = K / 8;  // 16-byte chunks per row
  for (long long r = r0; r < r1; ++r) {
    const uint4* row = reinterpret_cast<const uint4*>(W + r * K);
    float acc0 = 0.0f, acc1 = 0.0f;
    int c = lane;
    for (; c + 96 < chunks; c += 128) {  // four loads in flight
      const uint4 w0 = load_stream16(row + c), w1 = load_stream16(row + c + 32);
      const uint4 w2 = load_stream16(row + c + 64), w3 = load_stream16(row + c + 96);
      acc0 = dot8(w0, xs[2 * c], xs[2 * c + 1], acc0);
      acc1 = dot8(w1, xs[2 * c + 64], xs[2 * c + 65], acc1);
      acc0 = dot8(w2, xs[2 * c + 128], xs[2 * c + 129], acc0);
      acc1 = dot8(w3, xs[2 * c + 192], xs[2 * c + 193], acc1);
    }
    for (; c < chunks; c += 32) acc0 = dot8(load_stream16(row + c), xs[2 * c], xs[2 * c + 1], acc0);
    const float sum = warp_sum(acc0 + acc1);
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
  const size_t smem = static_cast<size_t>(K) * sizeof(float);
  const long long wanted = (rows + kWarpsPerCta - 1) / kWarpsPerCta;
  const int resident = resident_ctas(reinterpret_cast<const void*>(bf16_matvec_kernel), kThreads, smem);
  const int grid = static_cast<int>(wanted < resident ? wanted : resident);
  bf16_matvec_kernel<<<grid, kThreads, smem, stream>>>(W, bias, x, y, rows, K);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
