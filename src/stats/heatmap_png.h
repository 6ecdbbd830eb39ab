// The expert-popularity heatmap as a raster image (same layout and colours as the SVG; labels in the
// 3x5 bitmap font at twice its size), for write_png.
#pragma once
#include "src/stats/expert_popularity.h"
#include "src/stats/heatmap_layout.h"
#include "src/stats/png_writer.h"

namespace ossrun::stats {

RgbImage render_heatmap_image(const ExpertPopularity& p, const HeatmapOptions& options);

}  // namespace ossrun::stats
