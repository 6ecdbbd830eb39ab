// Dense bf16 projections of the CPU forward pass (attention q/k/v/o, router, lm_head): y = W x + b with
// W in the nn.Linear layout (out, in). One token goes through the kernel table's matvec, split over output
// rows; a batch of at least kMinMatmulTokens through oneDNN (SplitMatmul below).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "cpu_kernels/onednn_matmul.h"
#include "src/engine/parallel.h"
#include "src/model/tensor_view.h"

namespace ossrun::engine {

// Y (M, N) = X (M, K) . W^T + bias with f32 X and bf16 W (N, K), to about fp32 accuracy, through oneDNN.
//
// oneDNN 2.6 multiplies bf16 by bf16 only, and rounding X to bf16 costs ~1e-3 relative per product: enough
// to flip near-tied router choices and to spend a third of the 5e-3 budget against fp32 references on
// lm_head alone. So X is split into hi = bf16(X) and lo = bf16(X - hi) (together exact to ~2^-17) and one
// matmul runs over the stacked (2M, K) rows: the weights are read once, the bf16 units still do the work,
// and Y = (hi W^T) + (lo W^T) + bias.
class SplitMatmul {
 public:
  // Scratch for products whose M x K and M x N are at most max_inputs and max_outputs.
  SplitMatmul(int64_t max_inputs, int64_t max_outputs);
  void run(Workers& workers, const float* X, const uint16_t* W, const uint16_t* bias, float* Y, int64_t M, int64_t N,
           int64_t K);
  uint64_t bytes() const { return x2_.size() * sizeof(uint16_t) + y2_.size() * sizeof(float); }

 private:
  cpu::OnednnMatmul matmul_;
  std::vector<uint16_t> x2_;  // (2M, K) bf16: hi rows then lo rows
  std::vector<float> y2_;     // (2M, N) f32: hi products then lo products
};

// What the CPU forward pass computes with: a kernel table, the workers that split rows, and the matmul for
// batches (called from the forward pass's thread only).
struct CpuContext {
  const cpu::KernelTable* kernels = nullptr;
  Workers* workers = nullptr;
  SplitMatmul* matmul = nullptr;
};

// Batches of at least this many tokens (or tokens routed to one expert) take the oneDNN matmul.
constexpr int64_t kMinMatmulTokens = 8;

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

// One token: the projections run together as one split over their concatenated output rows (q, k and v
// share one dispatch). A small batch: each tile of rows is applied to all n tokens before moving on, so the
// weights are read from memory once per batch. A large batch: one oneDNN matmul per projection.
void project(const CpuContext& ctx, std::span<const Projection> group, int64_t n);
inline void project(const CpuContext& ctx, const Projection& p, int64_t n) { project(ctx, std::span(&p, 1), n); }

}  // namespace ossrun::engine
