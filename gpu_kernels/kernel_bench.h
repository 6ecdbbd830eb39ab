// `ossrun bench gpu`: the GPU kernels' achieved bandwidth at gpt-oss-20b shapes beside the device-to-device
// copy bandwidth measured in the same process. Plain C++ (no CUDA types): the CLI includes it.
#pragma once
#include <string>
#include <vector>

namespace ossrun::gpu {

struct KernelFigure {
  std::string kernel;   // "mxfp4_moe_matvec f32x2"
  std::string shape;    // "H=2880 I=2880 k=4 of 32"
  std::string launch;   // "stream xN" (N back-to-back launches) or "graph xN" (a CUDA graph of N calls replayed)
  double bytes = 0;     // bytes one call must move: weights and biases read, x read, y read and/or written
  double median_us = 0;  // per call
  double gbps = 0;
};

struct KernelBenchReport {
  double copy_buffer_bytes = 0;
  double copy_gbps = 0;
  std::vector<KernelFigure> figures;
};

struct KernelBenchOptions {
  int reps = 30;  // timed repetitions per figure (the median is reported)
};

// Runs on device 0; throws CudaError or std::runtime_error when there is no usable GPU.
KernelBenchReport run_kernel_bench(const KernelBenchOptions& options);

}  // namespace ossrun::gpu
