// rmsnorm_f32 / add_rmsnorm_f32: RMSNorm of fp32 rows with a bf16 weight (gpt-oss.md §6), the GPU twin of
// src/engine/ops.h rmsnorm: y = x * (1 / sqrt(mean(x^2) + eps)) * w, the sum of squares in double.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu {

// x, y: (rows, hidden) fp32; weight_bf16: (hidden) bf16. y may alias x. rows >= 0, hidden >= 1.
// Throws InputError for other sizes. Launches on `stream`; no host synchronization (graph-capturable).
void rmsnorm_f32(const float* x, const uint16_t* weight_bf16, float* y, int rows, int hidden, float eps,
                 cudaStream_t stream);

// The residual add fused with the next norm: x += delta (x updated in place), then y = rmsnorm(x).
// delta must not alias x; y may alias x (then x ends normalized). Same sizes as rmsnorm_f32.
void add_rmsnorm_f32(float* x, const float* delta, const uint16_t* weight_bf16, float* y, int rows, int hidden,
                     float eps, cudaStream_t stream);

}  // namespace ossrun::gpu
