// The memory read bandwidth of this machine, measured: the ceiling a bandwidth-bound kernel is judged against.
//
// Decode reads every weight once per token, so a matvec can go no faster than memory streams bytes to the cores.
// measure_read_bandwidth streams a buffer much larger than the last-level cache with every thread of the pool
// and reports GB/s (10^9 bytes per second).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu_kernels/thread_pool.h"

namespace ossrun::cpu {

// A large, 2 MiB-aligned allocation (transparent huge pages requested), filled in parallel by the pool so that
// each page is first touched by a thread that will read it. Contents: `seed`-derived pseudo-random bytes.
class LargeBuffer {
 public:
  LargeBuffer(ThreadPool& pool, int64_t bytes, uint64_t seed);
  ~LargeBuffer();
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  int64_t size() const { return bytes_; }

 private:
  uint8_t* data_ = nullptr;
  int64_t bytes_ = 0;
};

struct ReadBandwidth {
  double best_gbps = 0;    // the fastest pass
  double median_gbps = 0;  // the median pass
  int64_t buffer_bytes = 0;
  int passes = 0;
  int threads = 0;
};

// 8x the last-level cache, at least 256 MiB.
int64_t default_bandwidth_buffer_bytes();

// Reads a buffer of `buffer_bytes` (rounded down to 4 KiB) `passes` times with every thread of `pool`.
ReadBandwidth measure_read_bandwidth(ThreadPool& pool, int64_t buffer_bytes, int passes);

}  // namespace ossrun::cpu
