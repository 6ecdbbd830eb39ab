// The MXFP4 kernels (matvec_mxfp4, gate_up_swiglu_mxfp4, dequantize_mxfp4_bf16): the scalar reference against
// float64 computations from mxfp4::dequantize_row, then every SIMD variant this machine runs against the scalar
// reference, on random shapes (K any multiple of 32, so odd block counts too; row counts and ranges that are not
// multiples of the row grouping), random weight bytes and scale bytes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "src/model/bf16.h"
#include "src/model/mxfp4.h"
#include "tests/test_cpu_kernels_util.h"

namespace ossrun::cpu::test {
namespace {

constexpr float kUntouched = 12345.0f;  // written outside the row range; must survive

// The inputs of one random case, printed when a check fails so the case can be reproduced and read.
std::string describe_case(Isa isa, int case_index, const Mxfp4Matrix& W, int64_t r0, int64_t r1, bool with_bias,
                          int64_t row) {
  std::ostringstream s;
  s << "isa=" << isa_name(isa) << " case=" << case_index << " K=" << W.K << " rows=" << W.rows << " range=[" << r0
    << "," << r1 << ") bias=" << (with_bias ? "yes" : "no") << " row=" << row << " row scales=[";
  const int64_t G = W.K / mxfp4::kBlock;
  for (int64_t g = 0; g < G && g < 8; ++g) s << (g ? " " : "") << int{W.row_scales(row)[g]};
  s << (G > 8 ? " ...]" : "]") << " first bytes=[";
  for (int i = 0; i < 4; ++i) s << (i ? " " : "") << int{W.row_blocks(row)[i]};
  s << " ...]";
  return s.str();
}

// Checks |got - want| <= tol; on failure prints the case and returns false.
bool check_close(float got, double want, double tol, const std::string& what) {
  if (std::fabs(static_cast<double>(got) - want) <= tol) return true;
  FAIL_CHECK(what << ": got " << got << ", want " << want << " (difference " << std::fabs(got - want)
                  << ", tolerance " << tol << ")");
  return false;
}

std::string hex16(uint16_t bits) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", bits);
  return buf;
}

bool check_untouched(const std::vector<float>& y, int64_t r0, int64_t r1, const std::string& what) {
  for (int64_t r = 0; r < static_cast<int64_t>(y.size()); ++r) {
    if ((r < r0 || r >= r1) && y[r] != kUntouched) {
      FAIL_CHECK(what << ": wrote output " << r << " outside its range [" << r0 << ", " << r1 << ")");
      return false;
    }
  }
  return true;
}

// The fp32 error bound of a dot product over K = 32 G terms summed blockwise (see test_cpu_kernels_util.h).
double mxfp4_dot_tolerance(int64_t K, double magnitude) {
  return static_cast<double>(K / mxfp4::kBlock + 34) * kEpsF32 * magnitude;
}

}  // namespace

TEST_CASE("matvec_mxfp4_scalar matches a float64 dot product of mxfp4::dequantize_row") {
  const KernelTable& scalar = kernels(Isa::Scalar);
  Rng rng(101);
  for (int c = 0; c < 40; ++c) {
    const int64_t K = c == 0 ? 2880 : 32 * rng.integer(1, 100), rows = rng.integer(1, 6);
    const bool with_bias = rng.coin();
    const Mxfp4Matrix W(rng, rows, K);
    const auto x = rng.floats(K);
    std::vector<float> y(static_cast<size_t>(rows), kUntouched);
    scalar.matvec_mxfp4(W.blocks.data(), W.scales.data(), with_bias ? W.bias.data() : nullptr, x.data(), y.data(), K,
                        0, rows);
    for (int64_t r = 0; r < rows; ++r) {
      const DotF64 d = dot_f64(W.dequantized_row(r), x.data());
      const double b = with_bias ? bf16_to_float(W.bias[r]) : 0.0;
      if (!check_close(y[r], d.dot + b, mxfp4_dot_tolerance(K, d.magnitude + std::fabs(b)),
                       describe_case(Isa::Scalar, c, W, 0, rows, with_bias, r))) {
        break;
      }
    }
  }
}

