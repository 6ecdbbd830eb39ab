#include "gpu_kernels/add_f32.cuh"

#include <algorithm>
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

constexpr int kThreads = 256;

// Grid-stride: any n with a bounded grid.
__global__ void __launch_bounds__(kThreads) add_f32_kernel(float* __restrict__ y, const float* __restrict__ x,
                                                           int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads)
    y[i] += x[i];
}

}  // namespace

void add_f32(float* y, const float* x, int64_t n, cudaStream_t stream) {
  if (n < 0) throw InputError("add_f32: negative length " + std::to_string(n));
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  add_f32_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(y, x, n);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
