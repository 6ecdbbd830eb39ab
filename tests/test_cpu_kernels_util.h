// Shared pieces of the CPU kernel tests: random inputs, the ISAs to run, and error bounds.
//
// Tolerances are first-order bounds on fp32 rounding, not fudge factors: summing n terms in any order in fp32
// errs by at most about n * 2^-24 * sum|term|, and a bug (a wrong nibble, element or scale) errs by a large
// fraction of sum|term|.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "src/model/bf16.h"
#include "src/model/mxfp4.h"

namespace ossrun::cpu::test {

constexpr double kEpsF32 = 1.0 / (1 << 24);  // unit roundoff of fp32

// Every variant this machine runs, the scalar reference first.
inline std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (isa_supported(isa)) isas.push_back(isa);
  }
  return isas;
}

// The SIMD variants this machine runs (each is compared with the scalar reference).
inline std::vector<Isa> simd_isas() {
  std::vector<Isa> isas;
  for (Isa isa : supported_isas()) {
    if (isa != Isa::Scalar) isas.push_back(isa);
  }
  return isas;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen_); }
  int64_t integer(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen_); }  // [lo, hi]
  bool coin() { return integer(0, 1) == 1; }

  std::vector<float> floats(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& f : v) f = uniform(lo, hi);
    return v;
  }
  std::vector<uint16_t> bf16s(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<uint16_t> v(static_cast<size_t>(n));
    for (auto& b : v) b = float_to_bf16(uniform(lo, hi));
    return v;
  }
  std::vector<uint8_t> bytes(int64_t n, int lo = 0, int hi = 255) {
    std::vector<uint8_t> v(static_cast<size_t>(n));
    for (auto& b : v) b = static_cast<uint8_t>(integer(lo, hi));
    return v;
  }

 private:
  std::mt19937_64 gen_;
};

// Scale bytes seen in gpt-oss expert weights sit around 2^-10 .. 2^-2; this range covers that and more.
constexpr int kRealisticScaleLo = 110;
constexpr int kRealisticScaleHi = 135;

// A random (rows, K) MXFP4 matrix with a bf16 bias, laid out as in the checkpoint.
struct Mxfp4Matrix {
  int64_t rows = 0, K = 0;
  std::vector<uint8_t> blocks;  // (rows, K/32, 16) u8
  std::vector<uint8_t> scales;  // (rows, K/32) u8
  std::vector<uint16_t> bias;   // (rows) bf16

  Mxfp4Matrix(Rng& rng, int64_t rows_, int64_t K_, int scale_lo = kRealisticScaleLo, int scale_hi = kRealisticScaleHi)
      : rows(rows_),
        K(K_),
        blocks(rng.bytes(rows_ * K_ / 2)),
        scales(rng.bytes(rows_ * K_ / mxfp4::kBlock, scale_lo, scale_hi)),
        bias(rng.bf16s(rows_)) {}

  const uint8_t* row_blocks(int64_t r) const { return blocks.data() + r * (K / 2); }
  const uint8_t* row_scales(int64_t r) const { return scales.data() + r * (K / mxfp4::kBlock); }
  std::vector<float> dequantized_row(int64_t r) const {
    std::vector<float> w(static_cast<size_t>(K));
    mxfp4::dequantize_row(row_blocks(r), row_scales(r), K, w.data());
    return w;
  }
};

// Row r of an MXFP4 matrix against x in float64: the exact dot product (dot) and sum |w_k x_k| (magnitude).
struct DotF64 {
  double dot = 0, magnitude = 0;
};
inline DotF64 dot_f64(const std::vector<float>& w, const float* x) {
  DotF64 d;
  for (size_t k = 0; k < w.size(); ++k) {
    const double t = static_cast<double>(w[k]) * x[k];
    d.dot += t;
    d.magnitude += std::fabs(t);
  }
  return d;
}

// The float64 clamped SwiGLU of gpt-oss.md §4.
inline double swiglu_f64(double gate, double up, SwigluParams p = {}) {
  gate = std::min(gate, static_cast<double>(p.limit));
  up = std::clamp(up, -static_cast<double>(p.limit), static_cast<double>(p.limit));
  return gate / (1.0 + std::exp(-p.alpha * gate)) * (up + 1.0);
}

// A bound on |swiglu(g + dg, u + du) - swiglu(g, u)| for |dg| <= tol_gate, |du| <= tol_up, from the derivatives
// (taken without the clamps, which only make them smaller), plus the rounding of the fp32 formula itself.
inline double swiglu_tolerance(double gate, double up, double tol_gate, double tol_up, SwigluParams p = {}) {
  const double g = std::min(gate, static_cast<double>(p.limit));
  const double u = std::clamp(up, -static_cast<double>(p.limit), static_cast<double>(p.limit));
  const double s = 1.0 / (1.0 + std::exp(-p.alpha * gate));
  const double d_gate = std::fabs((s + p.alpha * gate * s * (1.0 - s)) * (u + 1.0));
  const double d_up = std::fabs(g / (1.0 + std::exp(-p.alpha * g)));
  return d_gate * tol_gate + d_up * tol_up + 64 * kEpsF32 * (std::fabs(swiglu_f64(gate, up, p)) + 1e-30);
}

}  // namespace ossrun::cpu::test