TEST_CASE("matvec_mxfp4 of every ISA matches the scalar reference") {
  const KernelTable& scalar = kernels(Isa::Scalar);
  for (Isa isa : simd_isas()) {
    INFO("isa=" << isa_name(isa));
    const KernelTable& simd = kernels(isa);
    Rng rng(202);
    for (int c = 0; c < 60; ++c) {
      // Case 0: the gpt-oss down shape on 64 rows; case 1: K past the SIMD kernels' stack buffer (scalar fallback).
      const int64_t K = c == 0 ? 2880 : c == 1 ? 16416 : 32 * rng.integer(1, 120);
      const int64_t rows = c == 0 ? 64 : rng.integer(1, 13);
      const int64_t r0 = rng.integer(0, rows - 1), r1 = rng.integer(r0 + 1, rows);
      const bool with_bias = rng.coin();
      const Mxfp4Matrix W(rng, rows, K);
      const auto x = rng.floats(K);
      const uint16_t* bias = with_bias ? W.bias.data() : nullptr;
      std::vector<float> want(static_cast<size_t>(rows)), got(static_cast<size_t>(rows), kUntouched);
      scalar.matvec_mxfp4(W.blocks.data(), W.scales.data(), bias, x.data(), want.data(), K, 0, rows);
      simd.matvec_mxfp4(W.blocks.data(), W.scales.data(), bias, x.data(), got.data(), K, r0, r1);
      for (int64_t r = r0; r < r1; ++r) {
        const double b = with_bias ? bf16_to_float(W.bias[r]) : 0.0;
        const double magnitude = dot_f64(W.dequantized_row(r), x.data()).magnitude + std::fabs(b);
        if (!check_close(got[r], want[r], 2 * mxfp4_dot_tolerance(K, magnitude),
                         describe_case(isa, c, W, r0, r1, with_bias, r))) {
          break;
        }
      }
      check_untouched(got, r0, r1, describe_case(isa, c, W, r0, r1, with_bias, r0));
    }
  }
}

// h = W x + b for rows 2j (gate) and 2j+1 (up) in float64, with the error bounds of their fp32 evaluation.
struct GateUpF64 {
  double gate, up, tol_gate, tol_up;
};
GateUpF64 gate_up_f64(const Mxfp4Matrix& W, const std::vector<float>& x, bool with_bias, int64_t j) {
  GateUpF64 h{};
  for (int half = 0; half < 2; ++half) {
    const int64_t r = 2 * j + half;
    const DotF64 d = dot_f64(W.dequantized_row(r), x.data());
    const double b = with_bias ? bf16_to_float(W.bias[r]) : 0.0;
    (half == 0 ? h.gate : h.up) = d.dot + b;
    (half == 0 ? h.tol_gate : h.tol_up) = mxfp4_dot_tolerance(W.K, d.magnitude + std::fabs(b));
  }
  return h;
}

TEST_CASE("gate_up_swiglu_mxfp4_scalar matches float64 gate_up and SwiGLU") {
  const KernelTable& scalar = kernels(Isa::Scalar);
  Rng rng(303);
  for (int c = 0; c < 30; ++c) {
    const int64_t K = 32 * rng.integer(1, 100), pairs = rng.integer(1, 6);
    const bool with_bias = rng.coin();
    // Larger scales than elsewhere so that gate and up often pass the clamp at 7.
    const Mxfp4Matrix W(rng, 2 * pairs, K, kRealisticScaleLo, 127 + 2);
    const auto x = rng.floats(K);
    std::vector<float> a(static_cast<size_t>(pairs), kUntouched);
    scalar.gate_up_swiglu_mxfp4(W.blocks.data(), W.scales.data(), with_bias ? W.bias.data() : nullptr, x.data(),
                                a.data(), K, 0, pairs, SwigluParams{});
    for (int64_t j = 0; j < pairs; ++j) {
      const GateUpF64 h = gate_up_f64(W, x, with_bias, j);
      if (!check_close(a[j], swiglu_f64(h.gate, h.up), swiglu_tolerance(h.gate, h.up, h.tol_gate, h.tol_up),
                       describe_case(Isa::Scalar, c, W, 0, pairs, with_bias, 2 * j))) {
        break;
      }
    }
  }
}

