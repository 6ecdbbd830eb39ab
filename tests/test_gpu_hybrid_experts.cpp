// HybridExperts (src/gpu/hybrid_experts.cuh) on the tiny synthetic checkpoint (3 layers, H 256, I 192, 8 experts
// top-4): the residual update equals CpuExperts' (the CPU engine's, itself checked against a float64 reference)
// within 1e-5 relative with 0%, ~30% and 100% of the experts on the GPU, in decode and in prefill with the
// cost model forced either way (1e-4 with the prefill GEMM, whose split-bf16 inputs its own tests allow); budgets are respected and shrink the slots; residency never exceeds the slots;
// on a skewed routing sequence uploads happen and the hit rate rises; statistics saved at the end warm the
// next instance; the trace records every token; the probe caches its figures.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "offload/router_stats_io.h"
#include "offload/trace.h"
#include "src/engine/cpu_experts.h"
#include "src/engine/linear.h"
#include "src/engine/parallel.h"
#include "src/gpu/hybrid_experts.cuh"
#include "src/model/checkpoint.h"
#include "src/model/error.h"
#include "tests/support/gpu_test.h"
#include "tests/support/temp_dir.h"
#include "tests/test_engine_checkpoints.h"

using namespace ossrun;
using gpu::DeviceBuffer;
using gpu::HybridExperts;
using gpu::HybridOptions;

namespace {

constexpr int64_t kMaxTokens = 48;

// Forces the prefill cost model: uploads cheap and the GPU fast (every expert uploaded), or the reverse.
offload::HybridThroughput forced(bool upload) {
  offload::HybridThroughput t{.upload_s = 1e-6, .cpu_fixed_s = 1.0, .cpu_token_s = 1.0, .gpu_fixed_s = 0,
                              .gpu_token_s = 1e-6, .pcie_bytes_per_s = 1e12};
  if (!upload) t = {.upload_s = 1.0, .cpu_fixed_s = 1e-6, .cpu_token_s = 1e-6, .gpu_fixed_s = 1.0, .gpu_token_s = 1.0,
                    .pcie_bytes_per_s = 1e12};
  return t;
}

offload::MemoryPlan plan_with_slots(const ModelConfig& c, std::vector<int> slots) {
  offload::MemoryPlan p;
  p.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (size_t l = 0; l < slots.size(); ++l) p.layers[l].gpu_slots = slots[l];
  p.gpu.experts = uint64_t{1} << 30;
  return p;
}

struct Fixture {
  test::TempDir dir;
  ModelConfig config;
  std::unique_ptr<Checkpoint> ck;
  engine::Workers workers{2};
  std::unique_ptr<engine::SplitMatmul> matmul;
  std::unique_ptr<engine::CpuExperts> cpu;
  cudaStream_t stream = nullptr;
  std::mt19937 rng{11};

  Fixture() {
    config = test::write_tiny_checkpoint(dir.path(), ExpertFormat::MXFP4, 23);
    ck = Checkpoint::open(dir.path());
    const int64_t widest = std::max(config.hidden_size, 2 * config.intermediate_size);
    matmul = std::make_unique<engine::SplitMatmul>(64 * widest, 64 * widest);
    cpu = std::make_unique<engine::CpuExperts>(*ck, engine::CpuContext{&cpu::default_kernels(), &workers, matmul.get()},
                                               kMaxTokens);
    OSSRUN_CUDA_CHECK(cudaStreamCreate(&stream));
  }
  ~Fixture() { OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(stream)); }

  HybridOptions options(bool upload_in_prefill) const {
    HybridOptions o;
    o.threads = 2;
    o.max_tokens = kMaxTokens;
    o.vram_budget = uint64_t{256} << 20;
    o.paging = gpu::Paging::Off;
    o.cache_dir = dir.path() / "cache";
    o.throughput = forced(upload_in_prefill);
    return o;
  }

