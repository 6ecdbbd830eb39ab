#include "src/engine/parallel.h"

#include <thread>

namespace ossrun::engine {

// TODO(kern merge): back this with cpu_kernels/thread_pool.h. Until the pool lands the chunks run in order
// on the calling thread, which keeps results identical to the threaded version (chunks are disjoint).
struct Workers::Pool {};

Workers::Workers(int threads) {
  threads_ = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
}
Workers::~Workers() = default;

void Workers::run(int64_t n, int64_t grain, void* fn, Thunk thunk) {
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads_ * 4, n / grain));
  const int64_t step = (n + chunks - 1) / chunks;
  for (int64_t b = 0; b < n; b += step) thunk(fn, b, std::min(n, b + step));
}

}  // namespace ossrun::engine
