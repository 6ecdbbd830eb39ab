// The hybrid offload's pure bookkeeping (offload/residency.h, prefill_cost_model.h, expert_paging.h,
// ExpertCache::preload): slots never exceed the plan, experts are served only after their upload finished,
// cancelled uploads never become served, the residency follows a policy exactly over a long random run, the
// PCIe credit paces admissions, the prefill greedy against brute force, and the page-cache counters.
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "offload/expert_cache.h"
#include "offload/expert_paging.h"
#include "offload/prefill_cost_model.h"
#include "offload/residency.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
using namespace ossrun::offload;

TEST_CASE("offload residency: served only after the upload finished; eviction cancels an upload") {
  const std::vector<int> slots = {2, 0, 1};
  Residency r(4, slots);
  CHECK(r.total_slots() == 3);
  CHECK(r.slot_offset(2) == 2);
  const UploadTicket a = r.begin_upload(0, 3);
  CHECK(r.holds_slot(0, 3));
  CHECK(r.slot_of(0, 3) == -1);  // uploading: not served
  CHECK(r.uploading() == 1);
  CHECK(r.finish_upload(a));
  CHECK(r.slot_of(0, 3) == a.slot);
  CHECK(r.slot_of_expert(0)[3] == a.slot);
  CHECK(r.resident(0) == 1);

  const UploadTicket b = r.begin_upload(0, 1);
  CHECK(r.used(0) == 2);
  CHECK_THROWS_AS(r.begin_upload(0, 2), std::logic_error);  // layer full
  CHECK_THROWS_AS(r.begin_upload(1, 0), std::logic_error);  // no slots at all
  CHECK_THROWS_AS(r.begin_upload(0, 3), std::logic_error);  // already holds one
  CHECK(r.evict(0, 1) == b.slot);                            // cancelled in flight
  const UploadTicket c = r.begin_upload(0, 2);               // takes the same slot, next generation
  CHECK(c.slot == b.slot);
  CHECK_FALSE(r.finish_upload(b));  // the cancelled upload's completion changes nothing
  CHECK(r.slot_of(0, 1) == -1);
  CHECK(r.slot_of(0, 2) == -1);
  CHECK(r.finish_upload(c));
  CHECK(r.slot_of(0, 2) == c.slot);
  CHECK(r.evict(0, 3) == a.slot);
  CHECK(r.slot_of(0, 3) == -1);
  CHECK_THROWS_AS(r.evict(0, 3), std::logic_error);
  CHECK_THROWS_AS(r.slot_of(3, 0), std::out_of_range);
  CHECK_THROWS_AS(Residency(4, std::vector<int>{5}), std::invalid_argument);
}

TEST_CASE("offload residency: follows a policy over a random run; never past the slots") {
  constexpr int E = 32, k = 4, kLayers = 3;
  const std::vector<int> slots = {8, 3, 0};
  Residency r(E, slots);
  std::vector<std::unique_ptr<ExpertCache>> caches;
  for (int l = 0; l < kLayers; ++l)
    caches.push_back(make_expert_cache(PolicyKind::Router, E, slots[l], tuning_for(E, k), {}));
  std::mt19937 rng(9);
  std::vector<UploadTicket> in_flight;
  CacheDecision d;
  for (int step = 0; step < 2000; ++step) {
    for (int l = 0; l < kLayers; ++l) {
      // Skewed routing: low ids more likely.
      std::set<uint16_t> chosen;
      std::geometric_distribution<int> g(0.15);
      while (static_cast<int>(chosen.size()) < k) chosen.insert(static_cast<uint16_t>(g(rng) % E));
      const std::vector<uint16_t> routed(chosen.begin(), chosen.end());
      caches[static_cast<size_t>(l)]->step(routed, /*upload_budget=*/1, d);
      for (uint16_t e : d.evicted) r.evict(l, e);
      for (uint16_t e : d.admitted) in_flight.push_back(r.begin_upload(l, e));
      CHECK(r.used(l) <= slots[static_cast<size_t>(l)]);
      for (int e = 0; e < E; ++e) CHECK(r.holds_slot(l, e) == caches[static_cast<size_t>(l)]->resident(e));
    }
    // Uploads complete in FIFO order, a random number at a time.
    const size_t done = std::min(in_flight.size(), static_cast<size_t>(rng() % 3));
    for (size_t i = 0; i < done; ++i) r.finish_upload(in_flight[i]);
    in_flight.erase(in_flight.begin(), in_flight.begin() + static_cast<std::ptrdiff_t>(done));
    for (int l = 0; l < kLayers; ++l)
      for (int e = 0; e < E; ++e)
        if (r.slot_of(l, e) >= 0) CHECK(r.holds_slot(l, e));  // served implies held
  }
  for (const UploadTicket& t : in_flight) r.finish_upload(t);
  CHECK(r.uploading() == 0);
  CHECK(r.resident(0) == 8);  // the skew fills the slots
}

