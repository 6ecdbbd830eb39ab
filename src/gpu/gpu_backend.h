// The GPU backend seen from the session, without CUDA types: the forward pass with attention, norms,
// router and lm_head on the GPU, and the experts either all resident on the GPU (the model fits the VRAM
// budget) or split by the hybrid offload. A CPU-only build implements this in gpu_backend_none.cpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "src/engine/forward.h"
#include "src/model/checkpoint.h"

namespace ossrun::gpu {

struct GpuForwardOptions {
  int64_t ctx = 0;            // positions the KV cache holds
  int64_t max_batch = 0;      // most tokens per forward call (prefill chunk)
  int threads = 0;            // CPU threads for experts computed on the CPU (hybrid); <= 0: one per core
  uint64_t vram_budget = 0;   // bytes of GPU memory to use; 0: the free memory less headroom
  uint64_t ram_budget = 0;    // bytes of RAM to pin, allocate or lock; 0: available less headroom
  std::string policy = "router";
  std::string expert_placement = "cache";  // gpu::HybridPlacement by name: cache, cpu-only, static-layers
  std::filesystem::path trace;             // non-empty: record every token's routing there (hybrid offload)
  std::function<void(const engine::LoadProgress&)> on_progress;
};

// Why the GPU backend cannot run `ck` with `opt` on this machine ("built without CUDA", "no GPU: ...",
// "bf16 experts are not supported on the GPU"), or nullopt when it can.
std::optional<std::string> gpu_unavailable_reason(const Checkpoint& ck, const GpuForwardOptions& opt);

// Throws InputError with the reason when gpu_unavailable_reason is set, or when the budgets cannot hold
// the dense part (the message says what would fit).
std::unique_ptr<engine::Forward> make_gpu_forward(const Checkpoint& ck, const GpuForwardOptions& opt);

// The device's memory bandwidth as a device-to-device copy of a buffer much larger than L2 sees it (bytes
// read plus written per second, median of `reps`): the ceiling GPU figures are given beside.
// Throws InputError when the GPU backend is not available.
double measure_copy_gbps(int reps = 10);

}  // namespace ossrun::gpu
