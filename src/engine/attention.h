// Causal grouped-query attention with attention sinks and an optional sliding window (gpt-oss.md §5.2),
// for a batch of n queries at consecutive positions pos0 .. pos0+n-1.
//
// Keys and values before pos0 come from the layer's KV cache; the batch's own keys and values come from
// new_k/new_v, so a batch longer than a sliding layer's ring still sees every key it needs. The caller
// stores the batch into the cache after the attention (LayerKvCache::store).
//
// Per query head h at position i: l_j = scale * q . k_j over the visible j (i - window < j <= i, or j <= i
// on full layers); w_j = exp(l_j) / (exp(sink_h) + sum exp(l_j')); out = sum w_j v_j.
//
// Work: one task per (query, KV head) computes all the query heads of that group in one pass over the
// keys, so each key and value row is read once per group, not once per head. The softmax runs online in
// f32 over blocks of keys. Decode (one query) may split the keys of each pair into segments so every
// thread has work; the segments' partial states are merged afterwards (attention_merge), sink included.
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

// Limits of the CPU attention's stack buffers: query heads per KV head, and that times head_dim
// (gpt-oss: 8 and 8 x 64 = 512).
constexpr int64_t kMaxAttentionGroup = 64;
constexpr int64_t kMaxAttentionGroupFloats = 4096;

struct AttentionBatch {
  const float* q = nullptr;      // (n, n_heads*head_dim) after RoPE
  const float* new_k = nullptr;  // (n, n_kv_heads*head_dim) after RoPE
  const float* new_v = nullptr;  // (n, n_kv_heads*head_dim)
  int64_t n = 0;
  int64_t pos0 = 0;              // position of the first query; the cache holds the positions before it
  const LayerKvCache* cache = nullptr;
  const float* sinks = nullptr;  // (n_heads) f32
  float* out = nullptr;          // (n, n_heads*head_dim)
  int64_t segments = 1;          // key segments per (query, KV head); > 1 needs `partials`
  float* partials = nullptr;     // (n, n_heads, segments, head_dim + 2) f32 when segments > 1
};

// Floats of `partials` for n queries split into `segments` (0 when segments == 1).
inline int64_t attention_partial_floats(const AttentionShape& s, int64_t n, int64_t segments) {
  return segments > 1 ? n * s.n_heads * segments * (s.head_dim + 2) : 0;
}

// Runs tasks [t0, t1) of the n * n_kv_heads * segments tasks; tasks are independent, so any split across
// threads gives the same result. With segments == 1 the output is final; otherwise call attention_merge.
void attention_tasks(const AttentionShape& s, const AttentionBatch& b, int64_t t0, int64_t t1);
inline int64_t attention_task_count(const AttentionShape& s, const AttentionBatch& b) {
  return b.n * s.n_kv_heads * b.segments;
}

// Combines the segments' partial states into `out` (does nothing when segments == 1).
void attention_merge(const AttentionShape& s, const AttentionBatch& b);

}  // namespace ossrun::engine
