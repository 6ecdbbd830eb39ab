// add_f32: y += x over n floats on the device (the hybrid offload adds the CPU-computed experts' output,
// copied up from the host, into the residual stream).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu {

// y (n) fp32 += x (n) fp32, on `stream`. n == 0 is a no-op; throws InputError for n < 0.
void add_f32(float* y, const float* x, int64_t n, cudaStream_t stream);

}  // namespace ossrun::gpu
