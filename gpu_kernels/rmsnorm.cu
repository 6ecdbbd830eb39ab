// rmsnorm_f32 / add_rmsnorm_f32: kernel, then the launchers.
//
// One CTA per row, each thread a few strided elements (coalesced). Pass 1 accumulates the sum of squares in
// double (as the CPU reference does, so the scale matches it to the last bit but for the summation order);
// pass 2 re-reads the row (the thread's own elements, L1-resident) and writes y = (x * inv) * w, the same
// two float products as the reference, kept apart from contraction.
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/rmsnorm.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using device_util::bf16_value;

constexpr int kMaxThreads = 1024;

// ---------------------------------------------------------------------------------------------------------
// Kernel

// Sum over the CTA in a fixed order (deterministic); every thread gets the result.
__device__ double block_sum(double v) {
  __shared__ double warp_sums[kMaxThreads / 32];
  __shared__ double total;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = (blockDim.x + 31) >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    double s = lane < n_warps ? warp_sums[lane] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

// With delta: x += delta first (written back). x and y are not __restrict__: y may alias x.
__global__ void rmsnorm_f32_kernel(float* x, const float* __restrict__ delta, const uint16_t* __restrict__ w, float* y,
                                   int hidden, float eps) {
  float* xr = x + static_cast<long long>(blockIdx.x) * hidden;
  float* yr = y + static_cast<long long>(blockIdx.x) * hidden;
  const float* dr = delta ? delta + static_cast<long long>(blockIdx.x) * hidden : nullptr;
  double ss = 0;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = xr[i];
    if (dr) xr[i] = v = __fadd_rn(v, dr[i]);
    ss += static_cast<double>(v) * v;
  }
  ss = block_sum(ss);
  const float inv = static_cast<float>(1.0 / sqrt(ss / hidden + static_cast<double>(eps)));
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) yr[i] = __fmul_rn(__fmul_rn(xr[i], inv), bf16_value(w[i]));
}

// ---------------------------------------------------------------------------------------------------------
// Launchers

void launch(float* x, const float* delta, const uint16_t* w, float* y, int rows, int hidden, float eps,
            cudaStream_t stream, const char* name) {
  if (rows < 0 || hidden <= 0)
    throw InputError(std::string(name) + ": rows = " + std::to_string(rows) + ", hidden = " + std::to_string(hidden) +
                     "; needs rows >= 0 and hidden >= 1");
  if (rows == 0) return;
  // About 4 elements per thread: one round of loads in flight covers the row.
  int threads = ((hidden + 3) / 4 + 31) / 32 * 32;
  threads = threads < 32 ? 32 : threads > kMaxThreads ? kMaxThreads : threads;
  rmsnorm_f32_kernel<<<rows, threads, 0, stream>>>(x, delta, w, y, hidden, eps);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rmsnorm_f32(const float* x, const uint16_t* weight_bf16, float* y, int rows, int hidden, float eps,
                 cudaStream_t stream) {
  // The kernel writes x only when given a delta.
  launch(const_cast<float*>(x), nullptr, weight_bf16, y, rows, hidden, eps, stream, "rmsnorm_f32");
}

void add_rmsnorm_f32(float* x, const float* delta, const uint16_t* weight_bf16, float* y, int rows, int hidden,
                     float eps, cudaStream_t stream) {
  if (delta == nullptr) throw InputError("add_rmsnorm_f32: delta is null");
  launch(x, delta, weight_bf16, y, rows, hidden, eps, stream, "add_rmsnorm_f32");
}

}  // namespace ossrun::gpu
