// router_topk_softmax: the router's expert selection for a batch of tokens on the GPU (gpt-oss.md §4 steps
// 1-2), the twin of src/engine/ops.h router_topk_softmax; expert_choices_from_topk turns its output into the
// ExpertChoice list mxfp4_moe_matvec reads.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/mxfp4_moe_matvec.cuh"

namespace ossrun::gpu {

// The most experts one token's selection takes (its keys live in shared memory: 8 bytes each).
constexpr int kRouterMaxExperts = 4096;
// The most experts selected per token.
constexpr int kRouterMaxK = 32;

// logits: (n_tokens, n_experts) fp32; ids: (n_tokens, k) int32, weights: (n_tokens, k) fp32. Per token: the
// k largest logits in descending order, ties to the lowest expert index (the same ids as the CPU), and the
// softmax over those k only. A NaN logit ranks below every number (its weight comes out NaN if chosen).
// n_tokens >= 0, 1 <= n_experts <= kRouterMaxExperts, 1 <= k <= min(n_experts, kRouterMaxK); throws
// InputError otherwise. Graph-capturable.
void router_topk_softmax(const float* logits, int n_tokens, int n_experts, int k, int32_t* ids, float* weights,
                         cudaStream_t stream);

// choices[i] = {slot_of_expert[ids[i]], weights[i]} for i < count (ids, weights: the (n_tokens, k) output
// above, count = n_tokens * k). slot_of_expert: (n_experts) int32, -1 for an expert not resident (the slot
// stays -1), or nullptr for the identity. When n_experts >= 0, an id outside [0, n_experts) gives slot -1
// (negative ids always do); -1 trusts the ids. Graph-capturable.
void expert_choices_from_topk(const int32_t* ids, const float* weights, int count, const int32_t* slot_of_expert,
                              ExpertChoice* choices, cudaStream_t stream, int n_experts = -1);

}  // namespace ossrun::gpu
