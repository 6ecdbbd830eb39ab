#include <mutex>
#include <vector>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/persistent_grid.cuh"

namespace ossrun::gpu {
namespace {

struct Entry {
  const void* kernel;
  int device, threads;
  size_t smem;
  int ctas;
};

}  // namespace

int resident_ctas(const void* kernel, int threads, size_t dynamic_smem) {
  static std::mutex mu;
  static std::vector<Entry> cache;
  int device = 0;
  OSSRUN_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mu);
  for (const Entry& e : cache)
    if (e.kernel == kernel && e.device == device && e.threads == threads && e.smem == dynamic_smem) return e.ctas;
  if (dynamic_smem > 48 * 1024)
    OSSRUN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_smem)));
  int per_sm = 0, sms = 0;
  OSSRUN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, dynamic_smem));
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int ctas = per_sm * sms > 0 ? per_sm * sms : 1;
  cache.push_back({kernel, device, threads, dynamic_smem, ctas});
  return ctas;
}

}  // namespace ossrun::gpu
