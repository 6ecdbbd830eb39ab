#include "src/engine/attention.h"

#include <algorithm>
#include <cmath>

namespace ossrun::engine {

void attention_rows(const AttentionShape& s, const AttentionBatch& b, int64_t r0, int64_t r1) {
  const int64_t d = s.head_dim;
  const int64_t q_dim = s.n_heads * d;
  const int64_t kv_dim = s.n_kv_heads * d;
  const int64_t group = s.n_heads / s.n_kv_heads;
  float acc[1024];  // head_dim <= 1024, checked by the session
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t i = r / s.n_heads, h = r % s.n_heads;
    const int64_t pos = b.pos0 + i;
    const int64_t kv_off = (h / group) * d;
    const float* q = b.q + i * q_dim + h * d;
    const int64_t first = s.window > 0 ? std::max<int64_t>(0, pos - s.window + 1) : 0;

    float m = b.sinks[h];  // the sink is a logit with no value vector
    float sum = 1.0f;      // exp(sink - m)
    std::fill(acc, acc + d, 0.0f);
    for (int64_t j = first; j <= pos; ++j) {
      const float* k = j < b.pos0 ? b.cache->k(j) : b.new_k + (j - b.pos0) * kv_dim;
      const float* v = j < b.pos0 ? b.cache->v(j) : b.new_v + (j - b.pos0) * kv_dim;
      k += kv_off;
      v += kv_off;
      float dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += q[c] * k[c];
      const float l = dot * s.scale;
      if (l > m) {  // rescale what was accumulated against the new max
        const float shrink = std::exp(m - l);
        sum *= shrink;
        for (int64_t c = 0; c < d; ++c) acc[c] *= shrink;
        m = l;
      }
      const float p = std::exp(l - m);
      sum += p;
      for (int64_t c = 0; c < d; ++c) acc[c] += p * v[c];
    }
    float* out = b.out + i * q_dim + h * d;
    const float inv = 1.0f / sum;
    for (int64_t c = 0; c < d; ++c) out[c] = acc[c] * inv;
  }
}

}  // namespace ossrun::engine
