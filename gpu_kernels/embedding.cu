// embedding_gather_bf16: kernel, then the launcher. One CTA per token, threads striding over the row
// (coalesced 2-byte reads, 4-byte writes; a row of gpt-oss is 5.8 KB, so the launch is latency-bound).
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/embedding.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using device_util::bf16_value;

constexpr int kThreads = 256;

// ---------------------------------------------------------------------------------------------------------
// Kernel

__global__ void __launch_bounds__(kThreads)
    embedding_gather_bf16_kernel(const uint16_t* __restrict__ table, long long vocab, int hidden,
                                 const int32_t* __restrict__ ids, float* __restrict__ out) {
  const int32_t id = ids[blockIdx.x];
  float* row_out = out + static_cast<long long>(blockIdx.x) * hidden;
  if (id < 0 || id >= vocab) {
    for (int i = threadIdx.x; i < hidden; i += kThreads) row_out[i] = 0.0f;
    return;
  }
  const uint16_t* row = table + static_cast<long long>(id) * hidden;
  for (int i = threadIdx.x; i < hidden; i += kThreads) row_out[i] = bf16_value(row[i]);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Launcher

void embedding_gather_bf16(const uint16_t* table, int64_t vocab, int hidden, const int32_t* ids, int n, float* out,
                           cudaStream_t stream) {
  if (n < 0 || vocab < 1 || hidden < 1)
    throw InputError("embedding_gather_bf16: vocab = " + std::to_string(vocab) + ", hidden = " + std::to_string(hidden) +
                     ", n = " + std::to_string(n) + "; needs vocab >= 1, hidden >= 1 and n >= 0");
  if (n == 0) return;
  embedding_gather_bf16_kernel<<<n, kThreads, 0, stream>>>(table, vocab, hidden, ids, out);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
