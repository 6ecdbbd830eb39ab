// The small per-token operations of the engine (src/engine/ops.h): RMSNorm, router top-k + softmax, SwiGLU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "src/engine/ops.h"
#include "src/model/bf16.h"

using namespace ossrun;
using namespace ossrun::engine;

TEST_CASE("rmsnorm: x / sqrt(mean(x^2) + eps) * w against float64, in place too") {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  const int64_t n = 96;
  std::vector<float> x(n), y(n);
  std::vector<uint16_t> w(n);
  for (int64_t i = 0; i < n; ++i) x[i] = nd(rng), w[i] = float_to_bf16(1.0f + 0.1f * nd(rng));
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double inv = 1 / std::sqrt(ss / n + 1e-5);
  rmsnorm(x.data(), w.data(), y.data(), n, 1e-5f);
  for (int64_t i = 0; i < n; ++i) CHECK(y[i] == doctest::Approx(x[i] * inv * bf16_to_float(w[i])).epsilon(1e-6));
  rmsnorm(x.data(), w.data(), x.data(), n, 1e-5f);
  CHECK(x == y);
}

TEST_CASE("router_topk_softmax: k largest descending, ties to the lowest index, softmax over the k") {
  const float logits[] = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f, 0.5f, 2.0f, 9.0f};
  int32_t ids[4];
  float w[4];
  router_topk_softmax(logits, 8, 4, ids, w);
  CHECK(ids[0] == 7);
  CHECK(ids[1] == 1);  // 3.0 at 1 and 3: the lower index first
  CHECK(ids[2] == 3);
  CHECK(ids[3] == 4);  // 2.0 at 4 and 6: 4 wins the last place
  double denom = 0;
  for (int i : {7, 1, 3, 4}) denom += std::exp(double(logits[i]));
  for (int i = 0; i < 4; ++i) CHECK(w[i] == doctest::Approx(std::exp(double(logits[ids[i]])) / denom).epsilon(1e-6));

  const float all_equal[] = {1, 1, 1, 1, 1, 1};
  router_topk_softmax(all_equal, 6, 3, ids, w);
  CHECK(ids[0] == 0);
  CHECK(ids[1] == 1);
  CHECK(ids[2] == 2);
  CHECK(w[0] == doctest::Approx(1.0 / 3));

  // Random rows against a sort by (logit desc, index asc).
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> small(-3, 3);  // many ties
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> l(32);
    for (float& v : l) v = float(small(rng));
    std::vector<int32_t> order(32);
    for (int i = 0; i < 32; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
    router_topk_softmax(l.data(), 32, 4, ids, w);
    for (int i = 0; i < 4; ++i) CHECK(ids[i] == order[i]);
  }
}

TEST_CASE("swiglu: gate clamped above only, up clamped both sides, +1 on up") {
  auto ref = [](double g, double u) {
    g = std::min(g, 7.0);
    u = std::clamp(u, -7.0, 7.0);
    return g / (1 + std::exp(-1.702 * g)) * (u + 1);
  };
  for (float g : {-20.0f, -3.0f, -0.5f, 0.0f, 0.7f, 6.9f, 7.0f, 12.0f})
    for (float u : {-12.0f, -7.0f, -1.0f, 0.0f, 2.5f, 7.0f, 30.0f}) {
      INFO("gate " << g << " up " << u);
      CHECK(swiglu(g, u, 1.702f, 7.0f) == doctest::Approx(ref(g, u)).epsilon(1e-6).scale(1e-30));
    }
  CHECK(swiglu(-20.0f, 0.0f, 1.702f, 7.0f) < 0);           // no lower clamp on the gate
  CHECK(swiglu(1.0f, -1.0f, 1.702f, 7.0f) == 0.0f);        // up + 1 = 0
}
