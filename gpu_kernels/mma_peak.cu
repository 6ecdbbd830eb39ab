// mma_peak: every warp runs kChains independent accumulator chains of mma.sync m16n8k16 bf16 -> f32 on
// register operands, so the tensor pipe, not latency or memory, sets the time.
#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/event_timer.cuh"
#include "gpu_kernels/mma_peak.cuh"
#include "gpu_kernels/mma_sm80.cuh"

namespace ossrun::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kChains = 8;
constexpr int kIterations = 2048;
constexpr int kCtasPerSm = 2;

__global__ void __launch_bounds__(kThreads) mma_bf16_peak_kernel(float* sink) {
  // Operands that the compiler cannot fold: small bf16 values made from the thread index.
  const uint32_t v = 0x3c003c00u + (threadIdx.x & 7u);
  const uint32_t a[4] = {v, v ^ 1u, v ^ 2u, v ^ 3u};
  float acc[kChains][4] = {};
  for (int it = 0; it < kIterations; ++it)
#pragma unroll
    for (int c = 0; c < kChains; ++c) mma_sm80::mma_bf16_16816(acc[c], a, v + c, v ^ static_cast<uint32_t>(c));
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < kChains; ++c) s += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
  if (s == 1.2345f) sink[threadIdx.x] = s;  // practically never: keeps the loop alive
}

}  // namespace

double measure_mma_bf16_tflops(int reps, cudaStream_t stream) {
  int device = 0, sms = 0;
  OSSRUN_CUDA_CHECK(cudaGetDevice(&device));
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  float* sink = nullptr;
  OSSRUN_CUDA_CHECK(cudaMalloc(&sink, kThreads * sizeof(float)));
  const int ctas = sms * kCtasPerSm;
  double ms = 0;
  try {
    ms = median_ms(stream, /*warmup=*/2, reps, [&](cudaStream_t s) {
      mma_bf16_peak_kernel<<<ctas, kThreads, 0, s>>>(sink);
      OSSRUN_CUDA_CHECK_LAUNCH();
    });
  } catch (...) {
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaFree(sink));
    throw;
  }
  OSSRUN_CUDA_CHECK(cudaFree(sink));
  const double flops = 2.0 * 16 * 8 * 16 * kChains * kIterations * (kThreads / 32.0) * ctas;
  return flops / (ms * 1e-3) / 1e12;
}

}  // namespace ossrun::gpu
