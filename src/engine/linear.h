// Dense bf16 projections of the CPU forward pass (attention q/k/v/o, router, lm_head): y = W x + b with
// W in the nn.Linear layout (out, in), through the kernel table and split over output rows.
#pragma once
#include <cstdint>
#include <span>

#include "cpu_kernels/kernels.h"
#include "src/engine/parallel.h"
#include "src/model/tensor_view.h"

namespace ossrun::engine {

// What the CPU forward pass computes with: a kernel table and the workers that split rows.
struct CpuContext {
  const cpu::KernelTable* kernels = nullptr;
  Workers* workers = nullptr;
};

// A bf16 weight and its optional bias, checked once when the session binds the weights.
struct DenseWeight {
  const uint16_t* w = nullptr;     // (rows, cols) bf16
  const uint16_t* bias = nullptr;  // (rows) bf16, or nullptr
  int64_t rows = 0, cols = 0;
};
// From checkpoint views (weight (rows, cols) bf16; bias (rows) bf16 or an empty view).
DenseWeight dense_weight(const TensorView& w, const TensorView* bias = nullptr);

// One projection of a fused group: y = W x + b for each of n tokens. x: (n, W.cols), y: (n, W.rows).
struct Projection {
  DenseWeight W;
  const float* x = nullptr;
  float* y = nullptr;
};

// Runs the projections together as one split over their concatenated output rows (q, k and v share one
// dispatch). Each chunk of rows is applied to all n tokens before moving on, so a chunk of weights is read
// from memory once per batch.
void project(const CpuContext& ctx, std::span<const Projection> group, int64_t n);
inline void project(const CpuContext& ctx, const Projection& p, int64_t n) { project(ctx, std::span(&p, 1), n); }

}  // namespace ossrun::engine
