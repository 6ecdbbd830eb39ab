// The GPU probe of a CUDA build. The runtime is linked statically, so the binary starts on machines with no
// CUDA installation; cudaGetDeviceCount then reports the missing driver and ossrun runs on the CPU.
#include <cuda_runtime.h>

#include "src/gpu/device.h"

namespace ossrun::gpu {

bool built_with_cuda() { return true; }

const DeviceInfo& probe() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      d.reason = std::string("CUDA reports ") + cudaGetErrorString(err);
      cudaGetLastError();  // clear the sticky error so later calls are not confused by it
      return d;
    }
    if (n == 0) {
      d.reason = "no CUDA device found";
      return d;
    }
    cudaDeviceProp prop{};
    if ((err = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) {
      d.reason = std::string("cudaGetDeviceProperties failed: ") + cudaGetErrorString(err);
      return d;
    }
    size_t free_b = 0, total_b = 0;
    if ((err = cudaMemGetInfo(&free_b, &total_b)) != cudaSuccess) {
      d.reason = std::string("cudaMemGetInfo failed: ") + cudaGetErrorString(err);
      return d;
    }
    d.present = true;
    d.name = prop.name;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    d.total_bytes = total_b;
    d.free_bytes = free_b;
    return d;
  }();
  return info;
}

}  // namespace ossrun::gpu
