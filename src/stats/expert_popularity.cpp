#include "src/stats/expert_popularity.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ossrun::stats {

double ExpertPopularity::max_share() const { return shares.empty() ? 0 : *std::max_element(shares.begin(), shares.end()); }

ExpertPopularity popularity_from_stats(const offload::RouterStats& s, int k) {
  ExpertPopularity p;
  p.layers = s.layers();
  p.experts = s.experts();
  p.tokens = s.tokens();
  p.shares.resize(static_cast<size_t>(p.layers) * p.experts);
  double sum_first_seen_layer = 0;
  for (int l = 0; l < p.layers; ++l) {
    p.evidence_tokens = std::max(p.evidence_tokens, s.routed_tokens(l));
    double sum = 0;
    for (int e = 0; e < p.experts; ++e) sum += p.shares[static_cast<size_t>(l) * p.experts + e] = s.share(l, e);
    if (sum_first_seen_layer == 0) sum_first_seen_layer = sum;
  }
  p.k = k > 0 ? k : std::max(1, static_cast<int>(std::lround(sum_first_seen_layer)));
  return p;
}

offload::RouterStats router_stats_from_trace(const offload::Trace& t) {
  const offload::TraceShape& shape = t.shape();
  offload::RouterStats s(shape.layers, shape.experts, offload::RouterStats::kNoDecay);
  std::vector<int> ids(static_cast<size_t>(shape.k));
  for (int64_t token = 0; token < t.tokens(); ++token) {
    for (int l = 0; l < shape.layers; ++l) {
      const auto row = t.ids(token, l);
      std::copy(row.begin(), row.end(), ids.begin());
      s.record(l, ids);
    }
    s.end_token();
  }
  return s;
}

LayerSummary summarize_layer(const ExpertPopularity& p, int layer, int slots) {
  LayerSummary out;
  out.order.resize(static_cast<size_t>(p.experts));
  std::iota(out.order.begin(), out.order.end(), 0);
  std::stable_sort(out.order.begin(), out.order.end(), [&](int a, int b) { return p.share(layer, a) > p.share(layer, b); });
  double total = 0;
  for (int e = 0; e < p.experts; ++e) total += p.share(layer, e);
  if (!(total > 0)) return out;
  out.empty = false;
  double entropy = 0;
  for (int e = 0; e < p.experts; ++e) {
    const double f = p.share(layer, e) / total;
    if (f > 0) entropy -= f * std::log(f);
  }
  out.effective_experts = std::exp(entropy);
  for (int r = 0; r < p.experts; ++r) {
    const double f = p.share(layer, out.order[static_cast<size_t>(r)]) / total;
    if (r < 4) out.top4_fraction += f;
    if (r < slots) out.hit_rate += f;
  }
  return out;
}

}  // namespace ossrun::stats