  // One batch through the hybrid experts and through CpuExperts; returns the largest relative difference.
  double compare(HybridExperts& h, int layer, int64_t n, const std::vector<int32_t>& ids,
                 const std::vector<float>& weights) {
    const int64_t H = config.hidden_size;
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * H)), residual(static_cast<size_t>(n * H));
    for (float& v : x) v = u(rng);
    for (float& v : residual) v = u(rng);
    DeviceBuffer<float> x_d(x), r_d(residual);
    DeviceBuffer<int32_t> ids_d(ids);
    DeviceBuffer<float> w_d(weights);
    h.run({.layer = layer, .n = static_cast<int>(n), .x = x_d.get(), .ids = ids_d.get(), .weights = w_d.get(),
           .residual = r_d.get(), .stream = stream});
    OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream));
    const std::vector<float> got = r_d.download();
    std::vector<float> moe(static_cast<size_t>(n * H));
    cpu->run({.layer = layer, .n = n, .x = x.data(), .ids = ids.data(), .weights = weights.data(), .out = moe.data()});
    double scale = 1e-30, worst = 0;
    for (size_t i = 0; i < got.size(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(residual[i]) + moe[i]));
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(got[i] - (static_cast<double>(residual[i]) + moe[i])) / scale);
    return worst;
  }

  // n tokens of distinct random ids (skewed toward low ids when `skew`) with softmax weights.
  void route(int64_t n, bool skew, std::vector<int32_t>& ids, std::vector<float>& weights) {
    const int E = static_cast<int>(config.num_local_experts), k = static_cast<int>(config.num_experts_per_tok);
    ids.clear();
    weights.clear();
    std::geometric_distribution<int> g(0.6);
    std::normal_distribution<float> logit(0.0f, 1.0f);
    for (int64_t t = 0; t < n; ++t) {
      std::vector<int32_t> chosen;
      while (static_cast<int>(chosen.size()) < k) {
        const int32_t e = skew ? static_cast<int32_t>(g(rng) % E) : static_cast<int32_t>(rng() % E);
        if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
      }
      float sum = 0;
      std::vector<float> w(static_cast<size_t>(k));
      for (float& v : w) sum += (v = std::exp(logit(rng)));
      for (int i = 0; i < k; ++i) {
        ids.push_back(chosen[static_cast<size_t>(i)]);
        weights.push_back(w[static_cast<size_t>(i)] / sum);
      }
    }
  }
};

constexpr double kRtol = 1e-5;
constexpr double kGemmRtol = 1e-4;

}  // namespace

TEST_CASE("gpu hybrid_experts: 0%, ~30% and 100% of the experts on the GPU match CpuExperts, decode and prefill") {
  if (!test::gpu_or_skip()) return;
  Fixture f;
  const std::vector<std::vector<int>> placements = {{0, 0, 0}, {2, 3, 2}, {8, 8, 8}};
  for (const auto& slots : placements) {
    for (bool upload : {false, true})
    for (gpu::PrefillKernel kernel : {gpu::PrefillKernel::Matvec, gpu::PrefillKernel::Gemm}) {
      CAPTURE(slots[1]);
      CAPTURE(upload);
      CAPTURE(static_cast<int>(kernel));
      HybridOptions o = f.options(upload);
      o.prefill_kernel = kernel;
      // The GEMM splits x and the activations into bf16 hi + lo parts: its own tests allow 1e-4.
      const double prefill_rtol = kernel == gpu::PrefillKernel::Gemm ? kGemmRtol : kRtol;
      o.fill_without_stats = true;  // the first experts of each layer resident from the start
      HybridExperts h(*f.ck, plan_with_slots(f.config, slots), o);
      for (int l = 0; l < 3; ++l) CHECK(h.resident(l) == slots[static_cast<size_t>(l)]);
      std::vector<int32_t> ids;
      std::vector<float> weights;
      for (int token = 0; token < 6; ++token)
        for (int l = 0; l < 3; ++l) {
          f.route(1, false, ids, weights);
          CHECK(f.compare(h, l, 1, ids, weights) <= kRtol);
        }
      for (int64_t n : {int64_t{2}, int64_t{37}, kMaxTokens})
        for (int l = 0; l < 3; ++l) {
          CAPTURE(n);
          f.route(n, false, ids, weights);
          CHECK(f.compare(h, l, n, ids, weights) <= prefill_rtol);
        }
      const gpu::HybridCounters c = h.counters();
      CHECK(c.expert_calls == (6 * 3 + 3 * (2 + 37 + kMaxTokens)) * 4);
      if (slots[0] == 0 && !upload) CHECK(c.expert_calls_gpu == 0);
      if (slots[0] == 0 && upload) CHECK(c.expert_calls_gpu == 3 * (2 + 37 + kMaxTokens) * 4);  // prefill: all uploaded
      if (slots[0] == 8) CHECK(c.expert_calls_gpu == c.expert_calls);
      CHECK(h.device_bytes() <= o.vram_budget);
    }
  }
}

