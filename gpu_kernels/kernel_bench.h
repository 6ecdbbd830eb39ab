// `ossrun bench gpu`: the GPU kernels' achieved bandwidth at gpt-oss-20b shapes beside the device-to-device
// copy bandwidth measured in the same process. Plain C++ (no CUDA types): the CLI includes it.
#pragma once
#include <string>
#include <vector>

namespace ossrun::gpu {

struct KernelFigure {
  std::string kernel;   // "mxfp4_moe_matvec f32x2"
  std::string shape;    // "H=2880 I=2880 k=4 of 32"
  std::string launch;   // "stream" (back-to-back launches) or "graph" (CUDA graph replay)
  double bytes = 0;     // bytes one call must move: weights and biases read, x read, y read and/or written
  double median_us = 0;  // per call
  double gbps = 0;
  double flops = 0;      // floating-point operations one call does (0 where bandwidth is what matters)
  double tflops = 0;
};

// A batched (prefill) kernel: achieved TFLOP/s beside the tensor cores' measured mma.sync peak.
struct ComputeFigure {
  std::string kernel;       // "bf16_gemm wide"
  std::string shape;        // "q 4096x2880 n=512"
  double flops = 0;         // useful flops per call (2 per multiply-add of the model's math)
  double mma_flops = 0;     // flops the tensor cores execute (split-bf16 inputs: twice `flops`)
  double weight_bytes = 0;  // distinct weight bytes one call needs
  double median_us = 0;
  double tflops = 0;       // flops / time
  double mma_tflops = 0;   // mma_flops / time, comparable with mma_peak_tflops
  double weight_gbps = 0;  // weight_bytes / time
};

struct KernelBenchReport {
  double copy_buffer_bytes = 0;
  double copy_gbps = 0;
  std::vector<KernelFigure> figures;
  double mma_peak_tflops = 0;  // mma.sync m16n8k16 bf16 register loop (0 when the GEMMs were skipped)
  std::vector<ComputeFigure> compute;
  std::vector<KernelFigure> op_figures;  // the small per-token ops (rmsnorm, rope, router, embedding, sampling)
};

struct KernelBenchOptions {
  int reps = 30;      // timed repetitions per figure (the median is reported)
  bool gemm = true;   // also the prefill GEMMs (bf16_gemm, mxfp4_moe_gemm) and the mma peak
};

// Runs on device 0; throws CudaError or std::runtime_error when there is no usable GPU.
KernelBenchReport run_kernel_bench(const KernelBenchOptions& options);

}  // namespace ossrun::gpu
