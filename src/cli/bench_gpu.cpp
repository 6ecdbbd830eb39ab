// `ossrun bench gpu`: the device-to-device copy bandwidth, then each GPU kernel's achieved bandwidth at
// gpt-oss-20b shapes and its share of that copy bandwidth (gpu_kernels/kernel_bench.h).
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
void run_bench_gpu(int reps) {
  const gpu::DeviceInfo& dev = gpu::probe();
  if (!dev.present) throw std::runtime_error("bench gpu: " + gpu::describe(dev));
  std::printf("device: %s\n", gpu::describe(dev).c_str());
  std::fflush(stdout);
  const gpu::KernelBenchReport r = gpu::run_kernel_bench({reps});
  std::printf("copy bandwidth (device to device, %.0f MiB, bytes read + written): %.1f GB/s\n\n",
              r.copy_buffer_bytes / (1 << 20), r.copy_gbps);
  std::printf("%-40s %-24s %-9s %9s %10s %8s %8s\n", "kernel", "shape", "launch", "MB/call", "median us", "GB/s",
              "of copy");
  for (const gpu::KernelFigure& f : r.figures)
    std::printf("%-40s %-24s %-9s %9.2f %10.2f %8.1f %7.1f%%\n", f.kernel.c_str(), f.shape.c_str(), f.launch.c_str(),
                f.bytes / 1e6, f.median_us, f.gbps, 100.0 * f.gbps / r.copy_gbps);
}
#else
[[noreturn]] void run_bench_gpu(int) {
  throw std::runtime_error("bench gpu: this ossrun was built without CUDA (configure with nvcc present, or OSSRUN_CUDA=ON)");
}
#endif

}  // namespace

void add_bench_gpu(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("gpu", "GPU kernels' bandwidth at gpt-oss-20b shapes beside the copy bandwidth");
  auto reps = std::make_shared<int>(30);
  cmd->add_option("--reps", *reps, "Timed repetitions per figure (the median is printed)")->check(CLI::Range(1, 10000));
  cmd->callback([reps] { run_bench_gpu(*reps); });
}

}  // namespace ossrun::cli
