#include "src/engine/attention.h"

#include <algorithm>
#include <cmath>

namespace ossrun::engine {
namespace {

constexpr int64_t kKeyBlock = 32;  // keys scored together before the softmax state is updated

// The online-softmax state of one query head over a range of keys, without the sink:
// m = max logit, l = sum exp(logit - m), acc = sum exp(logit - m) v (unnormalized).
// `out` = acc * exp(m - M) / (exp(sink - M) + l exp(m - M)) with M = max(m, sink): the sink joins here.
void finish_head(const float* acc, float m, float l, float sink, int64_t d, float* out) {
  const float M = std::max(m, sink);
  const float w = std::exp(m - M);  // 0 when no key was seen (m = -inf)
  const float inv = w / (std::exp(sink - M) + l * w);
  for (int64_t c = 0; c < d; ++c) out[c] = acc[c] * inv;
}

// Query i, KV head g, keys [j0, j1): the state of the group's G query heads into m (G), l (G), acc (G, d).
void attend(const AttentionShape& s, const AttentionBatch& b, int64_t i, int64_t g, int64_t j0, int64_t j1, float* m,
            float* l, float* acc) {
  const int64_t d = s.head_dim, G = s.n_heads / s.n_kv_heads, kv_dim = s.n_kv_heads * d;
  const float* q = b.q + i * s.n_heads * d + g * G * d;  // the group's heads are contiguous
  // q transposed to (d, G) and pre-scaled: the score loop below then runs across heads, which vectorizes.
  float qt[kMaxAttentionGroupFloats];
  for (int64_t h = 0; h < G; ++h)
    for (int64_t c = 0; c < d; ++c) qt[c * G + h] = q[h * d + c] * s.scale;
  std::fill(m, m + G, -INFINITY);
  std::fill(l, l + G, 0.0f);
  std::fill(acc, acc + G * d, 0.0f);

  float score[kKeyBlock * kMaxAttentionGroup];  // (block, G)
  for (int64_t jb = j0; jb < j1; jb += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, j1 - jb);
    // Scores of the block: (nb, G).
    for (int64_t t = 0; t < nb; ++t) {
      const int64_t j = jb + t;
      const float* k = (j < b.pos0 ? b.cache->k(j) : b.new_k + (j - b.pos0) * kv_dim) + g * d;
      float* sc = score + t * G;
      std::fill(sc, sc + G, 0.0f);
      for (int64_t c = 0; c < d; ++c) {
        const float kc = k[c];
        for (int64_t h = 0; h < G; ++h) sc[h] += qt[c * G + h] * kc;
      }
    }
    // A larger max rescales what was accumulated so far (once per block, not per key).
    for (int64_t h = 0; h < G; ++h) {
      float bm = m[h];
      for (int64_t t = 0; t < nb; ++t) bm = std::max(bm, score[t * G + h]);
      if (bm > m[h]) {
        const float r = std::exp(m[h] - bm);
        l[h] *= r;
        for (int64_t c = 0; c < d; ++c) acc[h * d + c] *= r;
        m[h] = bm;
      }
    }
    for (int64_t t = 0; t < nb; ++t) {
      const int64_t j = jb + t;
      const float* v = (j < b.pos0 ? b.cache->v(j) : b.new_v + (j - b.pos0) * kv_dim) + g * d;
      for (int64_t h = 0; h < G; ++h) {
        const float p = std::exp(score[t * G + h] - m[h]);
        l[h] += p;
        float* a = acc + h * d;
        for (int64_t c = 0; c < d; ++c) a[c] += p * v[c];
      }
    }
  }
}

}  // namespace

void attention_tasks(const AttentionShape& s, const AttentionBatch& b, int64_t t0, int64_t t1) {
  const int64_t d = s.head_dim, G = s.n_heads / s.n_kv_heads, S = b.segments;
  float m[kMaxAttentionGroup], l[kMaxAttentionGroup], acc[kMaxAttentionGroupFloats];
  for (int64_t task = t0; task < t1; ++task) {
    const int64_t i = task / (s.n_kv_heads * S), g = (task / S) % s.n_kv_heads, seg = task % S;
    const int64_t pos = b.pos0 + i;
    const int64_t first = s.window > 0 ? std::max<int64_t>(0, pos - s.window + 1) : 0;
    const int64_t keys = pos + 1 - first;
    const int64_t j0 = first + keys * seg / S, j1 = first + keys * (seg + 1) / S;
    attend(s, b, i, g, j0, j1, m, l, acc);
    for (int64_t h = 0; h < G; ++h) {
      const int64_t head = g * G + h;
      if (S == 1) {
        finish_head(acc + h * d, m[h], l[h], b.sinks[head], d, b.out + (i * s.n_heads + head) * d);
        continue;
      }
      float* p = b.partials + ((i * s.n_heads + head) * S + seg) * (d + 2);
      p[0] = m[h];
      p[1] = l[h];
      std::copy(acc + h * d, acc + (h + 1) * d, p + 2);
    }
  }
}

void attention_merge(const AttentionShape& s, const AttentionBatch& b) {
  if (b.segments == 1) return;
  const int64_t d = s.head_dim, S = b.segments;
  float acc[kMaxAttentionGroupFloats];
  for (int64_t r = 0; r < b.n * s.n_heads; ++r) {
    const float* p = b.partials + r * S * (d + 2);
    float m = -INFINITY;
    for (int64_t seg = 0; seg < S; ++seg) m = std::max(m, p[seg * (d + 2)]);
    float l = 0;
    std::fill(acc, acc + d, 0.0f);
    for (int64_t seg = 0; seg < S; ++seg) {
      const float* ps = p + seg * (d + 2);
      if (ps[0] == -INFINITY) continue;  // an empty segment
      const float w = std::exp(ps[0] - m);
      l += ps[1] * w;
      for (int64_t c = 0; c < d; ++c) acc[c] += ps[2 + c] * w;
    }
    finish_head(acc, m, l, b.sinks[r % s.n_heads], d, b.out + r * d);
  }
}

}  // namespace ossrun::engine
