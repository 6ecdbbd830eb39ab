#include "src/engine/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace ossrun::engine {

LayerKvCache::LayerKvCache(int64_t capacity, int64_t kv_dim)
    : capacity_(capacity),
      kv_dim_(kv_dim),
      k_(static_cast<size_t>(capacity * kv_dim)),
      v_(static_cast<size_t>(capacity * kv_dim)) {}

void LayerKvCache::store(const float* k, const float* v, int64_t n, int64_t pos0) {
  const int64_t first = std::max<int64_t>(0, n - capacity_);  // earlier rows would be overwritten anyway
  const size_t row_bytes = static_cast<size_t>(kv_dim_) * sizeof(float);
  for (int64_t i = first; i < n; ++i) {
    const int64_t slot = (pos0 + i) % capacity_;
    std::memcpy(k_.data() + slot * kv_dim_, k + i * kv_dim_, row_bytes);
    std::memcpy(v_.data() + slot * kv_dim_, v + i * kv_dim_, row_bytes);
  }
}

}  // namespace ossrun::engine
