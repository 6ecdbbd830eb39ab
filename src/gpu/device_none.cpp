// The GPU probe of a CPU-only build.
#include "src/gpu/device.h"

namespace ossrun::gpu {

bool built_with_cuda() { return false; }

const DeviceInfo& probe() {
  static const DeviceInfo info{false, "this ossrun was built without CUDA", "", 0, 0, 0, 0};
  return info;
}

}  // namespace ossrun::gpu
