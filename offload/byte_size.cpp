#include "offload/byte_size.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "src/model/error.h"

namespace ossrun::offload {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

uint64_t parse_byte_size(std::string_view text, std::string_view what) {
  auto fail = [&](const std::string& why) -> uint64_t {
    throw InputError(std::string(what) + ": \"" + std::string(text) + "\" is not a size (" + why +
                     "); write bytes or a number with K, M, G or T, e.g. 6G or 1.5G");
  };
  // The number: digits with at most one decimal point (no sign, no exponent).
  size_t end = 0;
  int dots = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) {
    dots += text[end] == '.';
    ++end;
  }
  if (text.empty()) return fail("empty");
  if (text[0] == '-') return fail("negative");
  if (end == 0 || dots > 1 || (end == 1 && dots == 1)) return fail("no number");
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
  if (ec != std::errc() || ptr != text.data() + end) return fail("no number");

  const std::string suffix = lower(text.substr(end));
  int shift = -1;
  const char* units[] = {"", "k", "m", "g", "t"};
  for (int i = 0; i < 5; ++i) {
    const std::string u = units[i];
    if (suffix == u || (i > 0 && (suffix == u + "b" || suffix == u + "ib")) || (i == 0 && suffix == "b")) shift = 10 * i;
  }
  if (shift < 0) return fail("unknown unit \"" + std::string(text.substr(end)) + "\"");
  const double bytes = std::ldexp(value, shift);
  if (!(bytes < 0x1p63)) return fail("more than 8 EiB");
  if (bytes != std::floor(bytes)) return fail("not a whole number of bytes");
  return static_cast<uint64_t>(bytes);
}

std::string format_bytes(uint64_t n) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  char buf[32];
  if (n < 1024) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
    return buf;
  }
  double v = n / 1024.0;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

}  // namespace ossrun::offload
