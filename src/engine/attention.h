// Causal grouped-query attention with attention sinks and an optional sliding window (gpt-oss.md §5.2),
// for a batch of n queries at consecutive positions pos0 .. pos0+n-1.
//
// Keys and values before pos0 come from the layer's KV cache; the batch's own keys and values come from
// new_k/new_v, so a batch longer than a sliding layer's ring still sees every key it needs. The caller
// stores the batch into the cache after the attention (LayerKvCache::store).
//
// Per query head h at position i: l_j = scale * q . k_j over the visible j (i - window < j <= i, or j <= i
// on full layers); w_j = exp(l_j) / (exp(sink_h) + sum exp(l_j')); out = sum w_j v_j. The softmax runs
// online in f32 (running max seeded with the sink, as OpenAI's triton and metal kernels do).
#pragma once
#include <cstdint>

#include "src/engine/kv_cache.h"

namespace ossrun::engine {

struct AttentionShape {
  int64_t n_heads = 0;     // query heads
  int64_t n_kv_heads = 0;  // query head h reads KV head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;
  float scale = 0;         // 1/sqrt(head_dim); the YaRN concentration is already in q and k
  int64_t window = 0;      // sliding window (keys i-window < j <= i); 0 for full attention
};

struct AttentionBatch {
  const float* q = nullptr;      // (n, n_heads*head_dim) after RoPE
  const float* new_k = nullptr;  // (n, n_kv_heads*head_dim) after RoPE
  const float* new_v = nullptr;  // (n, n_kv_heads*head_dim)
  int64_t n = 0;
  int64_t pos0 = 0;              // position of the first query; the cache holds the positions before it
  const LayerKvCache* cache = nullptr;
  const float* sinks = nullptr;  // (n_heads) f32
  float* out = nullptr;          // (n, n_heads*head_dim)
};

// Computes the output rows r in [r0, r1), where row r is (query r / n_heads, head r % n_heads); rows are
// independent, so any split of [0, n*n_heads) across threads gives the same result.
void attention_rows(const AttentionShape& s, const AttentionBatch& b, int64_t r0, int64_t r1);

}  // namespace ossrun::engine
