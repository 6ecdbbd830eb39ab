#include "gpu_kernels/copy_bandwidth.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/event_timer.cuh"

namespace ossrun::gpu {

CopyBandwidth measure_copy_bandwidth(size_t bytes, int reps, cudaStream_t stream) {
  DeviceBuffer<unsigned char> src(bytes), dst(bytes);
  OSSRUN_CUDA_CHECK(cudaMemsetAsync(src.get(), 0x5a, bytes, stream));  // not zeros
  OSSRUN_CUDA_CHECK(cudaMemsetAsync(dst.get(), 0xa5, bytes, stream));
  const double ms = median_ms(stream, /*warmup=*/2, reps, [&](cudaStream_t s) {
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, s));
  });
  return {bytes, ms, 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9};
}

}  // namespace ossrun::gpu
