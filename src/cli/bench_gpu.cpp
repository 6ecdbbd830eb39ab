// `ossrun bench gpu`: the device-to-device copy bandwidth, then each GPU kernel's achieved bandwidth at
// gpt-oss-20b shapes and its share of that copy bandwidth; then the prefill GEMMs' TFLOP/s beside the
// mma.sync peak measured in the same run (gpu_kernels/kernel_bench.h).
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "src/cli/bench_command.h"
#include "src/gpu/device.h"
#if OSSRUN_HAVE_CUDA
#include "gpu_kernels/kernel_bench.h"
#endif

namespace ossrun::cli {
namespace {

#if OSSRUN_HAVE_CUDA
void run_bench_gpu(int reps, bool gemm) {
  const gpu::DeviceInfo& dev = gpu::probe();
  if (!dev.present) throw std::runtime_error("bench gpu: " + gpu::describe(dev));
  std::printf("device: %s\n", gpu::describe(dev).c_str());
  std::fflush(stdout);
  const gpu::KernelBenchReport r = gpu::run_kernel_bench({reps, gemm});
  std::printf("copy bandwidth (device to device, %.0f MiB, bytes read + written): %.1f GB/s\n\n",
              r.copy_buffer_bytes / (1 << 20), r.copy_gbps);
  std::printf("%-31s %-24s %-7s %9s %10s %8s %8s %8s\n", "kernel", "shape", "launch", "MB/call", "median us", "GB/s",
              "of copy", "TFLOP/s");
  for (const gpu::KernelFigure& f : r.figures) {
    std::printf("%-31s %-24s %-7s %9.2f %10.2f %8.1f %7.1f%%", f.kernel.c_str(), f.shape.c_str(), f.launch.c_str(),
                f.bytes / 1e6, f.median_us, f.gbps, 100.0 * f.gbps / r.copy_gbps);
    if (f.flops > 0) std::printf(" %8.2f", f.tflops);
    std::printf("\n");
  }
  std::printf("\ngpu ops (one decode token; bytes = inputs read + outputs written; launch-latency bound)\n");
  std::printf("%-38s %-24s %-7s %9s %10s %8s %8s\n", "op", "shape", "launch", "KB/call", "median us", "GB/s", "of copy");
  for (const gpu::KernelFigure& f : r.op_figures)
    std::printf("%-38s %-24s %-7s %9.1f %10.2f %8.1f %7.2f%%\n", f.kernel.c_str(), f.shape.c_str(), f.launch.c_str(),
                f.bytes / 1e3, f.median_us, f.gbps, 100.0 * f.gbps / r.copy_gbps);
  if (r.compute.empty()) return;
  // Split-bf16 GEMMs run two mma per product (x = hi + lo): "mma TF/s" counts both, against the peak.
  std::printf("\nmma.sync m16n8k16 bf16 peak (register loop, same run): %.1f TFLOP/s\n\n", r.mma_peak_tflops);
  std::printf("%-20s %-28s %10s %9s %9s %8s %11s\n", "kernel", "shape", "median us", "TFLOP/s", "mma TF/s",
              "of peak", "weight GB/s");
  for (const gpu::ComputeFigure& f : r.compute)
    std::printf("%-20s %-28s %10.1f %9.1f %9.1f %7.1f%% %11.1f\n", f.kernel.c_str(), f.shape.c_str(), f.median_us,
                f.tflops, f.mma_tflops, 100.0 * f.mma_tflops / r.mma_peak_tflops, f.weight_gbps);
}
#else
[[noreturn]] void run_bench_gpu(int, bool) {
  throw std::runtime_error("bench gpu: this ossrun was built without CUDA (configure with nvcc present, or OSSRUN_CUDA=ON)");
}
#endif

}  // namespace

void add_bench_gpu(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("gpu", "GPU kernels' bandwidth at gpt-oss-20b shapes beside the copy bandwidth");
  auto reps = std::make_shared<int>(30);
  cmd->add_option("--reps", *reps, "Timed repetitions per figure (the median is printed)")->check(CLI::Range(1, 10000));
  auto skip_gemm = std::make_shared<bool>(false);
  cmd->add_flag("--skip-gemm", *skip_gemm, "Leave out the prefill GEMMs (bf16_gemm, mxfp4_moe_gemm) and the mma peak");
  cmd->footer("Examples:\n  ossrun bench gpu --reps 50\n  ossrun bench gpu --skip-gemm");
  cmd->callback([reps, skip_gemm] { run_bench_gpu(*reps, !*skip_gemm); });
}

}  // namespace ossrun::cli
