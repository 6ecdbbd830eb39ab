#include <cstdio>

#include "src/gpu/device.h"

namespace ossrun::gpu {

std::string describe(const DeviceInfo& d) {
  if (!d.present) return "no GPU: " + d.reason;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.1f GiB free of %.1f GiB)", d.name.c_str(), d.compute_major, d.compute_minor,
                d.free_bytes / double(1ull << 30), d.total_bytes / double(1ull << 30));
  return buf;
}

}  // namespace ossrun::gpu
