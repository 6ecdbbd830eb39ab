// The tensor cores' dense bf16 throughput through mma.sync m16n8k16 (the instruction bf16_gemm and
// mxfp4_moe_gemm use), measured with register-only loops: the ceiling their TFLOP/s are compared with.
#pragma once
#include <cuda_runtime.h>

namespace ossrun::gpu {

// Median TFLOP/s (2 flops per multiply-add) over `reps` timed launches filling every SM.
double measure_mma_bf16_tflops(int reps, cudaStream_t stream);

}  // namespace ossrun::gpu
