// The small per-token GPU ops (gpu_kernels/rmsnorm, rope, router_topk, embedding) against their CPU references
// in src/engine on random inputs and odd sizes. Outputs are poisoned with NaN before each launch, so an
// unwritten element fails.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/embedding.cuh"
#include "gpu_kernels/rmsnorm.cuh"
#include "gpu_kernels/rope.cuh"
#include "gpu_kernels/router_topk.cuh"
#include "src/engine/ops.h"
#include "src/engine/rope.h"
#include "src/model/bf16.h"
#include "src/model/error.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;
using gpu::DeviceBuffer;

namespace {

std::vector<float> random_floats(size_t n, std::mt19937& rng, float amp = 1.0f) {
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<float> v(n);
  for (float& f : v) f = u(rng);
  return v;
}

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

template <typename T>
DeviceBuffer<T> poisoned(size_t n) {
  DeviceBuffer<T> b(n);
  OSSRUN_CUDA_CHECK(cudaMemset(b.get(), 0xff, b.bytes()));  // NaN for floats, -1 for ints
  return b;
}

}  // namespace

TEST_CASE("gpu rmsnorm_f32 / add_rmsnorm_f32: match engine::rmsnorm") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(3);
  const float eps = 1e-5f;
  for (int rows : {1, 3, 17}) {
    for (int hidden : {64, 200, 2880, 8192, 1}) {
      CAPTURE(rows);
      CAPTURE(hidden);
      std::vector<float> x = random_floats(static_cast<size_t>(rows) * hidden, rng, 3.0f);
      std::vector<float> delta = random_floats(x.size(), rng);
      std::vector<uint16_t> w(hidden);
      for (uint16_t& b : w) b = float_to_bf16(std::uniform_real_distribution<float>(0.5f, 2.0f)(rng));
      std::vector<float> want(x.size()), x_added(x.size()), want_added(x.size());
      for (size_t i = 0; i < x.size(); ++i) x_added[i] = x[i] + delta[i];
      for (int r = 0; r < rows; ++r) {
        engine::rmsnorm(&x[size_t(r) * hidden], w.data(), &want[size_t(r) * hidden], hidden, eps);
        engine::rmsnorm(&x_added[size_t(r) * hidden], w.data(), &want_added[size_t(r) * hidden], hidden, eps);
      }
      DeviceBuffer<float> x_d(x), delta_d(delta);
      DeviceBuffer<uint16_t> w_d(w);
      DeviceBuffer<float> y_d = poisoned<float>(x.size());
      gpu::rmsnorm_f32(x_d.get(), w_d.get(), y_d.get(), rows, hidden, eps, nullptr);
      test::check_close("rmsnorm y", y_d.download(), widen(want), test::max_abs(widen(want)), 1e-6);

      y_d = poisoned<float>(x.size());
      gpu::add_rmsnorm_f32(x_d.get(), delta_d.get(), w_d.get(), y_d.get(), rows, hidden, eps, nullptr);
      CHECK(x_d.download() == x_added);  // the residual add is a plain float add
      test::check_close("add_rmsnorm y", y_d.download(), widen(want_added), test::max_abs(widen(want_added)), 1e-6);

      // In place (y aliases x), as the CPU reference allows.
      DeviceBuffer<float> z_d(x);
      gpu::rmsnorm_f32(z_d.get(), w_d.get(), z_d.get(), rows, hidden, eps, nullptr);
      test::check_close("rmsnorm in place", z_d.download(), widen(want), test::max_abs(widen(want)), 1e-6);
    }
  }
}

TEST_CASE("gpu rope_apply_f32: matches engine::apply_rope with the YaRN tables") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(5);
  struct Case {
    int n, heads, kv_heads, head_dim;
  };
  for (const Case c : {Case{1, 64, 8, 64}, Case{3, 5, 1, 64}, Case{17, 4, 2, 2}, Case{2, 3, 0, 30}, Case{5, 0, 3, 128}}) {
    CAPTURE(c.n);
    CAPTURE(c.heads);
    CAPTURE(c.kv_heads);
    CAPTURE(c.head_dim);
    const int half = c.head_dim / 2, ctx = 4000;
    const engine::RopeFrequencies f = engine::rope_frequencies(RopeConfig{}, c.head_dim);
    std::vector<float> cos_t(size_t(ctx) * half), sin_t(size_t(ctx) * half);
    for (int p = 0; p < ctx; ++p) engine::rope_cos_sin(f, p, &cos_t[size_t(p) * half], &sin_t[size_t(p) * half]);
    std::vector<int32_t> pos(c.n);
    for (int32_t& p : pos) p = std::uniform_int_distribution<int32_t>(0, ctx - 1)(rng);
    pos[0] = ctx - 1;
    std::vector<float> q = random_floats(size_t(c.n) * c.heads * c.head_dim, rng, 2.0f);
    std::vector<float> k = random_floats(size_t(c.n) * c.kv_heads * c.head_dim, rng, 2.0f);
    std::vector<float> want_q = q, want_k = k;
    for (int t = 0; t < c.n; ++t) {
      const size_t row = size_t(pos[t]) * half;
      engine::apply_rope(&want_q[size_t(t) * c.heads * c.head_dim], c.heads, c.head_dim, &cos_t[row], &sin_t[row]);
      engine::apply_rope(&want_k[size_t(t) * c.kv_heads * c.head_dim], c.kv_heads, c.head_dim, &cos_t[row], &sin_t[row]);
    }
    DeviceBuffer<float> q_d(q), k_d(k), cos_d(cos_t), sin_d(sin_t);
    DeviceBuffer<int32_t> pos_d(pos);
    gpu::rope_apply_f32(q_d.get(), k_d.get(), c.n, c.heads, c.kv_heads, c.head_dim, cos_d.get(), sin_d.get(),
                        pos_d.get(), nullptr, ctx);
    test::check_close("q", q_d.download(), widen(want_q), 2.0, 1e-6);
    test::check_close("k", k_d.download(), widen(want_k), 2.0, 1e-6);
  }
}

