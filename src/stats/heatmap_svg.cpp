#include "src/stats/heatmap_svg.h"

#include <sstream>

namespace ossrun::stats {

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_heatmap_svg(const ExpertPopularity& p, const HeatmapOptions& options) {
  const HeatmapLayout g = layout_heatmap(p);
  const double max_share = p.max_share();
  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << g.width << "\" height=\"" << g.height << "\" viewBox=\"0 0 "
    << g.width << ' ' << g.height << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    << "<text x=\"" << g.left << "\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Expert popularity: "
    << xml_escape(options.title) << "</text>\n"
    << "<text x=\"" << g.left << "\" y=\"40\" fill=\"#444444\">" << xml_escape(heatmap_subtitle(p, options.order)) << "</text>\n";

  // The cells, row by row.
  s << "<g shape-rendering=\"crispEdges\">\n";
  for (int l = 0; l < p.layers; ++l) {
    const std::vector<int> experts = row_experts(p, l, options.order);
    for (int col = 0; col < p.experts; ++col) {
      const int e = experts[static_cast<size_t>(col)];
      const double share = p.share(l, e);
      s << "<rect class=\"cell\" x=\"" << g.left + col * g.cell_w << "\" y=\"" << g.top + l * g.cell_h << "\" width=\""
        << g.cell_w << "\" height=\"" << g.cell_h << "\" fill=\"" << hex(heat_colour(max_share > 0 ? share / max_share : 0))
        << "\"><title>layer " << l << ", expert " << e << ": " << percent(share) << " of tokens</title></rect>\n";
    }
  }
  s << "</g>\n";

  // Axes: tick labels, then the axis names.
  for (int col = 0; col < p.experts; col += g.x_tick_every)
    s << "<text x=\"" << g.left + col * g.cell_w + g.cell_w / 2 << "\" y=\"" << g.top + g.grid_h + 14
      << "\" text-anchor=\"middle\">" << col << "</text>\n";
  for (int l = 0; l < p.layers; l += g.y_tick_every)
    s << "<text x=\"" << g.left - 6 << "\" y=\"" << g.top + l * g.cell_h + g.cell_h / 2 + 4 << "\" text-anchor=\"end\">" << l
      << "</text>\n";
  s << "<text x=\"" << g.left + g.grid_w / 2 << "\" y=\"" << g.top + g.grid_h + 34 << "\" text-anchor=\"middle\">"
    << xml_escape(x_axis_label(options.order)) << "</text>\n"
    << "<text transform=\"translate(" << g.left - 36 << ' ' << g.top + g.grid_h / 2
    << ") rotate(-90)\" text-anchor=\"middle\">layer</text>\n";

  // The colour scale: a vertical gradient from 0 (bottom) to the largest share (top).
  s << "<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n";
  for (int i = 0; i <= 8; ++i)
    s << "<stop offset=\"" << i / 8.0 << "\" stop-color=\"" << hex(heat_colour(i / 8.0)) << "\"/>\n";
  s << "</linearGradient></defs>\n"
    << "<rect x=\"" << g.legend_x << "\" y=\"" << g.top << "\" width=\"" << g.legend_w << "\" height=\"" << g.grid_h
    << "\" fill=\"url(#scale)\" stroke=\"#888888\"/>\n";
  for (int i = 0; i <= 4; ++i)
    s << "<text x=\"" << g.legend_x + g.legend_w + 4 << "\" y=\"" << g.top + g.grid_h - g.grid_h * i / 4 + 4 << "\">"
      << percent(max_share * i / 4) << "</text>\n";
  s << "<text x=\"" << g.legend_x << "\" y=\"" << g.top - 8 << "\">of tokens</text>\n"
    << "</svg>\n";
  return s.str();
}

}  // namespace ossrun::stats
