#include "offload/host_memory.h"

#include <sys/sysinfo.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace ossrun::offload {
namespace {

// The value of "Key:   123 kB" in bytes, nullopt when absent or malformed.
std::optional<uint64_t> meminfo_field(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':') continue;
    std::string_view rest = line.substr(key.size() + 1);
    size_t b = rest.find_first_not_of(' ');
    if (b == std::string_view::npos) return std::nullopt;
    rest = rest.substr(b);
    uint64_t kb = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), kb);
    if (ec != std::errc() || kb > (UINT64_MAX >> 10)) return std::nullopt;
    std::string_view unit = rest.substr(ptr - rest.data());
    if (unit != " kB") return std::nullopt;
    return kb << 10;
  }
  return std::nullopt;
}

}  // namespace

std::optional<HostMemory> parse_meminfo(std::string_view text) {
  auto total = meminfo_field(text, "MemTotal");
  auto available = meminfo_field(text, "MemAvailable");
  if (!total || !available) return std::nullopt;
  return HostMemory{*total, std::min(*available, *total)};
}

HostMemory read_host_memory() {
  std::ifstream in("/proc/meminfo");
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    if (auto m = parse_meminfo(ss.str())) return *m;
  }
  struct sysinfo si {};
  if (sysinfo(&si) != 0) return {};
  const uint64_t unit = si.mem_unit ? si.mem_unit : 1;
  return HostMemory{si.totalram * unit, (si.freeram + si.bufferram) * unit};
}

uint64_t default_ram_budget(const HostMemory& m) {
  const uint64_t headroom = std::max<uint64_t>(2ull << 30, m.total_bytes / 8);
  return m.available_bytes > headroom ? m.available_bytes - headroom : 0;
}

uint64_t default_vram_budget(uint64_t gpu_free_bytes, uint64_t gpu_total_bytes) {
  const uint64_t headroom = std::max<uint64_t>(512ull << 20, gpu_total_bytes / 32);
  return gpu_free_bytes > headroom ? gpu_free_bytes - headroom : 0;
}

}  // namespace ossrun::offload
