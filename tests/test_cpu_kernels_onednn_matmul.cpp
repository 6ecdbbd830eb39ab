// OnednnMatmul against the scalar reference kernel (matvec_bf16_scalar, one row of X at a time), for bf16 and
// f32 activations, with and without bias, on shapes that are not multiples of any blocking.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/onednn_matmul.h"
#include "src/model/bf16.h"
#include "tests/test_cpu_kernels_util.h"

namespace ossrun::cpu::test {
namespace {

struct Shape {
  int64_t M, N, K;
};

// Y_ref[m, :] = matvec_bf16_scalar(W, bias, x_m) with x_m = row m of X as the bf16 values the matmul multiplies,
// and sum|terms| per output for the tolerance.
void reference(const std::vector<float>& x_rounded, const std::vector<uint16_t>& W, const uint16_t* bias, Shape s,
               std::vector<float>& y, std::vector<double>& magnitude) {
  y.assign(static_cast<size_t>(s.M * s.N), 0.0f);
  magnitude.assign(static_cast<size_t>(s.M * s.N), 0.0);
  for (int64_t m = 0; m < s.M; ++m) {
    const float* x = x_rounded.data() + m * s.K;
    kernels(Isa::Scalar).matvec_bf16(W.data(), bias, x, y.data() + m * s.N, s.K, 0, s.N);
    for (int64_t n = 0; n < s.N; ++n) {
      double mag = bias ? std::fabs(bf16_to_float(bias[n])) : 0.0;
      for (int64_t k = 0; k < s.K; ++k) mag += std::fabs(static_cast<double>(bf16_to_float(W[n * s.K + k])) * x[k]);
      magnitude[m * s.N + n] = mag;
    }
  }
}

void check_matmul(bool bf16_input) {
  OnednnMatmul mm;
  MESSAGE("oneDNN runs with " << OnednnMatmul::isa());
  Rng rng(bf16_input ? 31 : 32);
  for (const Shape s : {Shape{1, 1, 1}, Shape{3, 17, 45}, Shape{5, 130, 2880}, Shape{33, 64, 100}, Shape{2, 7, 4096}}) {
    for (bool with_bias : {false, true}) {
      CAPTURE(s.M);
      CAPTURE(s.N);
      CAPTURE(s.K);
      CAPTURE(with_bias);
      const auto W = rng.bf16s(s.N * s.K);
      const auto bias = rng.bf16s(s.N);
      const uint16_t* b = with_bias ? bias.data() : nullptr;
      const auto X = rng.floats(s.M * s.K);
      std::vector<uint16_t> X_bf16(X.size());
      std::vector<float> X_rounded(X.size());
      for (size_t i = 0; i < X.size(); ++i) {
        X_bf16[i] = float_to_bf16(X[i]);
        X_rounded[i] = bf16_to_float(X_bf16[i]);
      }
      std::vector<float> Y(static_cast<size_t>(s.M * s.N), NAN), want;
      std::vector<double> magnitude;
      if (bf16_input) {
        mm.matmul_bf16_bf16(X_bf16.data(), W.data(), b, Y.data(), s.M, s.N, s.K);
      } else {
        mm.matmul_f32_bf16(X.data(), W.data(), b, Y.data(), s.M, s.N, s.K);
      }
      reference(X_rounded, W, b, s, want, magnitude);
      for (int64_t i = 0; i < s.M * s.N; ++i) {
        // Both sum exact bf16 x bf16 products in fp32, in different orders.
        const double tol = 2 * static_cast<double>(s.K + 2) * kEpsF32 * magnitude[i];
        if (!(std::fabs(static_cast<double>(Y[i]) - want[i]) <= tol)) {
          FAIL_CHECK("Y[" << i / s.N << ", " << i % s.N << "]: got " << Y[i] << ", want " << want[i]
                          << " (tolerance " << tol << ")");
          break;
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("OnednnMatmul matmul_bf16_bf16 matches matvec_bf16_scalar row by row") { check_matmul(true); }

TEST_CASE("OnednnMatmul matmul_f32_bf16 matches matvec_bf16_scalar on bf16-rounded activations") {
  check_matmul(false);
}

TEST_CASE("OnednnMatmul caches one primitive per shape and rejects bad shapes") {
  OnednnMatmul mm;
  Rng rng(33);
  const auto W = rng.bf16s(8 * 16);
  const auto X = rng.floats(4 * 16);
  std::vector<float> Y(4 * 8);
  mm.matmul_f32_bf16(X.data(), W.data(), nullptr, Y.data(), 4, 8, 16);
  mm.matmul_f32_bf16(X.data(), W.data(), nullptr, Y.data(), 4, 8, 16);
  CHECK(mm.cached_shapes() == 1);
  mm.matmul_f32_bf16(X.data(), W.data(), nullptr, Y.data(), 3, 8, 16);
  CHECK(mm.cached_shapes() == 2);
  mm.matmul_f32_bf16(X.data(), W.data(), nullptr, Y.data(), 0, 8, 16);  // no rows: nothing to do
  CHECK_THROWS_AS(mm.matmul_f32_bf16(X.data(), W.data(), nullptr, Y.data(), 4, 0, 16), std::invalid_argument);
  CHECK_THROWS_AS(mm.matmul_f32_bf16(X.data(), W.data(), nullptr, Y.data(), -1, 8, 16), std::invalid_argument);
}

}  // namespace ossrun::cpu::test
