// End-to-end goldens on the GPU backend: the same transformers goldens and tolerances as the CPU engine
// (tests/support/golden.h), with prefill batches that take the GEMM paths (16 and 7 tokens) and decode
// through the CUDA graph, greedy continuations both from the returned logits and from the device sampler.
#include <doctest/doctest.h>

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
