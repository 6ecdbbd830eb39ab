// The expert-popularity heatmap as a standalone SVG document (layout and colours: heatmap_layout.h).
// Every cell is a <rect class="cell"> with a tooltip naming the layer, the expert and its share.
#pragma once
#include <string>

#include "src/stats/expert_popularity.h"
#include "src/stats/heatmap_layout.h"

namespace ossrun::stats {

std::string render_heatmap_svg(const ExpertPopularity& p, const HeatmapOptions& options);

// Text escaped for XML content and attribute values (& < > " ').
std::string xml_escape(const std::string& text);

}  // namespace ossrun::stats
