// The hwloc-pinned worker pool and the topology queries behind it.
#include "cpu_kernels/thread_pool.h"

#include <hwloc.h>
#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ossrun::cpu {
namespace {

// The machine's topology, loaded once and kept for the life of the process (hwloc queries and binding calls are
// thread-safe on a topology nobody modifies).
class Topology {
 public:
  Topology() {
    if (hwloc_topology_init(&topo_) != 0 || hwloc_topology_load(topo_) != 0) {
      throw std::runtime_error("hwloc could not read this machine's topology");
    }
  }
  ~Topology() { hwloc_topology_destroy(topo_); }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  hwloc_topology_t get() const { return topo_; }

 private:
  hwloc_topology_t topo_ = nullptr;
};

const Topology& topology() {
  static const Topology topo;
  return topo;
}

// Binds the calling thread to physical core `core`; false when the OS refuses.
bool bind_this_thread_to_core(int core) {
  hwloc_topology_t topo = topology().get();
  hwloc_obj_t obj = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, static_cast<unsigned>(core));
  if (obj == nullptr) return false;
  return hwloc_set_cpubind(topo, obj->cpuset, HWLOC_CPUBIND_THREAD) == 0;
}

}  // namespace

int physical_core_count() {
  const int cores = hwloc_get_nbobjs_by_type(topology().get(), HWLOC_OBJ_CORE);
  return cores > 0 ? cores : 1;
}

int64_t last_level_cache_bytes() {
  hwloc_topology_t topo = topology().get();
  for (hwloc_obj_type_t type : {HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L2CACHE}) {
    int64_t total = 0;
    const int n = hwloc_get_nbobjs_by_type(topo, type);
    for (int i = 0; i < n; ++i) {
      total += static_cast<int64_t>(hwloc_get_obj_by_type(topo, type, static_cast<unsigned>(i))->attr->cache.size);
    }
    if (total > 0) return total;
  }
  return 0;
}

TaskRange split_range(int64_t total, int64_t parts, int64_t i, int64_t align) {
  const int64_t units = (total + align - 1) / align;
  const int64_t begin = units * i / parts * align;
  const int64_t end = units * (i + 1) / parts * align;
  return {begin < total ? begin : total, end < total ? end : total};
}

struct ThreadPool::State {
  int size = 1;
  bool pinned = false;
  std::chrono::microseconds spin{0};
  std::vector<std::thread> workers;
  std::mutex call_mutex;  // one parallel_for at a time

  // The current call. Written by the caller before it bumps `generation` (release); read by the workers after
  // they see the new generation (acquire).
  const FunctionRef<void(int64_t)>* fn = nullptr;
  int64_t n_tasks = 0;
  std::mutex error_mutex;
  std::exception_ptr error;

  // Each hot atomic on its own cache line: workers hammer next_task while the caller polls workers_done.
  alignas(64) std::atomic<int64_t> next_task{0};
  alignas(64) std::atomic<uint32_t> generation{0};  // bumped once per call, and once more to stop
  alignas(64) std::atomic<int> workers_done{0};
  std::atomic<bool> stop{false};

  // Takes tasks until none are left. On an exception, keeps the first and makes the others stop taking tasks.
  void run_tasks() {
    for (;;) {
      const int64_t task = next_task.fetch_add(1, std::memory_order_relaxed);
      if (task >= n_tasks) return;
      try {
        (*fn)(task);
      } catch (...) {
        {
          std::lock_guard lock(error_mutex);
          if (!error) error = std::current_exception();
        }
        next_task.store(n_tasks, std::memory_order_relaxed);
      }
    }
  }

  // Polls `word` until it differs from `old` for up to `spin`, then sleeps on it; returns the new value.
  template <class T>
  T wait_for_change(const std::atomic<T>& word, T old) const {
    const auto deadline = std::chrono::steady_clock::now() + spin;
    for (int i = 0;; ++i) {
      const T now = word.load(std::memory_order_acquire);
      if (now != old) return now;
      _mm_pause();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() >= deadline) break;
    }
    for (;;) {
      word.wait(old, std::memory_order_acquire);
      const T now = word.load(std::memory_order_acquire);
      if (now != old) return now;
    }
  }

  void worker_main(int core, bool pin);
};

