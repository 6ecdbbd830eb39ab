// A 3x5-pixel bitmap font for the labels of the PNG heatmap: digits, letters (lower case drawn as upper
// case) and the punctuation the labels use; any other character is drawn as '?'.
#pragma once
#include <string_view>

#include "src/stats/heatmap_layout.h"
#include "src/stats/png_writer.h"

namespace ossrun::stats {

constexpr int kGlyphW = 3, kGlyphH = 5;

// Draws text with its top-left corner at (x, y), each font pixel a scale x scale square, glyphs one font pixel
// apart. vertical: rotated 90 degrees counter-clockwise, reading upwards from (x, y) as the bottom-left.
void draw_text(RgbImage& img, int x, int y, std::string_view text, int scale, Rgb colour, bool vertical = false);
// Width in image pixels of text drawn horizontally.
inline int text_width(std::string_view text, int scale) { return static_cast<int>(text.size()) * (kGlyphW + 1) * scale; }

}  // namespace ossrun::stats
