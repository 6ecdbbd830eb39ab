// bf16_gemm: y = x W^T + bias for a batch of tokens (prefill: attention projections, router, lm_head), W bf16
// in the checkpoint layout, x and y fp32, on the tensor cores (mma.sync m16n8k16 bf16 -> f32, sm_80+).
//
// Precision: x enters as two bf16 parts, x = hi + lo (mma_sm80.cuh), each multiplied by W and summed in the
// same fp32 accumulator, so the inputs keep about 16 significant bits instead of bf16's 8 (the same
// "split-bf16" scheme the CPU engine feeds oneDNN). Weights are bf16, exact. The price is twice the mma work.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_buffer.cuh"

namespace ossrun::gpu {

// The tile shape a launch uses. Auto: one or two tokens go to bf16_matvec, one call each (memory-bound, fp32
// x); more take Wide when its tiles fill at least 3/4 of the SMs, else Narrow. The others force a shape
// (tests, benchmarks).
enum class Bf16GemmTile : int { Auto, Wide, Narrow };
const char* bf16_gemm_tile_name(Bf16GemmTile tile);

// Scratch for one stream's launches: x split into bf16 hi and lo parts.
class Bf16GemmWorkspace {
 public:
  // Throws InputError unless max_n >= 1 and max_K is a positive multiple of 32.
  Bf16GemmWorkspace(int max_n, int max_K);
  int max_n() const { return max_n_; }
  int max_K() const { return max_K_; }

 private:
  friend void bf16_gemm(const uint16_t*, const uint16_t*, const float*, float*, int, int64_t, int, Bf16GemmWorkspace&,
                        cudaStream_t, Bf16GemmTile);
  int max_n_, max_K_;
  DeviceBuffer<uint16_t> x_hi_, x_lo_;  // (max_n, max_K) bf16, rows of the current K packed
};

// W: (rows, K) bf16, 16-byte aligned; bias: (rows) bf16 or nullptr; x: (n, K) fp32, 16-byte aligned;
// y: (n, rows) fp32, overwritten. n from 0 (no-op) to ws.max_n(); K a positive multiple of 32 up to ws.max_K().
// Launches on `stream`; throws InputError for sizes or alignments the kernels cannot take.
void bf16_gemm(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int n, int64_t rows, int K,
               Bf16GemmWorkspace& ws, cudaStream_t stream, Bf16GemmTile tile = Bf16GemmTile::Auto);

}  // namespace ossrun::gpu
