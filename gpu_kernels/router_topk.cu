// router_topk_softmax and expert_choices_from_topk: kernels, then the launchers.
//
// Top-k: one CTA per token. Each logit becomes a 64-bit key that orders exactly as the CPU's selection does:
// the float's bits made monotonic (with -0 as +0, since the CPU compares with >, and NaN as -inf) above
// ~index (so the lower index wins a tie). k rounds of a CTA-wide maximum over the keys not yet taken give
// the ids in descending order; no fixed cap on the number of experts per lane or warp.
// The softmax then runs in one thread in the CPU's order; exp is taken in double and rounded to float, which
// is the correctly rounded expf the CPU's libm gives to well within the 1e-6 the tests allow.
#include <cmath>
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/router_topk.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

constexpr int kMaxThreads = 256;
constexpr int kChoiceThreads = 256;

// ---------------------------------------------------------------------------------------------------------
// Kernels

__device__ __forceinline__ unsigned long long expert_key(float v, int e) {
  uint32_t b = __float_as_uint(v);
  if (v != v) b = 0xff800000u;  // NaN ranks as -inf
  if (b == 0x80000000u) b = 0;  // -0 == +0
  const uint32_t ordered = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (static_cast<unsigned long long>(ordered) << 32) | (0xffffffffu - static_cast<uint32_t>(e));
}

__device__ __forceinline__ unsigned long long warp_max(unsigned long long v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const unsigned long long other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  return v;
}

// Dynamic shared memory: n_experts keys. Key 0 marks a taken expert (no real key is 0: the ordered bits of
// -inf are 0x007fffff).
__global__ void __launch_bounds__(kMaxThreads)
    router_topk_softmax_kernel(const float* __restrict__ logits, int n_experts, int k, int32_t* __restrict__ ids,
                               float* __restrict__ weights) {
  extern __shared__ unsigned long long keys[];
  __shared__ unsigned long long warp_best[kMaxThreads / 32];
  __shared__ int chosen[kRouterMaxK];
  const float* row = logits + static_cast<long long>(blockIdx.x) * n_experts;
  for (int e = threadIdx.x; e < n_experts; e += blockDim.x) keys[e] = expert_key(row[e], e);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  for (int r = 0; r < k; ++r) {
    __syncthreads();  // keys written or taken
    unsigned long long best = 0;
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) best = keys[e] > best ? keys[e] : best;
    best = warp_max(best);
    if (lane == 0) warp_best[warp] = best;
    __syncthreads();
    if (warp == 0) {
      best = warp_max(lane < n_warps ? warp_best[lane] : 0ull);
      if (lane == 0) {
        const int e = static_cast<int>(0xffffffffu - static_cast<uint32_t>(best));
        chosen[r] = e;
        keys[e] = 0;
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t* out_ids = ids + static_cast<long long>(blockIdx.x) * k;
    float* out_w = weights + static_cast<long long>(blockIdx.x) * k;
    const float m = row[chosen[0]];
    float sum = 0;
    for (int i = 0; i < k; ++i) {
      out_ids[i] = chosen[i];
      out_w[i] = static_cast<float>(exp(static_cast<double>(__fsub_rn(row[chosen[i]], m))));
      sum = __fadd_rn(sum, out_w[i]);
    }
    for (int i = 0; i < k; ++i) out_w[i] = __fdiv_rn(out_w[i], sum);
  }
}

__global__ void __launch_bounds__(kChoiceThreads)
    expert_choices_kernel(const int32_t* __restrict__ ids, const float* __restrict__ weights, int count,
                          const int32_t* __restrict__ slot_of_expert, ExpertChoice* __restrict__ choices, int n_experts) {
  const int i = blockIdx.x * kChoiceThreads + threadIdx.x;
  if (i >= count) return;
  const int32_t id = ids[i];
  int32_t slot = -1;
  if (id >= 0 && (n_experts < 0 || id < n_experts)) slot = slot_of_expert ? slot_of_expert[id] : id;
  choices[i] = ExpertChoice{slot, weights[i]};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Launchers

void router_topk_softmax(const float* logits, int n_tokens, int n_experts, int k, int32_t* ids, float* weights,
                         cudaStream_t stream) {
  if (n_tokens < 0 || n_experts < 1 || n_experts > kRouterMaxExperts || k < 1 || k > n_experts || k > kRouterMaxK)
    throw InputError("router_topk_softmax: n_tokens = " + std::to_string(n_tokens) + ", n_experts = " +
                     std::to_string(n_experts) + ", k = " + std::to_string(k) + "; needs n_tokens >= 0, 1 <= n_experts <= " +
                     std::to_string(kRouterMaxExperts) + " and 1 <= k <= min(n_experts, " + std::to_string(kRouterMaxK) +
                     ")");
  if (n_tokens == 0) return;
  int threads = (n_experts + 31) / 32 * 32;
  threads = threads > kMaxThreads ? kMaxThreads : threads;
  const size_t smem = static_cast<size_t>(n_experts) * sizeof(unsigned long long);
  router_topk_softmax_kernel<<<n_tokens, threads, smem, stream>>>(logits, n_experts, k, ids, weights);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

void expert_choices_from_topk(const int32_t* ids, const float* weights, int count, const int32_t* slot_of_expert,
                              ExpertChoice* choices, cudaStream_t stream, int n_experts) {
  if (count < 0 || n_experts < -1)
    throw InputError("expert_choices_from_topk: count = " + std::to_string(count) + ", n_experts = " +
                     std::to_string(n_experts) + "; needs count >= 0 and n_experts >= -1");
  if (count == 0) return;
  expert_choices_kernel<<<(count + kChoiceThreads - 1) / kChoiceThreads, kChoiceThreads, 0, stream>>>(
      ids, weights, count, slot_of_expert, choices, n_experts);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
