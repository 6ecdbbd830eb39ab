// The bf16 kernels (matvec_bf16 for nn.Linear rows, matvec_bf16_t for the transposed layout): the scalar
// reference against float64, then every SIMD variant this machine runs against the scalar reference, on K,
// row and column counts that are not multiples of the vector widths, with and without a bias.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "src/model/bf16.h"
#include "tests/test_cpu_kernels_util.h"

namespace ossrun::cpu::test {
namespace {

constexpr float kUntouched = 12345.0f;

struct Bf16Case {
  int64_t K, n_out, o0, o1;  // n_out outputs (rows, or columns for the transposed layout); range [o0, o1)
  bool with_bias;
  std::vector<uint16_t> W, bias;
  std::vector<float> x;

  Bf16Case(Rng& rng, int64_t K_, int64_t n_out_)
      : K(K_), n_out(n_out_), W(rng.bf16s(K_ * n_out_)), bias(rng.bf16s(n_out_)), x(rng.floats(K_)) {
    o0 = rng.integer(0, n_out - 1);
    o1 = rng.integer(o0 + 1, n_out);
    with_bias = rng.coin();
  }
  const uint16_t* bias_or_null() const { return with_bias ? bias.data() : nullptr; }

  // Output o in float64 and sum |terms|; `transposed` reads W as (K, n_out).
  DotF64 exact(int64_t o, bool transposed) const {
    DotF64 d;
    for (int64_t k = 0; k < K; ++k) {
      const double t = static_cast<double>(bf16_to_float(transposed ? W[k * n_out + o] : W[o * K + k])) * x[k];
      d.dot += t;
      d.magnitude += std::fabs(t);
    }
    if (with_bias) {
      d.dot += bf16_to_float(bias[o]);
      d.magnitude += std::fabs(bf16_to_float(bias[o]));
    }
    return d;
  }

  std::string describe(Isa isa, int case_index, int64_t o) const {
    std::ostringstream s;
    s << "isa=" << isa_name(isa) << " case=" << case_index << " K=" << K << " outputs=" << n_out << " range=[" << o0
      << "," << o1 << ") bias=" << (with_bias ? "yes" : "no") << " output=" << o << " x[0..2]=" << x[0];
    if (K > 1) s << " " << x[1];
    return s.str();
  }
};

bool check_close(float got, double want, double tol, const std::string& what) {
  if (std::fabs(static_cast<double>(got) - want) <= tol) return true;
  FAIL_CHECK(what << ": got " << got << ", want " << want << " (difference " << std::fabs(got - want)
                  << ", tolerance " << tol << ")");
  return false;
}

bool check_untouched(const std::vector<float>& y, int64_t o0, int64_t o1, const std::string& what) {
  for (int64_t o = 0; o < static_cast<int64_t>(y.size()); ++o) {
    if ((o < o0 || o >= o1) && y[o] != kUntouched) {
      FAIL_CHECK(what << ": wrote output " << o << " outside its range [" << o0 << ", " << o1 << ")");
      return false;
    }
  }
  return true;
}

// Any fp32 summation order of K products and a bias errs by at most (K + 2) eps sum|terms| (first order).
double bf16_dot_tolerance(int64_t K, double magnitude) { return static_cast<double>(K + 2) * kEpsF32 * magnitude; }

// Runs the table's matvec_bf16 (or matvec_bf16_t) on the case's range.
void run(const KernelTable& t, const Bf16Case& c, bool transposed, float* y) {
  if (transposed) {
    t.matvec_bf16_t(c.W.data(), c.bias_or_null(), c.x.data(), y, c.K, c.n_out, c.o0, c.o1);
  } else {
    t.matvec_bf16(c.W.data(), c.bias_or_null(), c.x.data(), y, c.K, c.o0, c.o1);
  }
}

void check_scalar_against_f64(bool transposed) {
  Rng rng(transposed ? 11 : 12);
  for (int i = 0; i < 40; ++i) {
    const Bf16Case c(rng, rng.integer(1, 400), rng.integer(1, 200));
    std::vector<float> y(static_cast<size_t>(c.n_out), kUntouched);
    run(kernels(Isa::Scalar), c, transposed, y.data());
    for (int64_t o = c.o0; o < c.o1; ++o) {
      const DotF64 d = c.exact(o, transposed);
      if (!check_close(y[o], d.dot, bf16_dot_tolerance(c.K, d.magnitude), c.describe(Isa::Scalar, i, o))) break;
    }
    check_untouched(y, c.o0, c.o1, c.describe(Isa::Scalar, i, c.o0));
  }
}

void check_simd_against_scalar(bool transposed) {
  for (Isa isa : simd_isas()) {
    INFO("isa=" << isa_name(isa));
    Rng rng(transposed ? 21 : 22);
    for (int i = 0; i < 60; ++i) {
      // Case 0 is a gpt-oss shape (k_proj rows over hidden 2880); the rest are random, K from 1.
      const int64_t K = i == 0 ? 2880 : rng.integer(1, 700);
      const int64_t n_out = i == 0 ? 512 : rng.integer(1, transposed ? 300 : 13);
      const Bf16Case c(rng, K, n_out);
      std::vector<float> want(static_cast<size_t>(c.n_out), kUntouched), got(static_cast<size_t>(c.n_out), kUntouched);
      run(kernels(Isa::Scalar), c, transposed, want.data());
      run(kernels(isa), c, transposed, got.data());
      for (int64_t o = c.o0; o < c.o1; ++o) {
        // Both are within bf16_dot_tolerance of the exact value, so within twice of each other.
        const double tol = 2 * bf16_dot_tolerance(c.K, c.exact(o, transposed).magnitude);
        if (!check_close(got[o], want[o], tol, c.describe(isa, i, o))) break;
      }
      check_untouched(got, c.o0, c.o1, c.describe(isa, i, c.o0));
    }
  }
}

}  // namespace

TEST_CASE("matvec_bf16_scalar matches a float64 dot product") { check_scalar_against_f64(/*transposed=*/false); }

TEST_CASE("matvec_bf16 of every ISA matches the scalar reference") { check_simd_against_scalar(/*transposed=*/false); }

TEST_CASE("matvec_bf16_t_scalar matches a float64 dot product") { check_scalar_against_f64(/*transposed=*/true); }

TEST_CASE("matvec_bf16_t of every ISA matches the scalar reference") { check_simd_against_scalar(/*transposed=*/true); }

}  // namespace ossrun::cpu::test
