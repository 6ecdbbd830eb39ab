// The one place where the CPU engine splits work across threads (cpu_kernels' thread pool: workers pinned
// to physical cores, the caller takes tasks too, nothing allocated or created per call).
//
// for_rows(n, grain, fn) calls fn(begin, end) over disjoint chunks covering [0, n), each a multiple of
// `grain` long (but the last), and returns when all are done. There are about eight chunks per thread,
// handed out through the pool's atomic counter, so a slow core does not hold the others back.
#pragma once
#include <cstdint>

#include "cpu_kernels/thread_pool.h"

namespace ossrun::engine {

class Workers {
 public:
  // threads <= 0: one per physical core.
  explicit Workers(int threads);

  int threads() const { return pool_.size(); }
  bool pinned() const { return pool_.pinned(); }
  cpu::ThreadPool& pool() { return pool_; }

  void for_rows(int64_t n, int64_t grain, cpu::FunctionRef<void(int64_t, int64_t)> fn);

 private:
  cpu::ThreadPool pool_;
};

}  // namespace ossrun::engine
