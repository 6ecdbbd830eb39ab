// The device's memory bandwidth as a device-to-device copy sees it: the ceiling the memory-bound kernels
// are compared with, measured in the same process.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace ossrun::gpu {

struct CopyBandwidth {
  size_t buffer_bytes;  // bytes copied per repetition
  double median_ms;
  double gbps;  // (bytes read + bytes written) / time, in 1e9 bytes per second
};

// Copies a buffer of `bytes` (make it much larger than L2) `reps` times with cudaMemcpyAsync.
CopyBandwidth measure_copy_bandwidth(size_t bytes, int reps, cudaStream_t stream);

}  // namespace ossrun::gpu
