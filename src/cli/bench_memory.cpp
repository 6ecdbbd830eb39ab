// `ossrun bench memory`: the streaming read bandwidth of this machine, the ceiling of every decode kernel.
#include <cstdio>
#include <memory>

#include "cpu_kernels/memory_bandwidth.h"
#include "cpu_kernels/thread_pool.h"
#include "src/cli/bench_command.h"

namespace ossrun::cli {

namespace {
struct BenchMemoryFlags {
  int threads = 0;
  int64_t size_mib = 0;
  int passes = 5;
};
}  // namespace

void add_bench_memory(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("memory", "Measure the memory read bandwidth with every thread of the CPU pool");
  auto flags = std::make_shared<BenchMemoryFlags>();
  cmd->add_option("--threads", flags->threads, "Threads, the caller included (0: one per physical core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--size-mib", flags->size_mib, "Buffer size in MiB (0: 8x the last-level cache, at least 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--passes", flags->passes, "Timed passes over the buffer")->check(CLI::PositiveNumber);
  cmd->footer("Example:\n  ossrun bench memory --threads 8");
  cmd->callback([flags] {
    cpu::ThreadPool pool({.threads = flags->threads});
    const int64_t bytes = flags->size_mib > 0 ? flags->size_mib << 20 : cpu::default_bandwidth_buffer_bytes();
    const cpu::ReadBandwidth bw = cpu::measure_read_bandwidth(pool, bytes, flags->passes);
    std::printf("memory read bandwidth: %d threads (%s), %.0f MiB buffer, last-level cache %.0f MiB, %d passes\n",
                bw.threads, pool.pinned() ? "workers pinned to cores" : "not pinned",
                static_cast<double>(bw.buffer_bytes) / (1 << 20),
                static_cast<double>(cpu::last_level_cache_bytes()) / (1 << 20), bw.passes);
    std::printf("  best %.1f GB/s, median %.1f GB/s\n", bw.best_gbps, bw.median_gbps);
  });
}

}  // namespace ossrun::cli
