// What the program knows about the GPU, without any CUDA type: the CUDA build implements this in
// gpu_kernels/, a CPU-only build in device_none.cpp. A CUDA build on a machine with no GPU or no driver
// reports `present = false` with the reason, and everything runs on the CPU.
#pragma once
#include <cstdint>
#include <string>

namespace ossrun::gpu {

struct DeviceInfo {
  bool present = false;
  std::string reason;  // why not present ("built without CUDA", "no CUDA driver", ...)
  std::string name;
  int compute_major = 0, compute_minor = 0;
  uint64_t total_bytes = 0, free_bytes = 0;
};

// True when this binary was compiled with the CUDA backend.
bool built_with_cuda();
// Probes device 0 once and caches the answer.
const DeviceInfo& probe();
// A one-line description for start-up messages: "NVIDIA H100 (sm_90, 79.1 GiB free)" or the reason.
std::string describe(const DeviceInfo& d);

}  // namespace ossrun::gpu
