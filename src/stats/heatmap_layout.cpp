#include "src/stats/heatmap_layout.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ossrun::stats {
namespace {

// Anchors of the viridis colour map at t = 0, 1/4, 1/2, 3/4, 1 (linear in between).
constexpr Rgb kAnchors[] = {{0x44, 0x01, 0x54}, {0x3b, 0x52, 0x8b}, {0x21, 0x91, 0x8c}, {0x5e, 0xc9, 0x62}, {0xfd, 0xe7, 0x25}};

// Ticks every 1, 2, 4, 8, ... so that at most `most` labels fit.
int tick_every(int n, int most) {
  int every = 1;
  while (n / every > most) every *= 2;
  return every;
}

}  // namespace

Rgb heat_colour(double t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  auto mix = [&](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * f)); };
  return {mix(kAnchors[i].r, kAnchors[i + 1].r), mix(kAnchors[i].g, kAnchors[i + 1].g), mix(kAnchors[i].b, kAnchors[i + 1].b)};
}

std::string hex(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

HeatmapLayout layout_heatmap(const ExpertPopularity& p) {
  HeatmapLayout l;
  l.cell_w = std::clamp(960 / std::max(1, p.experts), 3, 24);
  l.cell_h = std::clamp(480 / std::max(1, p.layers), 3, 20);
  l.left = 64;
  l.top = 64;
  l.grid_w = l.cell_w * p.experts;
  l.grid_h = l.cell_h * p.layers;
  l.legend_x = l.left + l.grid_w + 24;
  l.legend_w = 16;
  l.width = std::max(l.legend_x + l.legend_w + 84, 480);
  l.height = l.top + l.grid_h + 56;
  l.x_tick_every = tick_every(p.experts, std::max(1, l.grid_w / 28));
  l.y_tick_every = tick_every(p.layers, std::max(1, l.grid_h / 14));
  return l;
}

std::vector<int> row_experts(const ExpertPopularity& p, int layer, ExpertOrder order) {
  if (order == ExpertOrder::ByShare) return summarize_layer(p, layer, 0).order;
  std::vector<int> ids(static_cast<size_t>(p.experts));
  for (int e = 0; e < p.experts; ++e) ids[static_cast<size_t>(e)] = e;
  return ids;
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * share);
  return buf;
}

std::string heatmap_subtitle(const ExpertPopularity& p, ExpertOrder order) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%d layers x %d experts, top-%d; %lld tokens of evidence; %s", p.layers, p.experts, p.k,
                static_cast<long long>(std::llround(p.evidence_tokens)),
                order == ExpertOrder::ById ? "experts by id" : "experts sorted by share in each layer");
  return buf;
}

std::string x_axis_label(ExpertOrder order) {
  return order == ExpertOrder::ById ? "expert id" : "expert rank in the layer (most popular first)";
}

}  // namespace ossrun::stats
