#include "src/engine/linear.h"

#include <algorithm>

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

void project(const CpuContext& ctx, std::span<const Projection> group, int64_t n) {
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
