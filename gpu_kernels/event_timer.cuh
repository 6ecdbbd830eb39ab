// Timing device work with CUDA events: warm-up runs, then the median of timed repetitions.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "gpu_kernels/cuda_check.cuh"

namespace ossrun::gpu {

// Runs work(stream) `warmup` times, then `reps` times between two events each; returns the median in ms.
template <typename Work>
double median_ms(cudaStream_t stream, int warmup, int reps, Work&& work) {
  cudaEvent_t start, stop;
  OSSRUN_CUDA_CHECK(cudaEventCreate(&start));
  OSSRUN_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> ms;
  try {
    for (int i = 0; i < warmup; ++i) work(stream);
    OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int i = 0; i < reps; ++i) {
      OSSRUN_CUDA_CHECK(cudaEventRecord(start, stream));
      work(stream);
      OSSRUN_CUDA_CHECK(cudaEventRecord(stop, stream));
      OSSRUN_CUDA_CHECK(cudaEventSynchronize(stop));
      float t = 0;
      OSSRUN_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
  } catch (...) {
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(start));
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(stop));
    throw;
  }
  OSSRUN_CUDA_CHECK(cudaEventDestroy(start));
  OSSRUN_CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace ossrun::gpu