TEST_CASE("gpu rope_apply_f32: a position outside the table makes that token's q and k NaN, nothing else") {
  if (!test::gpu_or_skip()) return;
  const int heads = 2, kv = 1, d = 8, ctx = 4;
  std::vector<float> q(3 * heads * d, 1.0f), k(3 * kv * d, 1.0f), cos_t(ctx * d / 2, 1.0f), sin_t(ctx * d / 2, 0.0f);
  DeviceBuffer<float> q_d(q), k_d(k), cos_d(cos_t), sin_d(sin_t);
  DeviceBuffer<int32_t> pos_d(std::vector<int32_t>{1, ctx, -1});
  gpu::rope_apply_f32(q_d.get(), k_d.get(), 3, heads, kv, d, cos_d.get(), sin_d.get(), pos_d.get(), nullptr, ctx);
  const std::vector<float> gq = q_d.download(), gk = k_d.download();
  for (int i = 0; i < heads * d; ++i) {
    CHECK(gq[i] == 1.0f);  // cos 1, sin 0: unchanged
    CHECK(std::isnan(gq[heads * d + i]));
    CHECK(std::isnan(gq[2 * heads * d + i]));
  }
  for (int i = 0; i < kv * d; ++i) {
    CHECK(gk[i] == 1.0f);
    CHECK(std::isnan(gk[kv * d + i]));
  }
}

TEST_CASE("gpu router_topk_softmax: the CPU's ids bit for bit, weights within 1e-6") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(9);
  for (int n : {1, 3, 17}) {
    for (int E : {1, 5, 32, 128, 256, 1000, 4096}) {
      for (int k : {1, 2, 3, 4, 5, 8, 32}) {
        if (k > E) continue;
        for (bool ties : {false, true}) {
          CAPTURE(n);
          CAPTURE(E);
          CAPTURE(k);
          CAPTURE(ties);
          std::vector<float> logits = random_floats(size_t(n) * E, rng, 4.0f);
          // Ties: few distinct values (and signed zeros, which the CPU's > treats as equal).
          if (ties)
            for (float& l : logits) l = l > 3.0f ? -0.0f : l < -3.0f ? 0.0f : std::round(l);
          std::vector<int32_t> want_ids(size_t(n) * k);
          std::vector<float> want_w(size_t(n) * k);
          for (int t = 0; t < n; ++t)
            engine::router_topk_softmax(&logits[size_t(t) * E], E, k, &want_ids[size_t(t) * k], &want_w[size_t(t) * k]);
          DeviceBuffer<float> logits_d(logits);
          DeviceBuffer<int32_t> ids_d = poisoned<int32_t>(want_ids.size());
          DeviceBuffer<float> w_d = poisoned<float>(want_w.size());
          gpu::router_topk_softmax(logits_d.get(), n, E, k, ids_d.get(), w_d.get(), nullptr);
          CHECK(ids_d.download() == want_ids);
          test::check_close("weights", w_d.download(), widen(want_w), 1.0, 1e-6);
        }
      }
    }
  }
}

