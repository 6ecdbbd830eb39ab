// Experts computed on the CPU from the checkpoint's mmap'd bytes, in either expert format.
//
// The per-expert computation is a function of (slice, input) -> output (expert_gate_up_swiglu and
// expert_down below), split over output rows so several threads can share one expert.
// Decode (one token): one dispatch runs the gate_up+SwiGLU rows of all k experts, a second their down rows.
// Prefill (a batch): tokens are grouped by expert (routing metadata: per-expert counts, offsets and the
// (token, slot) pairs), then each expert with tokens runs on its group: a group of at least
// kMinMatmulTokens through oneDNN on the expert's weights dequantized to bf16 tiles (gate_up (2I, H), down
// (H, I)); a smaller one through the matvec kernels, each tile of weight rows serving every token of the
// group while it sits in cache.
// A negative id (kSkippedExpert) marks a choice served elsewhere (the GPU, in the hybrid offload): it is not
// computed and contributes nothing; a token whose choices are all skipped gets zeros.
#pragma once
#include <cstdint>
#include <vector>

#include "src/engine/experts.h"
#include "src/engine/linear.h"
#include "src/model/checkpoint.h"

namespace ossrun::engine {

struct ExpertDims {
  int64_t hidden = 0;        // H
  int64_t intermediate = 0;  // I
  cpu::SwigluParams swiglu;
};

// a[j] = swiglu(h[2j], h[2j+1]) for j in [j0, j1), h = W1 x + b1 (the expert's gate_up rows 2j0 .. 2j1).
// x: (H), a: (I). h_scratch: (2I) floats, used by the bf16 format only.
void expert_gate_up_swiglu(const cpu::KernelTable& k, const ExpertSlice& s, const ExpertDims& d, const float* x,
                           float* a, float* h_scratch, int64_t j0, int64_t j1);
// y[r] = W2[r, :] . a + b2[r] for r in [r0, r1). a: (I), y: (H).
void expert_down(const cpu::KernelTable& k, const ExpertSlice& s, const ExpertDims& d, const float* a, float* y,
                 int64_t r0, int64_t r1);

class CpuExperts : public Experts {
 public:
  // Workspaces for batches of up to max_tokens tokens.
  CpuExperts(const Checkpoint& ck, CpuContext ctx, int64_t max_tokens);

  void run(const ExpertBatch& b) override;
  std::string describe() const override;
  // Host memory of the workspaces (the weights stay behind the mmap).
  uint64_t workspace_bytes() const;

 private:
  void run_one_token(const ExpertBatch& b);
  void run_grouped(const ExpertBatch& b);
  // One expert over the m gathered rows of x_ into y_, by matvec kernels or by matmul on bf16 tiles.
  void group_by_matvec(const ExpertSlice& s, int64_t m);
  void group_by_matmul(const ExpertSlice& s, int64_t m);
  // The expert's weights as bf16 in the nn.Linear layout: gate_up (2I, H) into w1_, down (H, I) into w2_.
  void dequantize_tiles(const ExpertSlice& s);
  const ExpertSlice& slice(int layer, int expert) const { return slices_[layer * n_experts_ + expert]; }

  CpuContext ctx_;
  ExpertDims dims_;
  int64_t n_experts_ = 0, k_ = 0, max_tokens_ = 0;
  ExpertFormat format_;
  std::vector<ExpertSlice> slices_;  // (L, E), made once: views into the checkpoint

  std::vector<int64_t> active_;     // (k) the choices of one token that are not skipped
  // Routing metadata of a batch, grouped by expert.
  std::vector<int64_t> count_;      // (E) tokens routed to each expert
  std::vector<int64_t> offset_;     // (E + 1) start of each expert's group in pairs_
  std::vector<int64_t> pair_token_; // (max_tokens * k) token of each (token, slot) pair, grouped by expert
  std::vector<float> pair_weight_;  // (max_tokens * k) its router weight
  // Workspaces: rows are the k slots of one token, or one expert's group in a batch (padded to a
  // multiple of kMatmulRowAlign, so oneDNN sees few distinct shapes).
  std::vector<float> x_;  // (rows, H) gathered inputs
  std::vector<float> a_;  // (rows, I) SwiGLU outputs
  std::vector<float> h_;  // (rows, 2I) gate_up outputs before the SwiGLU (matmul path and bf16 format)
  std::vector<float> y_;  // (rows, H) expert outputs
  std::vector<uint16_t> w1_;  // (2I, H) bf16 gate_up tile of the expert being run
  std::vector<uint16_t> w2_;  // (H, I) bf16 down tile
};

}  // namespace ossrun::engine
