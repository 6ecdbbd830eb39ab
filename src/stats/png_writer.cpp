#include "src/stats/png_writer.h"

#include <array>
#include <fstream>
#include <string>

#include "src/model/error.h"

namespace ossrun::stats {
namespace {

constexpr size_t kMaxStoredBlock = 65535;  // LEN is 16 bits

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[n] = c;
  }
  return t;
}

void put_u32_be(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void put_chunk(std::vector<uint8_t>& out, const char type[5], std::span<const uint8_t> data) {
  put_u32_be(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32_be(out, crc32(std::span<const uint8_t>(out.data() + type_at, 4 + data.size())));
}

// zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4).
std::vector<uint8_t> zlib_stored(std::span<const uint8_t> raw) {
  std::vector<uint8_t> z = {0x78, 0x01};  // deflate, 32K window; no preset dictionary; FCHECK makes 0x7801 % 31 == 0
  size_t at = 0;
  do {
    const size_t n = std::min(kMaxStoredBlock, raw.size() - at);
    const bool last = at + n == raw.size();
    z.push_back(last ? 1 : 0);  // BFINAL, BTYPE = 00 (stored); the rest of the byte pads to the boundary
    z.push_back(static_cast<uint8_t>(n)), z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n)), z.push_back(static_cast<uint8_t>(~n >> 8));
    z.insert(z.end(), raw.begin() + static_cast<ptrdiff_t>(at), raw.begin() + static_cast<ptrdiff_t>(at + n));
    at += n;
  } while (at < raw.size());
  put_u32_be(z, adler32(raw));
  return z;
}

}  // namespace

uint32_t crc32(std::span<const uint8_t> bytes, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (uint8_t b : bytes) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t adler32(std::span<const uint8_t> bytes) {
  constexpr uint32_t kMod = 65521;
  uint32_t a = 1, b = 0;
  for (uint8_t x : bytes) {
    a = (a + x) % kMod;
    b = (b + a) % kMod;
  }
  return b << 16 | a;
}

std::vector<uint8_t> encode_png(const RgbImage& image) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32_be(ihdr, static_cast<uint32_t>(image.width));
  put_u32_be(ihdr, static_cast<uint32_t>(image.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8 bits, truecolour RGB, deflate, adaptive filtering, no interlace
  put_chunk(out, "IHDR", ihdr);

  // Scanlines, each led by its filter type (0: none).
  const size_t row_bytes = static_cast<size_t>(image.width) * 3;
  std::vector<uint8_t> raw;
  raw.reserve((row_bytes + 1) * static_cast<size_t>(image.height));
  for (int y = 0; y < image.height; ++y) {
    raw.push_back(0);
    const auto row = image.pixels.begin() + static_cast<ptrdiff_t>(y * row_bytes);
    raw.insert(raw.end(), row, row + static_cast<ptrdiff_t>(row_bytes));
  }
  put_chunk(out, "IDAT", zlib_stored(raw));
  put_chunk(out, "IEND", {});
  return out;
}

void write_png(const std::filesystem::path& file, const RgbImage& image) {
  const std::vector<uint8_t> bytes = encode_png(image);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw InputError(file.string() + ": cannot write the PNG");
}

}  // namespace ossrun::stats