TEST_CASE("offload residency: warm start from saved shares; ExpertCache::preload") {
  const std::vector<std::vector<double>> share = {{0.1, 0.5, 0.0, 0.4}, {0.0, 0.0, 0.0, 0.0}};
  const std::vector<int> slots = {3, 2};
  const auto warm = warm_start_experts(share, slots);
  CHECK(warm[0] == std::vector<uint16_t>{1, 3, 0});  // by share; the 0-share expert is never placed
  CHECK(warm[1].empty());
  CHECK(warm_start_experts({}, slots)[0].empty());
  CHECK_THROWS_AS(warm_start_experts(share, std::vector<int>{1}), std::invalid_argument);

  auto cache = make_expert_cache(PolicyKind::Router, 4, 3, tuning_for(4, 2), share[0]);
  cache->preload(warm[0]);
  CHECK(cache->used() == 3);
  CHECK(cache->resident(1));
  CHECK_THROWS_AS(cache->preload(std::vector<uint16_t>{2}), std::invalid_argument);  // no slot left
  CacheDecision d;
  cache->step(std::vector<uint16_t>{1, 3}, 1, d);  // both hits
  CHECK(d.admitted.empty());
  auto lru = make_expert_cache(PolicyKind::Lru, 4, 2, tuning_for(4, 2), {});
  CHECK_THROWS_AS(lru->preload(std::vector<uint16_t>{1, 1}), std::invalid_argument);
}

TEST_CASE("offload residency: upload credit paces admissions by measured bandwidth") {
  UploadCredit c(/*bytes_per_second=*/1000.0, /*slice_bytes=*/100, /*max_slices=*/3);
  CHECK(c.available(10) == 0);
  c.elapse(0.25);  // 2.5 slices
  CHECK(c.available(10) == 2);
  CHECK(c.available(1) == 1);
  c.spend(2);
  CHECK(c.available(10) == 0);
  c.elapse(100);  // capped
  CHECK(c.available(10) == 3);
  CHECK_THROWS_AS(c.spend(4), std::logic_error);
  c.elapse(-1);
  CHECK(c.slices() == doctest::Approx(3.0));
  CHECK_THROWS_AS(UploadCredit(0, 100, 2), std::invalid_argument);
}

namespace {
double makespan_of(std::span<const PrefillExpert> ex, const HybridThroughput& t, const std::vector<PrefillSide>& side) {
  double cpu = 0, gpu = 0, up = 0;
  for (size_t i = 0; i < ex.size(); ++i) {
    const double m = static_cast<double>(ex[i].tokens);
    if (side[i] == PrefillSide::Cpu) {
      cpu += t.cpu_fixed_s + m * t.cpu_token_s;
    } else {
      gpu += t.gpu_fixed_s + m * t.gpu_token_s;
      if (side[i] == PrefillSide::GpuUpload) up += t.upload_s;
    }
  }
  return std::max(cpu, std::max(gpu, up));
}
}  // namespace

