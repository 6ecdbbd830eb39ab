#include "src/stats/summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "src/stats/heatmap_layout.h"

namespace ossrun::stats {
namespace {

std::string printf_string(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

}  // namespace

std::string format_summary(const ExpertPopularity& p, const std::string& source, const SummaryOptions& options) {
  const int slots = std::clamp(options.slots, 0, p.experts);
  const int top = std::clamp(options.top, 0, p.experts);
  std::string out = "router statistics  " + source + "\n";
  out += printf_string("                   %d layers x %d experts, top-%d; %lld tokens recorded, %.0f tokens of evidence%s\n",
                       p.layers, p.experts, p.k, static_cast<long long>(p.tokens), p.evidence_tokens,
                       std::llround(p.evidence_tokens) == p.tokens ? "" : " after decay");
  const std::string hit = "hit@" + std::to_string(slots);
  out += printf_string("\nlayer  eff.experts   top-4  %6s   top %d experts (share of tokens routed to each)\n", hit.c_str(), top);
  double sum_effective = 0, sum_top4 = 0, sum_hit = 0;
  int counted = 0;
  for (int l = 0; l < p.layers; ++l) {
    const LayerSummary s = summarize_layer(p, l, slots);
    if (s.empty) {
      out += printf_string("%5d  no tokens\n", l);
      continue;
    }
    out += printf_string("%5d  %11.1f  %5.1f%%  %5.1f%%  ", l, s.effective_experts, 100 * s.top4_fraction, 100 * s.hit_rate);
    for (int r = 0; r < top; ++r) {
      const int e = s.order[static_cast<size_t>(r)];
      out += printf_string("%s%3d %5s", r ? "  " : "", e, percent(p.share(l, e)).c_str());
    }
    out += "\n";
    sum_effective += s.effective_experts, sum_top4 += s.top4_fraction, sum_hit += s.hit_rate;
    ++counted;
  }
  if (counted)
    out += printf_string(" mean  %11.1f  %5.1f%%  %5.1f%%\n", sum_effective / counted, 100 * sum_top4 / counted, 100 * sum_hit / counted);
  out += printf_string(
      "\neff.experts: exp(entropy) of the layer's expert calls (%d if routing were uniform, 1 if one expert took all);\n"
      "top-4: the calls its 4 most popular experts serve; hit@%d: the calls a GPU cache of its %d most popular\n"
      "experts would serve (static placement; --slots N changes N). Shares of tokens sum to k = %d per layer.\n",
      p.experts, slots, slots, p.k);
  return out;
}

}  // namespace ossrun::stats
