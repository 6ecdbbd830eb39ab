// One backend's forward pass, as the session drives it: CpuForward (src/engine) or the GPU backend
// (src/gpu: every weight on the GPU, or the hybrid offload). The session owns exactly one.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "src/engine/sampler.h"
#include "src/model/config.h"

namespace ossrun::engine {

// Loading progress, for a progress bar: `done` of `total` bytes of `what` ("uploading dense weights").
struct LoadProgress {
  std::string what;
  uint64_t done = 0, total = 0;
};

// What the hybrid offload moved since construction (zeros for the other placements): /stats, bench hybrid.
struct OffloadCounters {
  uint64_t gpu_expert_bytes = 0;  // expert weights read by GPU kernels
  uint64_t cpu_expert_bytes = 0;  // expert weights read by the CPU
  uint64_t pcie_up_bytes = 0;     // host -> device: expert uploads, CPU results, choices
  uint64_t pcie_down_bytes = 0;   // device -> host: router choices, activations
  uint64_t expert_uploads = 0;    // expert slices uploaded
  uint64_t disk_read_bytes = 0;   // /proc/self/io read_bytes (page-cache misses) while the offload ran
  double handoff_cpu_ms = 0;      // decode, per layer with CPU experts: D2H ready -> CPU done (mean)
  double handoff_total_ms = 0;    // ... D2H ready -> the CPU result added on the GPU (mean)
};

class Forward {
 public:
  virtual ~Forward() = default;
  // Runs ids[0..n) (1 <= n <= the largest batch; valid token ids) at positions pos0 .. pos0+n-1 through
  // every layer and stores their keys and values; the cache holds positions 0 .. pos0-1 from earlier calls.
  virtual void forward(const int32_t* ids, int64_t n, int64_t pos0) = 0;
  // Final norm and lm_head for rows [r0, r1) of the last forward's batch into out (r1-r0, vocab), on the host.
  virtual void logits(int64_t r0, int64_t r1, float* out) = 0;
  // The next token drawn from the last row of the last forward's batch (its logits computed here), when the backend samples itself
  // (on the GPU: no logits cross the bus); nullopt when the caller should sample from logits().
  // `step` numbers the draws of a sequence (the random stream's counter).
  virtual std::optional<int32_t> sample_last(const SamplerOptions& opt, uint64_t step) {
    (void)opt, (void)step;
    return std::nullopt;
  }

  virtual const ModelConfig& config() const = 0;
  virtual int threads() const = 0;
  virtual std::string describe() const = 0;  // what runs where
  virtual uint64_t host_bytes() const = 0;   // host memory allocated or pinned (not the mmap'd weights)
  virtual uint64_t device_bytes() const { return 0; }
  // (token, chosen expert) pairs computed since construction, and those computed on the GPU.
  virtual uint64_t expert_calls() const = 0;
  virtual uint64_t expert_calls_gpu() const { return 0; }
  virtual OffloadCounters offload_counters() const { return {}; }
};

}  // namespace ossrun::engine
