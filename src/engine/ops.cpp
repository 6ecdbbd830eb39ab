#include "src/engine/ops.h"

#include <cmath>

#include "src/model/bf16.h"

namespace ossrun::engine {

void rmsnorm(const float* x, const uint16_t* w, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * bf16_to_float(w[i]);
}

void router_topk_softmax(const float* logits, int64_t n_experts, int64_t k, int32_t* ids, float* weights) {
  // Insertion into a list kept sorted descending; a later expert only displaces on a strictly larger
  // logit, so equal logits keep the lower index first (OpenAI's metal top-k does the same).
  int64_t filled = 0;
  for (int64_t e = 0; e < n_experts; ++e) {
    const float l = logits[e];
    if (filled == k && !(l > logits[ids[k - 1]])) continue;
    int64_t at = filled < k ? filled++ : k - 1;
    while (at > 0 && l > logits[ids[at - 1]]) {
      ids[at] = ids[at - 1];
      --at;
    }
    ids[at] = static_cast<int32_t>(e);
  }
  const float m = logits[ids[0]];
  float sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += weights[i] = std::exp(logits[ids[i]] - m);
  for (int64_t i = 0; i < k; ++i) weights[i] /= sum;
}

}  // namespace ossrun::engine
