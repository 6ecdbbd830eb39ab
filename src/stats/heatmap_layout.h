// What the SVG and PNG heatmaps share: the colour scale, the geometry (cells, margins, legend) and the
// labels, so both images show the same thing.
//
// Rows are layers (0 at the top), columns experts: by id, or (sorted) by popularity rank within each layer.
// A cell's colour is its share (the probability that a token routes to that expert), from 0 to the largest
// share of the map, on a viridis-like scale.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/stats/expert_popularity.h"

namespace ossrun::stats {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};
// t in [0, 1] (clamped): dark purple, blue, teal, green, yellow.
Rgb heat_colour(double t);
std::string hex(Rgb c);  // "#21918c"

enum class ExpertOrder { ById, ByShare };

struct HeatmapOptions {
  std::string title;            // e.g. the model directory
  ExpertOrder order = ExpertOrder::ById;
};

struct HeatmapLayout {
  int cell_w = 0, cell_h = 0;
  int left = 0, top = 0;        // the grid's top-left corner
  int grid_w = 0, grid_h = 0;
  int legend_x = 0, legend_w = 0;  // the colour bar, right of the grid, as tall as the grid
  int width = 0, height = 0;
  int x_tick_every = 1, y_tick_every = 1;
};
HeatmapLayout layout_heatmap(const ExpertPopularity& p);

// The experts of row `layer`, column by column.
std::vector<int> row_experts(const ExpertPopularity& p, int layer, ExpertOrder order);

std::string heatmap_subtitle(const ExpertPopularity& p, ExpertOrder order);  // tokens of evidence, shape, order
std::string x_axis_label(ExpertOrder order);
std::string percent(double share);  // "12.3%"

}  // namespace ossrun::stats
