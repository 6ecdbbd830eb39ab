// The one place where the CPU engine splits work across threads.
//
// for_rows(n, grain, fn) calls fn(begin, end) over disjoint chunks covering [0, n), each at least `grain`
// long (but the last), and returns when all are done. The caller's callable is passed by reference, so a
// call allocates nothing.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace ossrun::engine {

class Workers {
 public:
  // threads <= 0: one per core.
  explicit Workers(int threads);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  int threads() const { return threads_; }

  template <class F>
  void for_rows(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    using Fn = std::remove_reference_t<F>;
    run(n, std::max<int64_t>(grain, 1), &fn, [](void* f, int64_t b, int64_t e) { (*static_cast<Fn*>(f))(b, e); });
  }

 private:
  using Thunk = void (*)(void*, int64_t, int64_t);
  void run(int64_t n, int64_t grain, void* fn, Thunk thunk);

  int threads_ = 1;
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

}  // namespace ossrun::engine