TEST_CASE("gpu hybrid_experts: a VRAM budget shrinks the slots and is never exceeded; RAM budget refused") {
  if (!test::gpu_or_skip()) return;
  Fixture f;
  HybridOptions o = f.options(false);
  uint64_t full = 0;
  {
    HybridExperts all(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o);
    full = all.device_bytes();
    CHECK(all.slots(0) + all.slots(1) + all.slots(2) == 24);
  }
  const uint64_t stride = gpu::SlotLayout::of(f.ck->expert(0, 0)).stride;
  for (uint64_t less : {uint64_t{1}, 5 * stride, full / 2}) {
    CAPTURE(less);
    o.vram_budget = full - less;
    HybridExperts h(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o);
    CHECK(h.device_bytes() <= o.vram_budget);
    CHECK(h.slots(0) + h.slots(1) + h.slots(2) + h.scratch_slots() < 24 + 2);
  }
  o.vram_budget = 1024;  // not even the exchange buffers
  CHECK_THROWS_AS(HybridExperts(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o), InputError);
  o.vram_budget = full;
  o.ram_budget = 4096;
  CHECK_THROWS_AS(HybridExperts(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o), InputError);
  o.ram_budget = uint64_t{1} << 30;
  HybridExperts h(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o);
  CHECK(h.host_bytes() <= o.ram_budget);
  CHECK(gpu::parse_hybrid_placement("static-layers") == gpu::HybridPlacement::StaticLayers);
  CHECK_THROWS_AS(gpu::parse_hybrid_placement("layers"), InputError);
  o.policy = "belady";
  CHECK_THROWS_AS(HybridExperts(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o), InputError);
}

TEST_CASE("gpu hybrid_experts: uploads happen and the hit rate rises on skewed routing; slots never exceeded") {
  if (!test::gpu_or_skip()) return;
  Fixture f;
  HybridOptions o = f.options(false);
  o.fill_without_stats = false;  // start cold
  o.trace = f.dir.path() / "routing.osstrace";
  HybridExperts h(*f.ck, plan_with_slots(f.config, {2, 2, 2}), o);
  CHECK(h.resident(0) == 0);
  std::vector<int32_t> ids;
  std::vector<float> weights;
  std::vector<uint16_t> routed_all;
  uint64_t gpu_first = 0, gpu_last = 0, calls_first = 0, calls_last = 0;
  constexpr int kTokens = 120;
  for (int token = 0; token < kTokens; ++token) {
    const uint64_t c0 = h.expert_calls(), g0 = h.expert_calls_gpu();
    for (int l = 0; l < 3; ++l) {
      f.route(1, true, ids, weights);
      for (int32_t id : ids) routed_all.push_back(static_cast<uint16_t>(id));
      CHECK(f.compare(h, l, 1, ids, weights) <= kRtol);
      CHECK(h.resident(l) <= h.slots(l));
    }
    if (token < 20) gpu_first += h.expert_calls_gpu() - g0, calls_first += h.expert_calls() - c0;
    if (token >= kTokens - 20) gpu_last += h.expert_calls_gpu() - g0, calls_last += h.expert_calls() - c0;
  }
  h.drain_uploads();
  const gpu::HybridCounters c = h.counters();
  CHECK(c.uploads > 0);
  CHECK(c.tokens == kTokens);
  for (int l = 0; l < 3; ++l) CHECK(h.resident(l) == 2);
  const double first = static_cast<double>(gpu_first) / calls_first, last = static_cast<double>(gpu_last) / calls_last;
  INFO("hit rate first 20 tokens " << first << ", last 20 " << last);
  CHECK(last > first);
  CHECK(last > 0.3);  // experts 0 and 1 are in most tokens' top-4
  for (const gpu::HandoffStats& s : h.handoff()) CHECK(s.count > 0);

  h.finish();
  const offload::Trace trace = offload::read_trace(o.trace);
  REQUIRE(trace.tokens() == kTokens);
  CHECK(trace.raw() == routed_all);
}

