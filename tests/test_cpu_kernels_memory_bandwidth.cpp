// The benchmark buffers and the read-bandwidth probe: deterministic contents, argument checks, sane output.
// (What the probe measures is a benchmark figure, printed by `ossrun bench memory`, not a test.)
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu_kernels/memory_bandwidth.h"
#include "cpu_kernels/thread_pool.h"

namespace ossrun::cpu {

TEST_CASE("LargeBuffer fills the same bytes for the same seed whatever the thread count") {
  const int64_t bytes = (int64_t{9} << 20) + 13;  // several fill tasks and a ragged end
  ThreadPool one({.threads = 1}), three({.threads = 3});
  LargeBuffer a(one, bytes, 7), b(three, bytes, 7), c(three, bytes, 8);
  CHECK(a.size() == bytes);
  CHECK(std::memcmp(a.data(), b.data(), static_cast<size_t>(bytes)) == 0);
  CHECK(std::memcmp(a.data(), c.data(), static_cast<size_t>(bytes)) != 0);
  CHECK(reinterpret_cast<uintptr_t>(a.data()) % (2 << 20) == 0);
  CHECK_THROWS_AS(LargeBuffer(one, 0, 1), std::invalid_argument);
}

TEST_CASE("the read-bandwidth probe checks its arguments and reports a finite positive rate") {
  ThreadPool pool({.threads = 2});
  CHECK_THROWS_AS(ReadBandwidthProbe(pool, 1 << 20), std::invalid_argument);
  CHECK_THROWS_AS(measure_read_bandwidth(pool, 8 << 20, 0), std::invalid_argument);
  const ReadBandwidth bw = measure_read_bandwidth(pool, (8 << 20) + 100, 2);
  CHECK(bw.buffer_bytes == 8 << 20);  // rounded down to 4 KiB
  CHECK(bw.passes == 2);
  CHECK(bw.threads == 2);
  CHECK(std::isfinite(bw.best_gbps));
  CHECK(bw.best_gbps > 0);
  CHECK(bw.median_gbps <= bw.best_gbps);
}

}  // namespace ossrun::cpu
