// The hwloc worker pool: every task runs exactly once, exceptions come back to the caller, nested and
// concurrent calls work, back-to-back calls (spinning and sleeping workers) lose no wake-up, split_range tiles.
#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cpu_kernels/thread_pool.h"

namespace ossrun::cpu {
namespace {

// Runs n tasks and checks each ran exactly once.
void check_every_task_once(ThreadPool& pool, int64_t n_tasks) {
  std::vector<std::atomic<int>> runs(static_cast<size_t>(n_tasks));
  pool.parallel_for(n_tasks, [&](int64_t task) { runs[static_cast<size_t>(task)].fetch_add(1); });
  for (int64_t t = 0; t < n_tasks; ++t) {
    if (runs[static_cast<size_t>(t)].load() != 1) {
      FAIL_CHECK("task " << t << " of " << n_tasks << " ran " << runs[static_cast<size_t>(t)].load() << " times");
      return;
    }
  }
}

}  // namespace

TEST_CASE("thread pool runs every task exactly once") {
  for (int threads : {1, 2, 3, 5}) {
    CAPTURE(threads);
    ThreadPool pool({.threads = threads});
    CHECK(pool.size() == threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 100000}) {
      CAPTURE(n);
      check_every_task_once(pool, n);
    }
  }
}

TEST_CASE("thread pool defaults to one thread per physical core and rejects a negative count") {
  ThreadPool pool;
  CHECK(pool.size() == physical_core_count());
  CHECK_THROWS_AS(ThreadPool({.threads = -1}), std::invalid_argument);
}

TEST_CASE("thread pool rethrows a task's exception after the other threads stop, and stays usable") {
  ThreadPool pool({.threads = 3});
  std::atomic<int> ran{0};
  CHECK_THROWS_WITH_AS(pool.parallel_for(1000,
                                         [&](int64_t task) {
                                           ran.fetch_add(1);
                                           if (task == 37) throw std::runtime_error("task 37 failed");
                                         }),
                       "task 37 failed", std::runtime_error);
  CHECK(ran.load() >= 1);
  CHECK(ran.load() <= 1000);
  check_every_task_once(pool, 5000);  // the pool still works
  // A single task runs inline on the caller; its exception propagates the same way.
  CHECK_THROWS_AS(pool.parallel_for(1, [](int64_t) { throw std::logic_error("inline"); }), std::logic_error);
}

TEST_CASE("thread pool runs a nested parallel_for inline instead of deadlocking") {
  ThreadPool pool({.threads = 3});
  std::vector<std::atomic<int>> runs(16 * 16);
  pool.parallel_for(16, [&](int64_t outer) {
    pool.parallel_for(16, [&](int64_t inner) { runs[static_cast<size_t>(outer * 16 + inner)].fetch_add(1); });
  });
  for (auto& r : runs) CHECK(r.load() == 1);
}

TEST_CASE("thread pool survives many back-to-back calls with spinning and with sleeping workers") {
  for (int spin_us : {0, 200}) {
    CAPTURE(spin_us);
    ThreadPool pool({.threads = 3, .spin_us = spin_us});
    std::atomic<int64_t> sum{0};
    for (int call = 0; call < 3000; ++call) {
      pool.parallel_for(4, [&](int64_t task) { sum.fetch_add(task + 1); });
    }
    CHECK(sum.load() == 3000 * 10);
  }
}

TEST_CASE("thread pool serialises calls from several threads") {
  ThreadPool pool({.threads = 2});
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int call = 0; call < 300; ++call) pool.parallel_for(10, [&](int64_t task) { sum.fetch_add(task); });
    });
  }
  for (auto& t : callers) t.join();
  CHECK(sum.load() == 3 * 300 * 45);
}

TEST_CASE("split_range tiles [0, total) with aligned boundaries") {
  for (int64_t total : {0, 1, 5, 64, 1000, 5760}) {
    for (int64_t parts : {1, 2, 3, 7, 16}) {
      for (int64_t align : {1, 4, 16}) {
        CAPTURE(total);
        CAPTURE(parts);
        CAPTURE(align);
        int64_t expect_begin = 0;
        for (int64_t i = 0; i < parts; ++i) {
          const TaskRange r = split_range(total, parts, i, align);
          CHECK(r.begin == expect_begin);
          CHECK(r.end >= r.begin);
          CHECK((r.end == total || r.end % align == 0));
          expect_begin = r.end;
        }
        CHECK(expect_begin == total);
      }
    }
  }
}

TEST_CASE("topology queries agree with the OS") {
  // hwloc's physical cores are at most the logical CPUs the standard library sees.
  CHECK(physical_core_count() <= static_cast<int>(std::thread::hardware_concurrency()));
  // Linux lists the L3 of cpu0 in sysfs (e.g. "32768K"); the total over all L3s is at least that.
  std::ifstream l3("/sys/devices/system/cpu/cpu0/cache/index3/size");
  int64_t kib = 0;
  if (l3 >> kib) CHECK(last_level_cache_bytes() >= kib * 1024);
}

}  // namespace ossrun::cpu
