// The seam at the experts (architecture.md "The forward pass"): for n tokens with normalized inputs x and
// their router choices, out[t] = sum_i weights[t, i] * expert_{ids[t, i]}(x[t]), where an expert is the
// gate_up projection, the clamped SwiGLU and the down projection with its bias (gpt-oss.md §4 steps 3-6).
//
// The CPU forward pass only calls `run`; what happens behind it (all experts on the CPU here; resident
// slices on the GPU and the rest on the CPU in the hybrid offload) is the implementation's business.
#pragma once
#include <cstdint>
#include <string>

namespace ossrun::engine {

// An id that marks a choice computed elsewhere: the implementation skips it (it contributes nothing).
constexpr int32_t kSkippedExpert = -1;

struct ExpertBatch {
  int layer = 0;
  int64_t n = 0;                   // tokens
  const float* x = nullptr;        // (n, H) the post-attention RMSNorm output
  const int32_t* ids = nullptr;    // (n, k) expert ids chosen by the router; kSkippedExpert: skip
  const float* weights = nullptr;  // (n, k) softmax over the k chosen logits
  float* out = nullptr;            // (n, H) overwritten with the weighted sum
};

class Experts {
 public:
  virtual ~Experts() = default;
  virtual void run(const ExpertBatch& b) = 0;
  // What runs where, for the user: e.g. "mxfp4 experts on the CPU".
  virtual std::string describe() const = 0;
};

}  // namespace ossrun::engine