TEST_CASE("gate_up_swiglu_mxfp4 of every ISA matches the scalar reference") {
  const KernelTable& scalar = kernels(Isa::Scalar);
  for (Isa isa : simd_isas()) {
    INFO("isa=" << isa_name(isa));
    const KernelTable& simd = kernels(isa);
    Rng rng(404);
    for (int c = 0; c < 40; ++c) {
      const int64_t K = c == 0 ? 2880 : c == 1 ? 16416 : 32 * rng.integer(1, 120);
      const int64_t pairs = c == 0 ? 32 : rng.integer(1, 7);
      const int64_t j0 = rng.integer(0, pairs - 1), j1 = rng.integer(j0 + 1, pairs);
      const bool with_bias = rng.coin();
      const Mxfp4Matrix W(rng, 2 * pairs, K, kRealisticScaleLo, 127 + 2);
      const auto x = rng.floats(K);
      const uint16_t* bias = with_bias ? W.bias.data() : nullptr;
      std::vector<float> want(static_cast<size_t>(pairs)), got(static_cast<size_t>(pairs), kUntouched);
      scalar.gate_up_swiglu_mxfp4(W.blocks.data(), W.scales.data(), bias, x.data(), want.data(), K, 0, pairs, {});
      simd.gate_up_swiglu_mxfp4(W.blocks.data(), W.scales.data(), bias, x.data(), got.data(), K, j0, j1, {});
      for (int64_t j = j0; j < j1; ++j) {
        const GateUpF64 h = gate_up_f64(W, x, with_bias, j);
        // Both results are within their bound of the float64 value, so within twice of each other.
        const double tol = 2 * swiglu_tolerance(h.gate, h.up, h.tol_gate, h.tol_up);
        if (!check_close(got[j], want[j], tol, describe_case(isa, c, W, j0, j1, with_bias, 2 * j))) break;
      }
      check_untouched(got, j0, j1, describe_case(isa, c, W, j0, j1, with_bias, 2 * j0));
    }
  }
}

TEST_CASE("gate_up_swiglu_mxfp4 clamps like gpt-oss: gate above 7, up beyond +-7, negative gate") {
  // With x = 0 the projections are exactly the bias, so the bias chooses (gate, up) on the clamp edges.
  struct Edge {
    float gate, up;
  };
  const std::vector<Edge> edges = {
      {10.0f, 0.5f},   // gate > 7: clamped to 7
      {7.5f, 8.0f},    // both clamped
      {2.0f, -9.0f},   // up < -7: clamped to -7, so up + 1 = -6
      {1.5f, 12.0f},   // up > 7: clamped to 7
      {-3.0f, 2.0f},   // negative gate: no lower clamp
      {-20.0f, 1.0f},  // very negative gate: sigmoid underflows towards 0
      {0.0f, 0.0f},    // zero gate
      {7.0f, -7.0f},   // exactly on the limits
  };
  const int64_t K = 96, pairs = static_cast<int64_t>(edges.size());
  Rng rng(505);
  Mxfp4Matrix W(rng, 2 * pairs, K);
  for (int64_t j = 0; j < pairs; ++j) {
    W.bias[2 * j] = float_to_bf16(edges[j].gate);  // all values above are exact in bf16
    W.bias[2 * j + 1] = float_to_bf16(edges[j].up);
  }
  const std::vector<float> x(static_cast<size_t>(K), 0.0f);
  for (Isa isa : supported_isas()) {
    INFO("isa=" << isa_name(isa));
    std::vector<float> a(static_cast<size_t>(pairs), kUntouched);
    kernels(isa).gate_up_swiglu_mxfp4(W.blocks.data(), W.scales.data(), W.bias.data(), x.data(), a.data(), K, 0, pairs,
                                      SwigluParams{});
    for (int64_t j = 0; j < pairs; ++j) {
      const double want = swiglu_f64(edges[j].gate, edges[j].up);
      CAPTURE(edges[j].gate);
      CAPTURE(edges[j].up);
      CHECK(a[j] == doctest::Approx(want).epsilon(1e-6));
    }
  }
  // The clamped values by hand, so the float64 formula above is not trusted blindly.
  CHECK(swiglu_f64(10.0, 0.5) == doctest::Approx(7.0 / (1.0 + std::exp(-1.702 * 7.0)) * 1.5));
  CHECK(swiglu_f64(2.0, -9.0) == doctest::Approx(2.0 / (1.0 + std::exp(-1.702 * 2.0)) * -6.0));
  CHECK(swiglu_f64(-3.0, 2.0) == doctest::Approx(-3.0 / (1.0 + std::exp(1.702 * 3.0)) * 3.0));
}