TEST_CASE("gpu hybrid_experts: statistics saved at the end warm the next run's slots") {
  if (!test::gpu_or_skip()) return;
  Fixture f;
  HybridOptions o = f.options(false);
  o.fill_without_stats = false;
  o.stats_model_dir = f.dir.path();
  std::vector<int32_t> ids;
  std::vector<float> weights;
  {
    HybridExperts h(*f.ck, plan_with_slots(f.config, {0, 0, 0}), o);
    for (int token = 0; token < 50; ++token)
      for (int l = 0; l < 3; ++l) {
        f.route(1, true, ids, weights);
        f.compare(h, l, 1, ids, weights);
      }
  }  // saved here
  const auto loaded = offload::load_router_stats(offload::model_dir_stats_path(f.dir.path()), 3, 8);
  REQUIRE(loaded.stats.has_value());
  CHECK(loaded.stats->tokens() == 50);
  HybridExperts warm(*f.ck, plan_with_slots(f.config, {2, 2, 2}), o);
  for (int l = 0; l < 3; ++l) {
    CHECK(warm.resident(l) == 2);
    // The two most routed experts of the layer are resident.
    std::vector<int> order(8);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return loaded.stats->count(l, a) > loaded.stats->count(l, b); });
    f.route(1, false, ids, weights);
    ids = {order[0], order[1], order[2], order[3]};
    const uint64_t g0 = warm.expert_calls_gpu();
    CHECK(f.compare(warm, l, 1, ids, weights) <= kRtol);
    CHECK(warm.expert_calls_gpu() - g0 == 2);
    // The device mirror (refreshed at the start of each run) shows the same two, and only them.
    std::vector<int32_t> mirror(8);
    OSSRUN_CUDA_CHECK(cudaMemcpy(mirror.data(), warm.slot_of_expert_device(l), 8 * sizeof(int32_t), cudaMemcpyDeviceToHost));
    for (int e = 0; e < 8; ++e) CHECK((mirror[static_cast<size_t>(e)] >= 0) == (e == order[0] || e == order[1]));
  }
}

TEST_CASE("gpu hybrid_experts: the start-up probe measures and caches its figures") {
  if (!test::gpu_or_skip()) return;
  Fixture f;
  HybridOptions o = f.options(false);
  o.throughput.reset();
  HybridExperts h(*f.ck, plan_with_slots(f.config, {1, 1, 1}), o);
  const offload::HybridThroughput t = h.throughput();
  CHECK(t.pcie_bytes_per_s > 1e8);
  CHECK(t.upload_s > 0);
  CHECK(t.cpu_fixed_s + t.cpu_token_s > 0);
  CHECK(t.gpu_token_s > 0);
  CHECK(std::filesystem::exists(o.cache_dir / "hybrid_probe"));
  HybridExperts again(*f.ck, plan_with_slots(f.config, {1, 1, 1}), o);
  CHECK(again.throughput() == t);  // from the cache
}

TEST_CASE("gpu hybrid_experts: the benchmark's placements (cpu-only, static-layers) at equal VRAM") {
  if (!test::gpu_or_skip()) return;
  Fixture f;
  HybridOptions o = f.options(/*upload_in_prefill=*/true);
  const uint64_t stride = gpu::SlotLayout::of(f.ck->expert(0, 0)).stride;
  {
    o.placement = gpu::HybridPlacement::Cache;
    o.scratch_slots = 0;
    HybridExperts probe(*f.ck, plan_with_slots(f.config, {0, 0, 0}), o);
    // Room for the workspaces and 1.5 layers of experts: static-layers puts the last layer on the GPU.
    o.vram_budget = probe.device_bytes() + 12 * stride + 24 * (sizeof(gpu::ExpertSlotMxfp4));
  }
  std::vector<int32_t> ids;
  std::vector<float> weights;
  o.placement = gpu::HybridPlacement::StaticLayers;
  HybridExperts layers(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o);  // the plan's slots are ignored
  CHECK(layers.slots(0) == 0);
  CHECK(layers.slots(1) == 0);
  CHECK(layers.slots(2) == 8);
  CHECK(layers.resident(2) == 8);
  CHECK(layers.device_bytes() <= o.vram_budget);
  o.placement = gpu::HybridPlacement::CpuOnly;
  HybridExperts cpu_only(*f.ck, plan_with_slots(f.config, {8, 8, 8}), o);
  CHECK(cpu_only.slots(0) + cpu_only.slots(1) + cpu_only.slots(2) + cpu_only.scratch_slots() == 0);
  for (int l = 0; l < 3; ++l)
    for (int64_t n : {int64_t{1}, int64_t{20}}) {
      f.route(n, true, ids, weights);
      CHECK(f.compare(layers, l, n, ids, weights) <= (n > 1 ? kGemmRtol : kRtol));
      CHECK(f.compare(cpu_only, l, n, ids, weights) <= kRtol);
    }
  CHECK(cpu_only.expert_calls_gpu() == 0);
  CHECK(layers.expert_calls_gpu() == 21 * 4);  // the last layer's, all of them
  CHECK(layers.counters().uploads == 8);        // the warm start only: nothing moves
}
