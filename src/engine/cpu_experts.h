// Experts computed on the CPU from the checkpoint's mmap'd bytes, in either expert format.
//
// The per-expert computation is a function of (slice, input) -> output (expert_gate_up_swiglu and
// expert_down below), split over output rows so several threads can share one expert.
// Decode (one token): one dispatch runs the gate_up+SwiGLU rows of all k experts, a second their down rows.
// Prefill (a batch): tokens are grouped by expert (routing metadata: per-expert counts, offsets and the
// (token, slot) pairs), then each expert with tokens runs on its group, each chunk of weight rows applied
// to every token of the group while it sits in cache.
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

 private:
  void run_one_token(const ExpertBatch& b);
  void run_grouped(const ExpertBatch& b);
  const ExpertSlice& slice(int layer, int expert) const { return slices_[layer * n_experts_ + expert]; }

  CpuContext ctx_;
  ExpertDims dims_;
  int64_t n_experts_ = 0, k_ = 0, max_tokens_ = 0;
  ExpertFormat format_;
  std::vector<ExpertSlice> slices_;  // (L, E), made once: views into the checkpoint

  // Routing metadata of a batch, grouped by expert.
  std::vector<int64_t> count_;      // (E) tokens routed to each expert
  std::vector<int64_t> offset_;     // (E + 1) start of each expert's group in pairs_
  std::vector<int64_t> pair_token_; // (max_tokens * k) token of each (token, slot) pair, grouped by expert
  std::vector<float> pair_weight_;  // (max_tokens * k) its router weight
  // Workspaces: rows are (token, slot) pairs for one token, or one expert's group in a batch.
  std::vector<float> x_;  // (max_tokens, H) gathered inputs
  std::vector<float> a_;  // (max(max_tokens, k), I) SwiGLU outputs
  std::vector<float> h_;  // (max(max_tokens, k), 2I) bf16 format: gate_up outputs before the SwiGLU
  std::vector<float> y_;  // (max(max_tokens, k), H) expert outputs
};

}  // namespace ossrun::engine
