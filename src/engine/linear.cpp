#include "src/engine/linear.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "src/model/bf16.h"

#include "src/model/error.h"

namespace ossrun::engine {
namespace {

// Rows per tile of a batched projection: 16 x 2880 bf16 = 90 KB of weights, which stays in L2 while every
// token of the batch reads it.
constexpr int64_t kRowTile = 16;

}  // namespace

DenseWeight dense_weight(const TensorView& w, const TensorView* bias) {
  if (w.rank() != 2) throw InputError(w.name + ": expected a 2-d weight, found " + w.describe());
  DenseWeight d;
  d.w = w.bf16_data();
  d.rows = w.shape[0];
  d.cols = w.shape[1];
  if (bias && !bias->bytes.empty()) {
    if (bias->rank() != 1 || bias->shape[0] != d.rows)
      throw InputError(bias->name + ": expected " + std::to_string(d.rows) + " values, found " + bias->describe());
    d.bias = bias->bf16_data();
  }
  return d;
}

SplitMatmul::SplitMatmul(int64_t max_inputs, int64_t max_outputs)
    : x2_(static_cast<size_t>(2 * max_inputs)), y2_(static_cast<size_t>(2 * max_outputs)) {}

void SplitMatmul::run(Workers& workers, const float* X, const uint16_t* W, const uint16_t* bias, float* Y, int64_t M,
                      int64_t N, int64_t K) {
  if (static_cast<size_t>(2 * M * K) > x2_.size() || static_cast<size_t>(2 * M * N) > y2_.size())
    throw std::logic_error("SplitMatmul: (M, N, K) = (" + std::to_string(M) + ", " + std::to_string(N) + ", " +
                           std::to_string(K) + ") exceeds its scratch");
  uint16_t* hi = x2_.data();
  uint16_t* lo = x2_.data() + M * K;
  workers.for_rows(M * K, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      hi[i] = float_to_bf16(X[i]);
      lo[i] = float_to_bf16(X[i] - bf16_to_float(hi[i]));  // the difference is exact in f32
    }
  });
  matmul_.matmul_bf16_bf16(x2_.data(), W, nullptr, y2_.data(), 2 * M, N, K);
  workers.for_rows(M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* yh = y2_.data() + m * N;
      const float* yl = y2_.data() + (M + m) * N;
      float* y = Y + m * N;
      if (bias)
        for (int64_t c = 0; c < N; ++c) y[c] = (yh[c] + yl[c]) + bf16_to_float(bias[c]);
      else
        for (int64_t c = 0; c < N; ++c) y[c] = yh[c] + yl[c];
    }
  });
}

void project(const CpuContext& ctx, std::span<const Projection> group, int64_t n) {
  if (n >= kMinMatmulTokens && ctx.matmul) {
    for (const Projection& p : group) ctx.matmul->run(*ctx.workers, p.x, p.W.w, p.W.bias, p.y, n, p.W.rows, p.W.cols);
    return;
  }
  int64_t total = 0;
  for (const Projection& p : group) total += p.W.rows;
  ctx.workers->for_rows(total, kRowTile, [&](int64_t r0, int64_t r1) {
    int64_t base = 0;
    for (const Projection& p : group) {
      const int64_t b = std::max(r0, base) - base, e = std::min(r1, base + p.W.rows) - base;
      base += p.W.rows;
      if (b >= e) continue;
      if (n == 1) {
        ctx.kernels->matvec_bf16(p.W.w, p.W.bias, p.x, p.y, p.W.cols, b, e);
        continue;
      }
      for (int64_t t0 = b; t0 < e; t0 += kRowTile)  // each tile of rows serves every token while in cache
        for (int64_t t = 0; t < n; ++t)
          ctx.kernels->matvec_bf16(p.W.w, p.W.bias, p.x + t * p.W.cols, p.y + t * p.W.rows, p.W.cols, t0,
                                   std::min(e, t0 + kRowTile));
    }
  });
}

}  // namespace ossrun::engine
