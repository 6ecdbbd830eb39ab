// End-to-end goldens on the GPU backend: the same transformers goldens and tolerances as the CPU engine
// (tests/support/golden.h), with prefill batches that take the GEMM paths (16 and 7 tokens) and decode
// through the CUDA graph, greedy continuations both from the returned logits and from the device sampler.
#include <doctest/doctest.h>

#include <algorithm>

#include "offload/memory_plan.h"
#include "src/engine/session.h"
#include "src/gpu/gpu_backend.h"
#include "src/model/error.h"
#include "tests/support/golden.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;

TEST_CASE("gpu engine goldens: transformers' logits and greedy continuations on the GPU") {
  if (!test::gpu_or_skip()) return;
  const auto files = test::golden_files();
  REQUIRE_MESSAGE(!files.empty(), "no tests/goldens/<name>/golden.json: the end-to-end check has nothing to compare");
  int checked = 0;
  for (const auto& f : files) {
    const test::Golden g = test::load_golden(f);
    test::TempDir dir("ossrun-golden");
    auto ck = test::golden_checkpoint(g, dir);
    const int64_t ctx = static_cast<int64_t>(g.prompt.size() + g.greedy.size()) + 1;
    if (ck->config().expert_format != ExpertFormat::MXFP4) {
      // bf16 experts stay on the CPU: Auto says so, and asking for the GPU is a clear error.
      engine::Session cpu(*ck, {.ctx = ctx, .backend = engine::Backend::Auto});
      CHECK(cpu.describe().rfind("CPU", 0) == 0);
      CHECK_THROWS_AS(engine::Session(*ck, {.ctx = ctx, .backend = engine::Backend::Gpu}), InputError);
      continue;
    }
    for (int64_t batch : {16, 7}) {
      for (bool sample_in_session : {false, true}) {
        INFO(g.name << ", prefill batch " << batch << (sample_in_session ? ", device sampler" : ", host argmax"));
        engine::Session s(*ck, {.ctx = ctx, .prefill_batch = batch, .backend = engine::Backend::Gpu});
        REQUIRE(s.describe().rfind("GPU", 0) == 0);
        const double worst = test::check_session_against_golden(s, g, sample_in_session);
        MESSAGE(g.name << " GPU, batch " << batch << ": max relative logit error " << worst);
        const engine::SessionReport r = s.report();
        CHECK(r.expert_calls > 0);
        CHECK(r.expert_calls_gpu == r.expert_calls);
        CHECK(r.vram_bytes > 0);
      }
    }
    ++checked;
  }
  CHECK(checked >= 2);
}

namespace {

// The smallest VRAM budget whose plan gives at least `share` of all the experts a GPU slot (plan_memory
// throws below the dense part's needs, so the search starts at one slice and steps up by slices).
uint64_t vram_for_expert_share(const ModelConfig& c, int64_t ctx, int64_t batch, double share) {
  offload::PlanRequest r{.config = c, .vram_budget = 0, .ram_budget = uint64_t{64} << 30, .context = ctx, .prefill_chunk = batch};
  const double wanted = share * static_cast<double>(c.num_hidden_layers * c.num_local_experts);
  for (uint64_t step = uint64_t{1} << 16, vram = step;; vram += step) {
    r.vram_budget = vram;
    try {
      const offload::MemoryPlan plan = offload::plan_memory(r);
      if (plan.gpu_slots() >= wanted) return vram;
      step = std::max<uint64_t>(plan.expert_slice_bytes / 2, 1 << 16);
    } catch (const InputError&) {
    }
  }
}

}  // namespace

TEST_CASE("gpu hybrid engine goldens: none, about 30% and nearly all of the experts on the GPU, the rest on the CPU") {
  if (!test::gpu_or_skip()) return;
  int checked = 0;
  for (const auto& f : test::golden_files()) {
    const test::Golden g = test::load_golden(f);
    test::TempDir dir("ossrun-golden");
    auto ck = test::golden_checkpoint(g, dir);
    if (ck->config().expert_format != ExpertFormat::MXFP4) continue;
    const int64_t ctx = static_cast<int64_t>(g.prompt.size() + g.greedy.size()) + 1, batch = 16;
    struct Budget {
      const char* name;
      engine::SessionOptions opt;
    };
    const Budget budgets[] = {
        {"0% (cpu-only placement)", {.ctx = ctx, .prefill_batch = batch, .backend = engine::Backend::Gpu, .expert_placement = "cpu-only"}},
        {"about 30% (router cache)",
         {.ctx = ctx, .prefill_batch = batch, .backend = engine::Backend::Gpu,
          .vram_budget = vram_for_expert_share(ck->config(), ctx, batch, 0.3)}},
        // A trace makes the offload record routing, so even a model that fits runs through HybridExperts (which
        // keeps a few slots back for its prefill scratch: nearly all experts, not all).
        {"nearly all (router cache, tracing)",
         {.ctx = ctx, .prefill_batch = batch, .backend = engine::Backend::Gpu, .trace = dir.path() / "routing.trace"}},
    };
    for (const Budget& b : budgets) {
      INFO(g.name << ", " << b.name);
      engine::Session s(*ck, b.opt);
      REQUIRE(s.describe().find("on the CPU") != std::string::npos);  // the hybrid offload, not the resident experts
      const double worst = test::check_session_against_golden(s, g, true);
      const engine::SessionReport r = s.report();
      MESSAGE(g.name << " hybrid, " << b.name << ": max relative logit error " << worst << ", " << r.expert_calls_gpu
                     << " of " << r.expert_calls << " expert calls on the GPU; " << s.describe());
      CHECK(r.expert_calls > 0);
    }
    ++checked;
  }
  CHECK(checked >= 2);
}