TEST_CASE("offload prefill cost model: residents on the GPU, heavy experts uploaded, near the brute-force optimum") {
  HybridThroughput t{.upload_s = 1.0, .cpu_fixed_s = 0.5, .cpu_token_s = 0.1, .gpu_fixed_s = 0.0, .gpu_token_s = 0.01,
                     .pcie_bytes_per_s = 1e9};
  // One token: uploading (1 s) takes longer than computing on the CPU (0.6 s).
  std::vector<PrefillExpert> light = {{0, 1, false}, {2, 3, true}};
  PrefillAssignment a = assign_prefill(light, t, 4);
  CHECK(a.side[0] == PrefillSide::Cpu);
  CHECK(a.side[1] == PrefillSide::GpuResident);
  // Two such experts: the CPU alone would take 1.2 s, so one goes up while the CPU runs the other.
  std::vector<PrefillExpert> two = {{0, 1, false}, {1, 1, false}};
  a = assign_prefill(two, t, 4);
  CHECK((a.side[0] == PrefillSide::GpuUpload) != (a.side[1] == PrefillSide::GpuUpload));
  CHECK(a.makespan_s() == doctest::Approx(1.0));
  // Many tokens: an upload pays for itself.
  std::vector<PrefillExpert> heavy = {{0, 100, false}, {1, 2, false}};
  a = assign_prefill(heavy, t, 4);
  CHECK(a.side[0] == PrefillSide::GpuUpload);
  CHECK(a.side[1] == PrefillSide::Cpu);
  CHECK(assign_prefill(heavy, t, 0).side[0] == PrefillSide::Cpu);  // no scratch slot: no upload
  CHECK(a.makespan_s() == doctest::Approx(makespan_of(heavy, t, a.side)));

  // Random batches: the greedy is within 1.5x of the best of all 2^n assignments.
  std::mt19937 rng(2);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<PrefillExpert> ex;
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) ex.push_back({i, 1 + static_cast<int64_t>(rng() % 60), rng() % 4 == 0});
    const PrefillAssignment g = assign_prefill(ex, t, n);
    double best = 1e300;
    for (unsigned mask = 0; mask < (1u << n); ++mask) {
      std::vector<PrefillSide> side(ex.size());
      for (int i = 0; i < n; ++i)
        side[i] = ex[i].resident ? PrefillSide::GpuResident : (mask >> i & 1) ? PrefillSide::GpuUpload : PrefillSide::Cpu;
      best = std::min(best, makespan_of(ex, t, side));
    }
    CHECK(g.makespan_s() == doctest::Approx(makespan_of(ex, t, g.side)));
    CHECK(g.makespan_s() <= 1.5 * best + 1e-12);
  }
  CHECK_THROWS_AS(assign_prefill(std::vector<PrefillExpert>{{0, 0, false}}, t, 1), std::invalid_argument);
}

TEST_CASE("offload prefill cost model: the throughput cache round-trips; bad files read as absent") {
  test::TempDir dir;
  const std::filesystem::path file = throughput_cache_path(dir.path(), "NVIDIA H100/8 threads/2880x2880 mxfp4");
  CHECK(file.parent_path() == dir.path() / "hybrid_probe");
  CHECK(file.filename() == "NVIDIA_H100_8_threads_2880x2880_mxfp4.json");
  CHECK_FALSE(load_throughput(file).has_value());
  const HybridThroughput t{.upload_s = 1e-3, .cpu_fixed_s = 2e-3, .cpu_token_s = 3e-5, .gpu_fixed_s = 0,
                           .gpu_token_s = 1e-5, .pcie_bytes_per_s = 2.5e10};
  save_throughput(file, t);
  CHECK(load_throughput(file) == t);
  std::ofstream(file) << "{\"format\": \"ossrun hybrid throughput\", \"version\": 1, \"upload_s\": -1}";
  CHECK_FALSE(load_throughput(file).has_value());
  std::ofstream(file) << "not json";
  CHECK_FALSE(load_throughput(file).has_value());
}

TEST_CASE("offload expert paging: mincore counts pages not in memory; hints are harmless") {
  const long page = sysconf(_SC_PAGESIZE);
  const size_t bytes = static_cast<size_t>(page) * 8;
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(m != MAP_FAILED);
  auto* p = static_cast<std::byte*>(m);
  ExpertPaging paging;
  const ByteRange all{p, bytes};
  CHECK(paging.count_missing({&all, 1}) == bytes);  // never touched: nothing resident
  for (int i = 0; i < 3; ++i) p[static_cast<size_t>(i) * static_cast<size_t>(page)] = std::byte{1};
  CHECK(paging.count_missing({&all, 1}) == bytes - 3 * static_cast<size_t>(page));
  CHECK(paging.missing_bytes() == 2 * bytes - 3 * static_cast<size_t>(page));
  const ByteRange odd{p + 10, static_cast<size_t>(page)};  // unaligned: two pages, the first resident
  paging.will_need({&odd, 1});
  paging.cold({&odd, 1});
  CHECK(p[0] == std::byte{1});  // COLD never drops contents
  munmap(m, bytes);
  CHECK(paging.disk_read_bytes() < (uint64_t{1} << 40));
}
