// bf16_matvec: y = W x + b for one token (attention projections, router, lm_head), W bf16, x and y fp32,
// fp32 accumulation.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu {

// The largest K the launcher takes (keeps row offsets and task counts far from overflow; gpt-oss needs 4096).
constexpr int kBf16MatvecMaxK = 65536;

// W: (rows, K) bf16, 16-byte aligned; bias: (rows) bf16 or nullptr; x: (K) fp32, 16-byte aligned;
// y: (rows) fp32, overwritten. K a positive multiple of 8 up to kBf16MatvecMaxK. Launches on `stream`.
// Throws InputError for sizes or alignments the kernel cannot take.
void bf16_matvec(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t rows, int K,
                 cudaStream_t stream);

}  // namespace ossrun::gpu
