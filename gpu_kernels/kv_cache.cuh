// The bf16 KV cache of one attention layer on the GPU, and the shape every attention launcher takes.
//
// Layout (one layer): K and V each (capacity, n_kv_heads, head_dim) bf16, rounded to nearest even from f32;
// position p lives in row p % capacity. Full layers: capacity = ctx. Sliding layers: capacity =
// min(ctx, window - 1 + max_batch), so a prefill batch can store all its keys before attending and its
// earliest query still sees its whole window (gpt-oss.md §5.4).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu {

struct AttnShape {
  int n_heads;     // query heads; head h reads KV head h / (n_heads / n_kv_heads) (gpt-oss.md §5.1)
  int n_kv_heads;
  int head_dim;    // 16, 32, 64 or 128
  float scale;     // 1/sqrt(head_dim); the YaRN concentration is already in q and k
  int window;      // sliding window: query i sees keys i - window < j <= i; 0 = full (causal) attention
  int capacity;    // rows of the cache
};

// Query heads per KV head the kernels take (gpt-oss: 8).
constexpr int kAttnMaxGroup = 16;

// Throws InputError naming `who` unless: heads positive, n_heads a multiple of n_kv_heads with at most
// kAttnMaxGroup query heads per KV head, head_dim one of 16/32/64/128, scale finite and positive,
// window >= 0, capacity positive and (sliding layers) at least window.
void validate_attn_shape(const AttnShape& s, const char* who);

// Stores k/v (n, n_kv_heads*head_dim) f32 of positions positions[0..n) (device int32) into the cache rows
// positions[t] % capacity of k_cache/v_cache (capacity, n_kv_heads, head_dim) bf16. The positions are read
// on the device; n <= capacity (so no two of a batch of distinct consecutive positions share a row); a
// negative position stores nothing. k, v and the caches 16-byte aligned.
void kv_store_bf16(const float* k, const float* v, const int32_t* positions, int n, const AttnShape& s,
                   uint16_t* k_cache, uint16_t* v_cache, cudaStream_t stream);

}  // namespace ossrun::gpu
