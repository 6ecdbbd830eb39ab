// Streaming-read bandwidth measurement and the large buffers the benchmarks read.
#include "cpu_kernels/memory_bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_kernels/kernels.h"

namespace ossrun::cpu {
namespace {

constexpr int64_t kHugePage = int64_t{2} << 20;
constexpr int64_t kChunk = int64_t{4} << 20;  // bytes per task when touching or reading a buffer

// The widest read loop this machine runs (whatever OSSRUN_ISA says: the probe measures the machine).
const KernelTable& widest_kernels() {
  for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
    if (isa_supported(isa)) return kernels(isa);
  }
  return kernels(Isa::Scalar);
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

LargeBuffer::LargeBuffer(ThreadPool& pool, int64_t bytes, uint64_t seed) : bytes_(bytes) {
  if (bytes <= 0) throw std::invalid_argument("buffer size must be positive, got " + std::to_string(bytes));
  const int64_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(kHugePage, static_cast<size_t>(rounded)));
  if (data_ == nullptr) throw std::bad_alloc();
  madvise(data_, static_cast<size_t>(rounded), MADV_HUGEPAGE);  // a hint; fine if the kernel ignores it
  const int64_t n_tasks = (bytes + kChunk - 1) / kChunk;
  pool.parallel_for(n_tasks, [&](int64_t task) {
    const int64_t begin = task * kChunk, end = std::min(bytes, begin + kChunk);
    uint64_t state = seed ^ static_cast<uint64_t>(task) * 0x632be59bd9b4e019ull;
    for (int64_t i = begin; i < end; i += 8) {
      const uint64_t r = splitmix64(state);
      std::memcpy(data_ + i, &r, static_cast<size_t>(std::min<int64_t>(8, end - i)));
    }
  });
}

LargeBuffer::~LargeBuffer() { std::free(data_); }

int64_t default_bandwidth_buffer_bytes() { return std::max<int64_t>(8 * last_level_cache_bytes(), int64_t{512} << 20); }

namespace {
int64_t checked_probe_bytes(int64_t buffer_bytes) {
  if (buffer_bytes < kChunk) {
    throw std::invalid_argument("bandwidth buffer must be at least 4 MiB, got " + std::to_string(buffer_bytes));
  }
  return buffer_bytes / 4096 * 4096;
}
}  // namespace

ReadBandwidthProbe::ReadBandwidthProbe(ThreadPool& pool, int64_t buffer_bytes)
    : pool_(pool), buffer_(pool, checked_probe_bytes(buffer_bytes), /*seed=*/1) {}

double ReadBandwidthProbe::pass_gbps() {
  const int64_t bytes = buffer_.size();
  const int64_t n_tasks = (bytes + kChunk - 1) / kChunk;
  const auto read = widest_kernels().stream_read;
  std::atomic<uint64_t> sum{0};
  const auto t0 = std::chrono::steady_clock::now();
  pool_.parallel_for(n_tasks, [&](int64_t task) {
    const int64_t begin = task * kChunk, end = std::min(bytes, begin + kChunk);
    sum.fetch_xor(read(buffer_.data() + begin, (end - begin) / 256 * 256), std::memory_order_relaxed);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  checksum_ ^= sum.load();
  return static_cast<double>(bytes) / seconds * 1e-9;
}

ReadBandwidth measure_read_bandwidth(ThreadPool& pool, int64_t buffer_bytes, int passes) {
  if (passes < 1) throw std::invalid_argument("need at least one pass, got " + std::to_string(passes));
  ReadBandwidthProbe probe(pool, buffer_bytes);
  probe.pass_gbps();  // warm-up: page tables, clocks
  std::vector<double> gbps;
  for (int pass = 0; pass < passes; ++pass) gbps.push_back(probe.pass_gbps());
  std::sort(gbps.begin(), gbps.end());
  ReadBandwidth result;
  result.best_gbps = gbps.back();
  result.median_gbps = gbps[gbps.size() / 2];
  result.buffer_bytes = probe.buffer_bytes();
  result.passes = passes;
  result.threads = pool.size();
  return result;
}

}  // namespace ossrun::cpu
