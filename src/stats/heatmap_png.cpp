#include "src/stats/heatmap_png.h"

#include <string>

#include "src/stats/bitmap_font.h"

namespace ossrun::stats {
namespace {

constexpr int kScale = 2;
constexpr int kTextH = kGlyphH * kScale;
constexpr Rgb kInk{0x22, 0x22, 0x22}, kGrey{0x55, 0x55, 0x55}, kFrame{0x88, 0x88, 0x88};

void fill(RgbImage& img, int x, int y, int w, int h, Rgb c) {
  for (int j = y; j < y + h; ++j)
    for (int i = x; i < x + w; ++i) img.set(i, j, c.r, c.g, c.b);
}

// Text centred on x (horizontally), its top at y.
void draw_centred(RgbImage& img, int x, int y, const std::string& text, Rgb c) {
  draw_text(img, x - text_width(text, kScale) / 2, y, text, kScale, c);
}

}  // namespace

RgbImage render_heatmap_image(const ExpertPopularity& p, const HeatmapOptions& options) {
  const HeatmapLayout g = layout_heatmap(p);
  RgbImage img(g.width, g.height);
  const double max_share = p.max_share();
  draw_text(img, g.left, 8, "Expert popularity: " + options.title, kScale, kInk);
  draw_text(img, g.left, 28, heatmap_subtitle(p, options.order), kScale, kGrey);

  for (int l = 0; l < p.layers; ++l) {
    const std::vector<int> experts = row_experts(p, l, options.order);
    for (int col = 0; col < p.experts; ++col) {
      const double share = p.share(l, experts[static_cast<size_t>(col)]);
      fill(img, g.left + col * g.cell_w, g.top + l * g.cell_h, g.cell_w, g.cell_h,
           heat_colour(max_share > 0 ? share / max_share : 0));
    }
  }

  for (int col = 0; col < p.experts; col += g.x_tick_every)
    draw_centred(img, g.left + col * g.cell_w + g.cell_w / 2, g.top + g.grid_h + 5, std::to_string(col), kInk);
  for (int l = 0; l < p.layers; l += g.y_tick_every) {
    const std::string label = std::to_string(l);
    draw_text(img, g.left - 6 - text_width(label, kScale), g.top + l * g.cell_h + (g.cell_h - kTextH) / 2, label, kScale, kInk);
  }
  draw_centred(img, g.left + g.grid_w / 2, g.top + g.grid_h + 24, x_axis_label(options.order), kInk);
  draw_text(img, g.left - 44, g.top + g.grid_h / 2 + text_width("layer", kScale) / 2, "layer", kScale, kInk, /*vertical=*/true);

  // The colour scale: 0 at the bottom, the largest share at the top, framed.
  fill(img, g.legend_x - 1, g.top - 1, g.legend_w + 2, g.grid_h + 2, kFrame);
  for (int y = 0; y < g.grid_h; ++y)
    fill(img, g.legend_x, g.top + y, g.legend_w, 1, heat_colour(1.0 - (y + 0.5) / g.grid_h));
  for (int i = 0; i <= 4; ++i)
    draw_text(img, g.legend_x + g.legend_w + 4, g.top + g.grid_h - g.grid_h * i / 4 - kTextH / 2, percent(max_share * i / 4),
              kScale, kInk);
  draw_text(img, g.legend_x, g.top - 18, "of tokens", kScale, kInk);
  return img;
}

}  // namespace ossrun::stats
