// Streaming-read bandwidth measurement and the large buffers the benchmarks read.
#include "cpu_kernels/memory_bandwidth.h"

#include <emmintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace ossrun::cpu {
namespace {

constexpr int64_t kHugePage = int64_t{2} << 20;
constexpr int64_t kChunk = int64_t{4} << 20;  // bytes per task when touching or reading a buffer

// Sums the 16-byte words of [p, p + bytes) (bytes a multiple of 128) with eight independent accumulators, so the
// loop issues loads as fast as the core can: SSE2 is baseline on x86-64 and two or three 16-byte loads per cycle
// are several times what one core's share of DRAM delivers.
uint64_t read_sum(const uint8_t* p, int64_t bytes) {
  __m128i acc[8];
  for (auto& a : acc) a = _mm_setzero_si128();
  for (int64_t i = 0; i < bytes; i += 128) {
    for (int j = 0; j < 8; ++j) {
      acc[j] = _mm_add_epi64(acc[j], _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 16 * j)));
    }
  }
  for (int j = 1; j < 8; ++j) acc[0] = _mm_add_epi64(acc[0], acc[j]);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(acc[0]));
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

int64_t default_bandwidth_buffer_bytes() { return std::max<int64_t>(8 * last_level_cache_bytes(), int64_t{256} << 20); }

ReadBandwidth measure_read_bandwidth(ThreadPool& pool, int64_t buffer_bytes, int passes) {
  if (buffer_bytes < kChunk) {
    throw std::invalid_argument("bandwidth buffer must be at least 4 MiB, got " + std::to_string(buffer_bytes));
  }
  if (passes < 1) throw std::invalid_argument("need at least one pass, got " + std::to_string(passes));
  buffer_bytes = buffer_bytes / 4096 * 4096;
  LargeBuffer buffer(pool, buffer_bytes, /*seed=*/1);
  const int64_t n_tasks = (buffer_bytes + kChunk - 1) / kChunk;
  std::vector<uint64_t> sums(static_cast<size_t>(n_tasks));  // kept so the reads cannot be optimised away
  std::vector<double> gbps;
  for (int pass = 0; pass < passes + 1; ++pass) {  // the first pass warms up (page tables, clocks) and is dropped
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n_tasks, [&](int64_t task) {
      const int64_t begin = task * kChunk, end = std::min(buffer_bytes, begin + kChunk);
      sums[static_cast<size_t>(task)] += read_sum(buffer.data() + begin, (end - begin) / 128 * 128);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pass > 0) gbps.push_back(static_cast<double>(buffer_bytes) / seconds * 1e-9);
  }
  uint64_t checksum = 0;
  for (uint64_t s : sums) checksum ^= s;
  asm volatile("" : : "r"(checksum));
  std::sort(gbps.begin(), gbps.end());
  ReadBandwidth result;
  result.best_gbps = gbps.back();
  result.median_gbps = gbps[gbps.size() / 2];
  result.buffer_bytes = buffer_bytes;
  result.passes = passes;
  result.threads = pool.size();
  return result;
}

}  // namespace ossrun::cpu
