#include "src/tokenizer/utf8.h"

#include <cstdint>
#include <cstring>

namespace ossrun::utf8 {
namespace {

// The valid range of the second byte for a given lead byte (Unicode Table 3-7); the later bytes are 80..BF.
struct LeadInfo {
  unsigned char length;  // 0: not a lead byte
  unsigned char lo, hi;  // range of the second byte
};

LeadInfo lead_info(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// How many bytes of the sequence at s[i] are well-formed so far (the lead byte counts as one), up to its length.
size_t valid_prefix_length(std::string_view s, size_t i, const LeadInfo& info) {
  size_t n = 1;
  if (i + 1 >= s.size()) return n;
  unsigned char b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < info.lo || b1 > info.hi) return n;
  for (n = 2; n < info.length && i + n < s.size() && is_continuation(static_cast<unsigned char>(s[i + n])); ++n) {
  }
  return n;
}

}  // namespace

size_t sequence_length(std::string_view s, size_t i) {
  unsigned char b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  LeadInfo info = lead_info(b);
  if (info.length == 0) return 0;
  return valid_prefix_length(s, i, info) == info.length ? info.length : 0;
}

size_t ill_formed_length(std::string_view s, size_t i) {
  LeadInfo info = lead_info(static_cast<unsigned char>(s[i]));
  if (info.length == 0) return 1;
  return valid_prefix_length(s, i, info);  // a truncated sequence is replaced as one unit
}

char32_t decode(const unsigned char* p, size_t len) {
  switch (len) {
    case 1: return p[0];
    case 2: return (char32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    case 3: return (char32_t(p[0] & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    default:
      return (char32_t(p[0] & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
             (p[3] & 0x3F);
  }
}

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    // Eight ASCII bytes at a time.
    if (i + 8 <= s.size()) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len = sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    size_t len = sequence_length(s, i);
    if (len != 0) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      append(kReplacement, out);
      i += ill_formed_length(s, i);
    }
  }
  return out;
}

void append(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t incomplete_tail_length(std::string_view s) {
  // A completable sequence is at most 3 bytes short of its end: look at the last 3 bytes for its lead.
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    size_t i = n - back;
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (is_continuation(b)) continue;
    LeadInfo info = lead_info(b);
    if (info.length <= back) return 0;  // ASCII, an invalid lead, or a sequence that is already complete
    return valid_prefix_length(s, i, info) == back ? back : 0;
  }
  return 0;
}

}  // namespace ossrun::utf8
