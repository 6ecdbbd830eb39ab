// A fixed pool of worker threads for the per-token hot path: one worker per physical core, pinned through hwloc.
//
// parallel_for(n_tasks, fn) runs fn(task) once for every task in [0, n_tasks); the calling thread takes tasks too
// and the call returns when all are done. A call allocates nothing and creates no thread: workers wait for the
// next call by polling for a short while (so back-to-back calls of a decode step cost no wake-up) and then sleep
// on a futex. Tasks are handed out through an atomic counter, so a slow core does not hold the others back.
//
// The header carries no hwloc type.
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace ossrun::cpu {

// A non-owning reference to a callable (the callable must outlive the call it is passed to): a std::function
// without the allocation.
template <class Signature>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): converting from a lambda is the point
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

struct ThreadPoolOptions {
  int threads = 0;    // threads that run tasks, the caller included; 0 = one per physical core
  bool pin = true;    // bind worker i to physical core i (the caller keeps its own affinity); only when
                      // threads <= physical cores, otherwise the workers float
  int spin_us = 100;  // how long an idle worker polls for the next call before it sleeps
};

class ThreadPool {
 public:
  explicit ThreadPool(ThreadPoolOptions options = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that run tasks, the caller included.
  int size() const;
  // Whether every worker was bound to its own physical core.
  bool pinned() const;

  // Runs fn(task) for each task in [0, n_tasks), each exactly once, across the workers and the calling thread.
  // If a task throws, tasks not yet started are skipped and the first exception is rethrown here once every
  // thread has stopped. Calls from several threads are serialised; a call from inside a task of this pool runs
  // its tasks inline on that thread.
  void parallel_for(int64_t n_tasks, FunctionRef<void(int64_t)> fn);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Physical cores this process may run on (hwloc; at least 1).
int physical_core_count();
// Total size of the last-level caches (all L3s, or all L2s without an L3), 0 when hwloc does not know.
int64_t last_level_cache_bytes();

// Part i of `parts` near-equal parts of [0, total); every boundary but `total` is a multiple of `align`.
struct TaskRange {
  int64_t begin;
  int64_t end;
};
TaskRange split_range(int64_t total, int64_t parts, int64_t i, int64_t align = 1);

}  // namespace ossrun::cpu
