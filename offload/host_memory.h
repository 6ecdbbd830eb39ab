// How much memory the machine can give ossrun, for budgets the user did not set (`--ram`, `--vram`).
// Both keep headroom: the page cache behind the mmap'd experts, the desktop, other processes (RAM); the
// CUDA context's later growth, cuBLAS handles, CUDA graphs and allocator rounding (VRAM).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ossrun::offload {

struct HostMemory {
  uint64_t total_bytes = 0;      // MemTotal
  uint64_t available_bytes = 0;  // MemAvailable: free + reclaimable page cache, the kernel's own estimate
};

// Parses /proc/meminfo text ("MemTotal:  32768000 kB" lines). nullopt when MemTotal or MemAvailable is
// missing or malformed (kernels before 3.14 lack MemAvailable).
std::optional<HostMemory> parse_meminfo(std::string_view text);

// /proc/meminfo, else sysinfo(2) (free + buffer RAM as "available"). Never throws.
HostMemory read_host_memory();

// RAM left to the plan: available minus max(2 GiB, total / 8), or 0.
uint64_t default_ram_budget(const HostMemory& m);

// VRAM left to the plan: the GPU's free memory minus max(512 MiB, total / 32), or 0.
uint64_t default_vram_budget(uint64_t gpu_free_bytes, uint64_t gpu_total_bytes);

}  // namespace ossrun::offload
