// A minimal PNG encoder: 8-bit RGB, no filtering, the zlib stream made of stored (uncompressed) deflate
// blocks, with our own CRC-32 and Adler-32. Heatmaps are small, so size does not matter, and no zlib is
// needed. Spec: PNG (ISO/IEC 15948) chunks IHDR, IDAT, IEND; RFC 1950 (zlib), RFC 1951 §3.2.4 (stored).
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace ossrun::stats {

// An RGB image, rows top to bottom.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3)

  RgbImage(int w, int h, uint8_t fill = 255) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 3, fill) {}
  void set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;  // drawing clips at the edges
    uint8_t* p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  }
};

uint32_t crc32(std::span<const uint8_t> bytes, uint32_t crc = 0);  // the PNG/zlib CRC (reflected 0xEDB88320)
uint32_t adler32(std::span<const uint8_t> bytes);

std::vector<uint8_t> encode_png(const RgbImage& image);
// Throws InputError naming the file when it cannot be written.
void write_png(const std::filesystem::path& file, const RgbImage& image);

}  // namespace ossrun::stats
