// The small per-token operations of the gpt-oss forward pass, in f32 (gpt-oss.md §4, §6).
#pragma once
#include <cmath>
#include <cstdint>

namespace ossrun::engine {

// RMSNorm (gpt-oss.md §6): y = x / sqrt(mean(x^2) + eps) * w, with w bf16 (n) and the sum of squares in
// double. y may alias x.
void rmsnorm(const float* x, const uint16_t* w, float* y, int64_t n, float eps);

// Router selection (gpt-oss.md §4 steps 1-2): the k largest logits in descending order, ties to the lowest
// expert index, and the softmax over those k only. ids (k), weights (k).
void router_topk_softmax(const float* logits, int64_t n_experts, int64_t k, int32_t* ids, float* weights);

// The clamped SwiGLU of one gate/up pair (gpt-oss.md §4 step 4): gate <- min(gate, limit),
// up <- clamp(up, -limit, limit), a = gate * sigmoid(alpha * gate) * (up + 1).
inline float swiglu(float gate, float up, float alpha, float limit) {
  gate = std::fmin(gate, limit);
  up = std::fmax(std::fmin(up, limit), -limit);
  return gate / (1.0f + std::exp(-alpha * gate)) * (up + 1.0f);
}

}  // namespace ossrun::engine
