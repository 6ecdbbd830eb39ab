// bf16_gemm (gpu_kernels/) against a float64 reference: odd n and row counts, every tile shape, with and
// without bias, inputs spanning 12 binades (so that the split of x into bf16 hi + lo matters), outputs
// NaN-poisoned before the launch with a guard past the end. Prints the largest error measured, relative to
// sum |w x| + |bias| of the element and to the output's largest magnitude.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gpu_kernels/bf16_gemm.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "src/model/bf16.h"
#include "src/model/error.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;
using gpu::Bf16GemmTile;
using gpu::DeviceBuffer;

namespace {

// Error allowed relative to sum |w x| + |bias|: the split carries x to 2^-16 and fp32 accumulation adds less.
constexpr double kRtol = 1e-4;
constexpr size_t kGuard = 64;  // poisoned floats past y's end that must stay untouched

struct Problem {
  int n;
  int64_t rows;
  int K;
  bool bias;
};

struct Worst {
  double per_element = 0;  // |err| / (sum |w x| + |bias|)
  double per_output = 0;   // |err| / max |y|
};

void check_problem(const Problem& p, std::mt19937& rng, Worst& worst) {
  CAPTURE(p.n);
  CAPTURE(p.rows);
  CAPTURE(p.K);
  CAPTURE(p.bias);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> binade(-6, 6);
  std::vector<uint16_t> W(static_cast<size_t>(p.rows) * p.K), bias(p.bias ? p.rows : 0);
  for (uint16_t& w : W) w = float_to_bf16(u(rng));
  for (uint16_t& b : bias) b = float_to_bf16(4.0f * u(rng));
  std::vector<float> x(static_cast<size_t>(p.n) * p.K);
  for (float& v : x) v = std::ldexp(u(rng), binade(rng));

  std::vector<double> want(static_cast<size_t>(p.n) * p.rows), mag(want.size());
  std::vector<double> wf(W.size());
  for (size_t i = 0; i < W.size(); ++i) wf[i] = bf16_to_float(W[i]);
  for (int t = 0; t < p.n; ++t)
    for (int64_t r = 0; r < p.rows; ++r) {
      const double b = p.bias ? bf16_to_float(bias[r]) : 0.0;
      double s = b, m = std::fabs(b);
      const double* w = wf.data() + r * p.K;
      const float* xt = x.data() + static_cast<size_t>(t) * p.K;
      for (int k = 0; k < p.K; ++k) {
        s += w[k] * xt[k];
        m += std::fabs(w[k] * xt[k]);
      }
      want[t * p.rows + r] = s;
      mag[t * p.rows + r] = m;
    }
  const double y_max = test::max_abs(want);

  DeviceBuffer<uint16_t> W_d(W), bias_d(bias);
  DeviceBuffer<float> x_d(x), y_d(want.size() + kGuard);
  gpu::Bf16GemmWorkspace ws(p.n, p.K);
  for (Bf16GemmTile tile : {Bf16GemmTile::Auto, Bf16GemmTile::Wide, Bf16GemmTile::Narrow}) {
    CAPTURE(gpu::bf16_gemm_tile_name(tile));
    OSSRUN_CUDA_CHECK(cudaMemset(y_d.get(), 0xff, y_d.bytes()));
    gpu::bf16_gemm(W_d.get(), p.bias ? bias_d.get() : nullptr, x_d.get(), y_d.get(), p.n, p.rows, p.K, ws, nullptr,
                   tile);
    OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> all = y_d.download();
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double err = std::fabs(static_cast<double>(all[i]) - want[i]);
      if (!(err <= kRtol * mag[i])) {
        if (bad < 8)
          MESSAGE("y[token " << i / p.rows << "][row " << i % p.rows << "] = " << all[i] << ", want " << want[i]
                             << " (allowed " << kRtol * mag[i] << ")");
        ++bad;
      }
      if (mag[i] > 0) worst.per_element = std::max(worst.per_element, err / mag[i]);
      if (y_max > 0) worst.per_output = std::max(worst.per_output, err / y_max);
    }
    CHECK(bad == 0);
    uint32_t guard_bits = 0;
    for (size_t i = want.size(); i < all.size(); ++i) {
      std::memcpy(&guard_bits, &all[i], sizeof guard_bits);
      CHECK(guard_bits == 0xffffffffu);
    }
  }
}

}  // namespace

TEST_CASE("gpu bf16_gemm: small odd shapes, every tile shape, with and without bias, vs float64") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(11);
  Worst worst;
  for (const Problem& p : {Problem{1, 77, 64, true}, Problem{2, 45, 96, true}, Problem{3, 129, 96, false},
                           Problem{130, 67, 128, false}})
    check_problem(p, rng, worst);
  MESSAGE("largest error: " << worst.per_element << " of sum |w x| + |b|, " << worst.per_output << " of max |y|");
}

TEST_CASE("gpu bf16_gemm: odd n and rows at K = 2880 and 320, vs float64") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(13);
  Worst worst;
  for (const Problem& p : {Problem{17, 300, 2880, true}, Problem{100, 1000, 320, true}}) check_problem(p, rng, worst);
  MESSAGE("largest error: " << worst.per_element << " of sum |w x| + |b|, " << worst.per_output << " of max |y|");
}

TEST_CASE("gpu bf16_gemm: n = 513, K = 4096 (several token tiles, the longest K), vs float64") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(12);
  Worst worst;
  check_problem({513, 259, 4096, true}, rng, worst);
  MESSAGE("largest error: " << worst.per_element << " of sum |w x| + |b|, " << worst.per_output << " of max |y|");
}

TEST_CASE("gpu bf16_gemm: sizes and alignments the kernels cannot take are refused") {
  CHECK_THROWS_AS(gpu::Bf16GemmWorkspace(0, 64), InputError);
  CHECK_THROWS_AS(gpu::Bf16GemmWorkspace(4, 48), InputError);  // K not a multiple of 32
  if (!test::gpu_or_skip()) return;
  gpu::Bf16GemmWorkspace ws(4, 128);
  DeviceBuffer<uint16_t> W(64 * 160);
  DeviceBuffer<float> x(4 * 160), y(4 * 64);
  CHECK_THROWS_AS(gpu::bf16_gemm(W.get(), nullptr, x.get(), y.get(), 4, 64, 160, ws, nullptr), InputError);  // K > max
  CHECK_THROWS_AS(gpu::bf16_gemm(W.get(), nullptr, x.get(), y.get(), 5, 64, 128, ws, nullptr), InputError);  // n > max
  CHECK_THROWS_AS(gpu::bf16_gemm(W.get(), nullptr, x.get(), y.get(), 4, 64, 96 + 8, ws, nullptr), InputError);
  CHECK_THROWS_AS(gpu::bf16_gemm(W.get(), nullptr, x.get(), y.get(), 4, -1, 128, ws, nullptr), InputError);
  CHECK_THROWS_AS(gpu::bf16_gemm(W.get() + 1, nullptr, x.get(), y.get(), 4, 64, 128, ws, nullptr), InputError);
  CHECK_THROWS_AS(gpu::bf16_gemm(W.get(), nullptr, x.get() + 1, y.get(), 4, 64, 128, ws, nullptr), InputError);
  gpu::bf16_gemm(W.get(), nullptr, x.get(), y.get(), 0, 64, 128, ws, nullptr);  // n = 0: nothing to do
}
