// Grid sizing for persistent kernels: as many CTAs as fit on the device at once (occupancy x SM count),
// computed once per kernel and device, with the kernel's dynamic shared-memory limit raised first.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace ossrun::gpu {

// CTAs of `threads` threads and `dynamic_smem` bytes that fit on the current device at once (at least 1).
// Sets cudaFuncAttributeMaxDynamicSharedMemorySize when dynamic_smem exceeds the default 48 KiB.
int resident_ctas(const void* kernel, int threads, size_t dynamic_smem);

}  // namespace ossrun::gpu
