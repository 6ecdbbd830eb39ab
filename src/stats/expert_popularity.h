// Expert popularity per layer, from saved router statistics or a routing trace: the numbers behind
// `ossrun stats` (the heatmap and the text summary).
//
// share(l, e) is the estimated probability that a token routes to expert e in layer l; a layer's shares
// sum to k. Dividing by k gives the fraction of the layer's expert calls that e serves, which is what a
// GPU slot holding e would serve: the hit rate of a static cache of the N most popular experts is the sum of
// their fractions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "offload/router_stats.h"
#include "offload/trace.h"

namespace ossrun::stats {

struct ExpertPopularity {
  int layers = 0, experts = 0, k = 0;
  int64_t tokens = 0;              // tokens recorded
  double evidence_tokens = 0;      // decayed tokens behind the shares (= tokens without decay)
  std::vector<double> shares;      // (layers, experts)

  double share(int layer, int expert) const { return shares[static_cast<size_t>(layer) * experts + expert]; }
  double max_share() const;
};

// k: experts per token (config.json's num_experts_per_tok); 0: inferred from the shares (their sum per layer).
ExpertPopularity popularity_from_stats(const offload::RouterStats& s, int k = 0);
// Plain counts (no decay) of every token of the trace.
offload::RouterStats router_stats_from_trace(const offload::Trace& t);

struct LayerSummary {
  std::vector<int> order;          // experts by share, most popular first (ties: lower id first)
  double effective_experts = 0;    // exp(entropy) of the call fractions: E when uniform, 1 when one expert takes all
  double top4_fraction = 0;        // of the layer's expert calls served by its 4 most popular experts
  double hit_rate = 0;             // of a static cache holding its `slots` most popular experts
  bool empty = true;               // the layer has seen no token
};
LayerSummary summarize_layer(const ExpertPopularity& p, int layer, int slots);

}  // namespace ossrun::stats
