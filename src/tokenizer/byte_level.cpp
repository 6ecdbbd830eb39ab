#include "src/tokenizer/byte_level.h"

#include <array>

namespace ossrun {
namespace {

bool maps_to_itself(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

struct ByteLevelTables {
  std::array<char32_t, 256> code_point{};
  std::array<int16_t, 0x144> byte_of{};  // code point -> byte, -1 when not in the alphabet (all are < U+0144)

  ByteLevelTables() {
    byte_of.fill(-1);
    unsigned next = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
      code_point[b] = maps_to_itself(b) ? b : next++;
      byte_of[code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables t;
  return t;
}

}  // namespace

char32_t byte_level_code_point(unsigned char b) { return tables().code_point[b]; }

void append_byte_level(std::string_view bytes, std::string& out) {
  const auto& cp = tables().code_point;
  for (unsigned char b : bytes) {
    char32_t c = cp[b];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {  // every code point of the alphabet is below U+0800: two UTF-8 bytes
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
}

std::optional<std::string> bytes_from_byte_level(std::string_view text) {
  const auto& byte_of = tables().byte_of;
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    unsigned char c0 = static_cast<unsigned char>(text[i]);
    char32_t cp;
    if (c0 < 0x80) {
      cp = c0;
      i += 1;
    } else if ((c0 & 0xE0) == 0xC0 && i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      cp = (char32_t(c0 & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
      if (cp < 0x80) return std::nullopt;  // overlong
      i += 2;
    } else {
      return std::nullopt;  // three- and four-byte characters are outside the alphabet
    }
    if (cp >= byte_of.size() || byte_of[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(byte_of[cp]));
  }
  return out;
}

}  // namespace ossrun
