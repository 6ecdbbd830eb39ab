// The KV cache of one attention layer: keys (after RoPE) and values in f32.
//
// Full-attention layers keep every position up to the session's context. Sliding-window layers keep a ring
// of `window` positions and never more (gpt-oss.md §5.4): the slot of position p is p % capacity.
//
// Why f32 and not bf16: the CPU engine is checked against a float64 reference and transformers' fp32
// goldens at 5e-3, and rounding K/V to bf16 spends a large part of that budget. The cost is small where it
// matters: at a 4k context the full layers of gpt-oss-20b hold 200 MB of f32 K/V against 3.7 GB of
// weights read per decoded token (~5%), and the sliding layers hold 128 positions each.
#pragma once
#include <cstdint>
#include <vector>

namespace ossrun::engine {

class LayerKvCache {
 public:
  LayerKvCache() = default;
  // capacity: positions kept (ctx for a full layer, min(window, ctx) for a sliding one).
  LayerKvCache(int64_t capacity, int64_t kv_dim);

  int64_t capacity() const { return capacity_; }
  int64_t kv_dim() const { return kv_dim_; }
  // Row of position `pos`; valid for the last `capacity` positions written.
  const float* k(int64_t pos) const { return k_.data() + (pos % capacity_) * kv_dim_; }
  const float* v(int64_t pos) const { return v_.data() + (pos % capacity_) * kv_dim_; }

  // Stores positions pos0 .. pos0+n-1 from k/v (n, kv_dim). A ring keeps only the last `capacity` of them.
  void store(const float* k, const float* v, int64_t n, int64_t pos0);

  uint64_t nbytes() const { return 2 * k_.size() * sizeof(float); }

 private:
  int64_t capacity_ = 0;
  int64_t kv_dim_ = 0;
  std::vector<float> k_;  // (capacity, kv_dim) f32
  std::vector<float> v_;  // (capacity, kv_dim) f32
};

}  // namespace ossrun::engine