namespace {
// The pool whose task the current thread is running (workers: always their pool), to run nested calls inline.
thread_local const void* t_current_pool = nullptr;
}  // namespace

void ThreadPool::State::worker_main(int core, bool pin) {
  if (pin) bind_this_thread_to_core(core);  // failure was detected (and reported) by the constructor's probe
  t_current_pool = this;
  uint32_t seen = 0;
  const int n_workers = size - 1;
  for (;;) {
    seen = wait_for_change(generation, seen);
    if (stop.load(std::memory_order_acquire)) return;
    run_tasks();
    if (workers_done.fetch_add(1, std::memory_order_acq_rel) + 1 == n_workers) workers_done.notify_one();
  }
}

ThreadPool::ThreadPool(ThreadPoolOptions options) : state_(std::make_unique<State>()) {
  const int cores = physical_core_count();
  if (options.threads < 0) throw std::invalid_argument("thread count must be positive or 0 (one per core)");
  State& s = *state_;
  s.size = options.threads == 0 ? cores : options.threads;
  s.spin = std::chrono::microseconds(options.spin_us > 0 ? options.spin_us : 0);
  // Pin only when every thread gets a core of its own. Binding is probed once here, on this thread, with its
  // affinity restored, so that a refusal (containers, restricted cpusets) leaves the workers floating rather
  // than half pinned.
  bool pin = options.pin && s.size <= cores && s.size > 1;
  if (pin) {
    hwloc_topology_t topo = topology().get();
    hwloc_cpuset_t saved = hwloc_bitmap_alloc();
    if (hwloc_get_cpubind(topo, saved, HWLOC_CPUBIND_THREAD) != 0 || !bind_this_thread_to_core(s.size - 1)) {
      pin = false;
    }
    hwloc_set_cpubind(topo, saved, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(saved);
  }
  s.pinned = pin;
  s.workers.reserve(static_cast<size_t>(s.size - 1));
  for (int w = 1; w < s.size; ++w) s.workers.emplace_back([&s, w, pin] { s.worker_main(w, pin); });
}

ThreadPool::~ThreadPool() {
  State& s = *state_;
  s.stop.store(true, std::memory_order_release);
  s.generation.fetch_add(1, std::memory_order_acq_rel);
  s.generation.notify_all();
  for (auto& t : s.workers) t.join();
}

int ThreadPool::size() const { return state_->size; }
bool ThreadPool::pinned() const { return state_->pinned; }

void ThreadPool::parallel_for(int64_t n_tasks, FunctionRef<void(int64_t)> fn) {
  if (n_tasks <= 0) return;
  State& s = *state_;
  if (s.size == 1 || n_tasks == 1 || t_current_pool == &s) {
    for (int64_t task = 0; task < n_tasks; ++task) fn(task);  // nothing to share, or nested: inline
    return;
  }
  std::lock_guard call_lock(s.call_mutex);
  s.fn = &fn;
  s.n_tasks = n_tasks;
  s.error = nullptr;
  s.next_task.store(0, std::memory_order_relaxed);
  s.workers_done.store(0, std::memory_order_relaxed);
  s.generation.fetch_add(1, std::memory_order_release);
  s.generation.notify_all();

  const void* outer = t_current_pool;
  t_current_pool = &s;
  s.run_tasks();
  t_current_pool = outer;

  const int n_workers = s.size - 1;
  for (int done = s.workers_done.load(std::memory_order_acquire); done != n_workers;) {
    done = s.wait_for_change(s.workers_done, done);
  }
  s.fn = nullptr;
  if (s.error) std::rethrow_exception(s.error);
}

}  // namespace ossrun::cpu
