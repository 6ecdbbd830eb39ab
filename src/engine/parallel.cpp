#include "src/engine/parallel.h"

#include <algorithm>

namespace ossrun::engine {

Workers::Workers(int threads) : pool_(cpu::ThreadPoolOptions{.threads = std::max(threads, 0)}) {}

void Workers::for_rows(int64_t n, int64_t grain, cpu::FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t wanted = 8 * static_cast<int64_t>(threads());
  const int64_t chunk = std::max<int64_t>(1, ((n + wanted - 1) / wanted + grain - 1) / grain) * grain;
  const int64_t tasks = (n + chunk - 1) / chunk;
  if (tasks == 1) {
    fn(0, n);
    return;
  }
  pool_.parallel_for(tasks, [&](int64_t t) { fn(t * chunk, std::min(n, (t + 1) * chunk)); });
}

}  // namespace ossrun::engine
