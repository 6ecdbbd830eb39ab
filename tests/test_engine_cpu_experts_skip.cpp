// CpuExperts with skipped choices (kSkippedExpert = -1, the hybrid offload's "served on the GPU"): the result
// equals the same batch with the skipped choices' weights set to 0, in decode (one token) and in a grouped
// batch on both paths (matvec kernels, oneDNN matmuls), and a token whose choices are all skipped gets zeros.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "src/engine/cpu_experts.h"
#include "src/engine/linear.h"
#include "src/engine/parallel.h"
#include "src/model/checkpoint.h"
#include "tests/support/temp_dir.h"
#include "tests/test_engine_checkpoints.h"

using namespace ossrun;

namespace {

struct Routing {
  std::vector<int32_t> ids;    // (n, k)
  std::vector<float> weights;  // (n, k)
};

// Distinct random ids per token, random positive weights.
Routing random_routing(int64_t n, int k, int experts, std::mt19937& rng) {
  Routing r;
  std::uniform_real_distribution<float> w(0.05f, 1.0f);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<int32_t> all(static_cast<size_t>(experts));
    for (int e = 0; e < experts; ++e) all[static_cast<size_t>(e)] = e;
    std::shuffle(all.begin(), all.end(), rng);
    for (int i = 0; i < k; ++i) {
      r.ids.push_back(all[static_cast<size_t>(i)]);
      r.weights.push_back(w(rng));
    }
  }
  return r;
}

std::vector<float> run(engine::CpuExperts& experts, int layer, int64_t n, const std::vector<float>& x, const Routing& r,
                       int64_t H) {
  std::vector<float> out(static_cast<size_t>(n * H), NAN);
  experts.run({.layer = layer, .n = n, .x = x.data(), .ids = r.ids.data(), .weights = r.weights.data(),
               .out = out.data()});
  return out;
}

void check_near(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double scale = 1e-6;
  for (float v : want) scale = std::fmax(scale, std::fabs(v));
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= 1e-5 * scale)) ++bad;
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("engine cpu_experts: skipped ids (-1) contribute nothing, decode and grouped batches") {
  test::TempDir dir;
  const ModelConfig c = test::write_tiny_checkpoint(dir.path(), ExpertFormat::MXFP4, 17);
  const auto ck = Checkpoint::open(dir.path());
  const int64_t H = c.hidden_size, E = c.num_local_experts;
  const int k = static_cast<int>(c.num_experts_per_tok);
  engine::Workers workers(2);
  constexpr int64_t kMaxTokens = 64;
  const int64_t widest = std::max(H, 2 * c.intermediate_size);
  engine::SplitMatmul matmul(kMaxTokens * widest, kMaxTokens * widest);
  engine::CpuExperts experts(*ck, {&cpu::default_kernels(), &workers, &matmul}, kMaxTokens);

  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::bernoulli_distribution skip(0.4);
  for (int64_t n : {int64_t{1}, int64_t{5}, kMaxTokens}) {  // decode, grouped matvec, grouped matmul groups
    CAPTURE(n);
    std::vector<float> x(static_cast<size_t>(n * H));
    for (float& v : x) v = u(rng);
    const Routing full = random_routing(n, k, static_cast<int>(E), rng);
    Routing skipped = full, zeroed = full;
    for (size_t p = 0; p < full.ids.size(); ++p)
      if (skip(rng)) skipped.ids[p] = engine::kSkippedExpert, zeroed.weights[p] = 0.0f;
    check_near(run(experts, 1, n, x, skipped, H), run(experts, 1, n, x, zeroed, H));

    // Every choice skipped: zeros.
    Routing none = full;
    for (int32_t& id : none.ids) id = engine::kSkippedExpert;
    const std::vector<float> out = run(experts, 2, n, x, none, H);
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == 0.0f; }));
  }
}