TEST_CASE("dequantize_mxfp4_bf16_scalar equals mxfp4::dequantize_row rounded to bf16, for every scale byte") {
  const KernelTable& scalar = kernels(Isa::Scalar);
  Rng rng(606);
  const int64_t rows = 40, K = 32 * 9;
  const Mxfp4Matrix W(rng, rows, K, 0, 255);
  std::vector<uint16_t> out(static_cast<size_t>(rows * K));
  scalar.dequantize_mxfp4_bf16(W.blocks.data(), W.scales.data(), out.data(), K, 0, rows);
  for (int64_t r = 0; r < rows; ++r) {
    const auto w = W.dequantized_row(r);
    for (int64_t k = 0; k < K; ++k) {
      const uint16_t want = float_to_bf16(w[k]);
      if (out[r * K + k] != want) {
        FAIL_CHECK("row " << r << " element " << k << ": got bf16 " << hex16(out[r * K + k]) << ", want "
                          << hex16(want) << " (scale byte " << int{W.row_scales(r)[k / 32]} << ")");
        return;
      }
    }
  }
}

TEST_CASE("dequantize_mxfp4_bf16 of every ISA equals the scalar reference bit for bit") {
  const KernelTable& scalar = kernels(Isa::Scalar);
  for (Isa isa : simd_isas()) {
    INFO("isa=" << isa_name(isa));
    Rng rng(707);
    for (int c = 0; c < 20; ++c) {
      const int64_t K = 32 * rng.integer(1, 40), rows = rng.integer(1, 9);
      const int64_t r0 = rng.integer(0, rows - 1), r1 = rng.integer(r0 + 1, rows);
      const Mxfp4Matrix W(rng, rows, K, 0, 255);  // every scale byte, 0 (subnormal) and 255 (inf, NaN) included
      std::vector<uint16_t> want(static_cast<size_t>(rows * K)), got(static_cast<size_t>(rows * K), 0xabcd);
      scalar.dequantize_mxfp4_bf16(W.blocks.data(), W.scales.data(), want.data(), K, 0, rows);
      kernels(isa).dequantize_mxfp4_bf16(W.blocks.data(), W.scales.data(), got.data(), K, r0, r1);
      for (int64_t i = 0; i < rows * K; ++i) {
        const int64_t r = i / K;
        const uint16_t expected = (r >= r0 && r < r1) ? want[i] : uint16_t{0xabcd};
        if (got[i] != expected) {
          FAIL_CHECK(describe_case(isa, c, W, r0, r1, false, r)
                     << " element " << i % K << ": got bf16 " << hex16(got[i]) << ", want " << hex16(expected));
          break;
        }
      }
    }
  }
}

}  // namespace ossrun::cpu::test
