#include "offload/trace_synth.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "offload/rng.h"
#include "src/model/error.h"

namespace ossrun::offload {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw InputError("synthetic trace: " + what);
}

// One layer's popularity state.
struct LayerPopularity {
  std::vector<int> expert_at_rank;  // (E) permutation: rank -> expert
  std::vector<double> boost;        // (E) burst factor per expert (1 outside bursts)
  std::vector<double> weight;       // (E) current sampling weight per expert
};

}  // namespace

SyntheticTrace generate_synthetic_trace_scored(const SyntheticTraceParams& p) {
  validate_trace_shape(p.shape);
  check(p.tokens >= 1, "tokens must be at least 1, found " + std::to_string(p.tokens));
  check(std::isfinite(p.skew) && p.skew >= 0 && p.skew <= 8, "skew must be in [0, 8], found " + std::to_string(p.skew));
  check(p.drift >= 0 && p.drift <= 1, "drift must be a probability in [0, 1], found " + std::to_string(p.drift));
  check(p.segment_tokens >= 1, "segment_tokens must be at least 1, found " + std::to_string(p.segment_tokens));
  check(p.burst_experts >= 0 && p.burst_experts <= p.shape.experts,
        "burst_experts must be in [0, experts], found " + std::to_string(p.burst_experts));
  check(std::isfinite(p.burst_boost) && p.burst_boost >= 1, "burst_boost must be >= 1, found " + std::to_string(p.burst_boost));
  check(p.oracle_slots >= 0 && p.oracle_slots <= p.shape.experts,
        "oracle_slots must be in [0, experts], found " + std::to_string(p.oracle_slots));

  const int L = p.shape.layers, E = p.shape.experts, k = p.shape.k;
  SplitMix64 rng(p.seed);
  std::vector<double> rank_weight(E);
  for (int r = 0; r < E; ++r) rank_weight[r] = std::pow(static_cast<double>(r + 1), -p.skew);

  std::vector<LayerPopularity> layers(L);
  for (auto& lp : layers) {
    lp.expert_at_rank.resize(E);
    std::iota(lp.expert_at_rank.begin(), lp.expert_at_rank.end(), 0);
    for (int i = E - 1; i > 0; --i) std::swap(lp.expert_at_rank[i], lp.expert_at_rank[rng.below(i + 1)]);
    lp.boost.assign(E, 1.0);
    lp.weight.resize(E);
  }
  auto reweigh = [&](LayerPopularity& lp) {
    for (int r = 0; r < E; ++r) lp.weight[lp.expert_at_rank[r]] = rank_weight[r] * lp.boost[lp.expert_at_rank[r]];
  };
  auto start_segment = [&] {
    for (auto& lp : layers) {
      std::fill(lp.boost.begin(), lp.boost.end(), 1.0);
      for (int b = 0; b < p.burst_experts; ++b) lp.boost[rng.below(E)] = p.burst_boost;
      reweigh(lp);
    }
  };

  SyntheticTrace out{Trace(p.shape)};
  Trace& trace = out.trace;
  trace.reserve(p.tokens);
  std::vector<uint16_t> ids(static_cast<size_t>(p.shape.ids_per_token()));
  std::vector<double> w(E);
  std::vector<int> by_weight(E);
  std::vector<uint8_t> in_oracle(E);
  int64_t oracle_hits = 0;
  const double segment_end_probability = 1.0 / p.segment_tokens;
  start_segment();
  for (int64_t t = 0; t < p.tokens; ++t) {
    if (t > 0 && rng.uniform() < segment_end_probability) start_segment();
    for (int l = 0; l < L; ++l) {
      LayerPopularity& lp = layers[l];
      if (E > 1 && rng.uniform() < p.drift) {
        const size_t r = rng.below(E - 1);
        std::swap(lp.expert_at_rank[r], lp.expert_at_rank[r + 1]);
        reweigh(lp);
      }
      if (p.oracle_slots > 0) {  // the experts of highest weight right now (ties: lower id)
        std::iota(by_weight.begin(), by_weight.end(), 0);
        std::partial_sort(by_weight.begin(), by_weight.begin() + p.oracle_slots, by_weight.end(),
                          [&](int a, int b) { return lp.weight[a] > lp.weight[b] || (lp.weight[a] == lp.weight[b] && a < b); });
        std::fill(in_oracle.begin(), in_oracle.end(), 0);
        for (int i = 0; i < p.oracle_slots; ++i) in_oracle[by_weight[i]] = 1;
      }
      // k draws without replacement: a drawn expert's weight is zeroed in the copy.
      w = lp.weight;
      double total = std::accumulate(w.begin(), w.end(), 0.0);
      for (int i = 0; i < k; ++i) {
        double u = rng.uniform() * total;
        int pick = -1;
        for (int e = 0; e < E; ++e) {
          if (w[e] == 0) continue;
          pick = e;  // the last positive weight absorbs rounding at the top end
          if (u < w[e]) break;
          u -= w[e];
        }
        ids[static_cast<size_t>(l) * k + i] = static_cast<uint16_t>(pick);
        oracle_hits += in_oracle[pick];
        total -= w[pick];
        w[pick] = 0;
      }
    }
    trace.append_token(ids);
  }
  out.oracle_hit_rate = static_cast<double>(oracle_hits) / (static_cast<double>(p.tokens) * L * k);
  return out;
}

}  // namespace ossrun::offload