TEST_CASE("gpu expert_choices_from_topk: slot lookup, identity, non-resident and bad ids") {
  if (!test::gpu_or_skip()) return;
  const std::vector<int32_t> ids{0, 3, 2, 5, -1, 7};
  const std::vector<float> w{0.5f, 0.25f, 0.125f, 0.0625f, 1.0f, 2.0f};
  const std::vector<int32_t> slot_of{4, -1, 0, 1, 3, 2};  // 6 experts
  DeviceBuffer<int32_t> ids_d(ids), slot_d(slot_of);
  DeviceBuffer<float> w_d(w);
  DeviceBuffer<gpu::ExpertChoice> ch_d(ids.size());
  auto check = [&](const std::vector<int32_t>& want_slots) {
    const std::vector<gpu::ExpertChoice> got = ch_d.download();
    for (size_t i = 0; i < ids.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].slot == want_slots[i]);
      CHECK(got[i].weight == w[i]);
    }
  };
  OSSRUN_CUDA_CHECK(cudaMemset(ch_d.get(), 0x7f, ch_d.bytes()));
  gpu::expert_choices_from_topk(ids_d.get(), w_d.get(), 6, slot_d.get(), ch_d.get(), nullptr, /*n_experts=*/6);
  check({4, 1, 0, 2, -1, -1});
  OSSRUN_CUDA_CHECK(cudaMemset(ch_d.get(), 0x7f, ch_d.bytes()));
  gpu::expert_choices_from_topk(ids_d.get(), w_d.get(), 6, nullptr, ch_d.get(), nullptr);
  check({0, 3, 2, 5, -1, 7});
}

TEST_CASE("gpu embedding_gather_bf16: rows widened exactly, ids outside the table give zeros") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(13);
  const int64_t vocab = 1000;
  for (int hidden : {64, 200, 2880, 1}) {
    CAPTURE(hidden);
    std::vector<uint16_t> table(size_t(vocab) * hidden);
    for (uint16_t& b : table) b = float_to_bf16(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng));
    const std::vector<int32_t> ids{5, 0, 999, -1, 1000, 5, 17};
    std::vector<float> want(ids.size() * hidden, 0.0f);
    for (size_t t = 0; t < ids.size(); ++t)
      if (ids[t] >= 0 && ids[t] < vocab)
        for (int i = 0; i < hidden; ++i) want[t * hidden + i] = bf16_to_float(table[size_t(ids[t]) * hidden + i]);
    DeviceBuffer<uint16_t> table_d(table);
    DeviceBuffer<int32_t> ids_d(ids);
    DeviceBuffer<float> out_d = poisoned<float>(want.size());
    gpu::embedding_gather_bf16(table_d.get(), vocab, hidden, ids_d.get(), static_cast<int>(ids.size()), out_d.get(), nullptr);
    CHECK(out_d.download() == want);
  }
}

TEST_CASE("gpu ops: sizes the kernels cannot take are rejected before any launch") {
  // Checked before any device access: these run without a GPU too.
  auto* f = reinterpret_cast<float*>(uintptr_t{0x1000});
  const auto* w = reinterpret_cast<const uint16_t*>(uintptr_t{0x2000});
  auto* i32 = reinterpret_cast<int32_t*>(uintptr_t{0x3000});
  auto* ch = reinterpret_cast<gpu::ExpertChoice*>(uintptr_t{0x4000});
  CHECK_THROWS_AS(gpu::rmsnorm_f32(f, w, f, 1, 0, 1e-5f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::rmsnorm_f32(f, w, f, -1, 64, 1e-5f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::add_rmsnorm_f32(f, nullptr, w, f, 1, 64, 1e-5f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::add_rmsnorm_f32(f, f, w, f, 1, -3, 1e-5f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::rope_apply_f32(f, f, 1, 64, 8, 63, f, f, i32, nullptr), InputError);  // odd head_dim
  CHECK_THROWS_AS(gpu::rope_apply_f32(f, f, 1, 64, 8, 0, f, f, i32, nullptr), InputError);
  CHECK_THROWS_AS(gpu::rope_apply_f32(f, f, -1, 64, 8, 64, f, f, i32, nullptr), InputError);
  CHECK_THROWS_AS(gpu::rope_apply_f32(f, f, 1, 64, 8, 64, f, f, i32, nullptr, -2), InputError);
  CHECK_THROWS_AS(gpu::router_topk_softmax(f, 1, 0, 1, i32, f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::router_topk_softmax(f, 1, 4, 5, i32, f, nullptr), InputError);  // k > E
  CHECK_THROWS_AS(gpu::router_topk_softmax(f, 1, 128, 33, i32, f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::router_topk_softmax(f, 1, 128, 0, i32, f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::router_topk_softmax(f, 1, gpu::kRouterMaxExperts + 1, 4, i32, f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::router_topk_softmax(f, -1, 32, 4, i32, f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::expert_choices_from_topk(i32, f, -1, nullptr, ch, nullptr), InputError);
  CHECK_THROWS_AS(gpu::expert_choices_from_topk(i32, f, 4, nullptr, ch, nullptr, -2), InputError);
  CHECK_THROWS_AS(gpu::embedding_gather_bf16(w, 0, 64, i32, 1, f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::embedding_gather_bf16(w, 10, 0, i32, 1, f, nullptr), InputError);
  CHECK_THROWS_AS(gpu::embedding_gather_bf16(w, 10, 64, i32, -1, f, nullptr), InputError);
}
