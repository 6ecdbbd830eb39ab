// attention_prefill: a batch of queries at consecutive positions against the bf16 KV cache of one layer
// (gpt-oss.md §5.2: GQA, causal or sliding window, sinks in the softmax denominator). Flash-style: tiles of
// keys stream through shared memory while every (query, query head) row keeps an online softmax in f32.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/kv_cache.cuh"

namespace ossrun::gpu {

// Simt: f32 FMAs, one thread per (query, query head) row. Mma: tensor cores (mma.sync bf16, sm_80+), q and p
// split into two bf16 halves each so the error stays near the SIMT kernel's.
enum class AttentionPrefillKernel : int { Simt, Mma };

// q: (n, n_heads*head_dim) f32 at positions pos0 .. pos0+n-1; the cache (capacity, n_kv_heads, head_dim)
// bf16 already holds every key they see (the batch's own keys were stored first), so full layers need
// pos0 + n <= capacity and sliding layers capacity >= min(pos0 + n, window - 1 + n). sinks: (n_heads) f32.
// out: (n, n_heads*head_dim) f32. q, out and the caches 16-byte aligned. Throws InputError (before any
// launch) for shapes or positions the cache or the kernel cannot take.
void attention_prefill(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, const float* sinks, int n,
                       int pos0, const AttnShape& s, float* out, cudaStream_t stream,
                       AttentionPrefillKernel kernel = AttentionPrefillKernel::Mma);

}  // namespace ossrun::gpu
