// The seam at the experts on the GPU backend (architecture.md "The forward pass"): for n tokens whose
// normalized inputs x and router choices (ids, weights) are on the device,
//   residual[t] += sum_i weights[t, i] * expert_{ids[t, i]}(x[t])
// where an expert is gate_up, the clamped SwiGLU and down with its bias (gpt-oss.md §4 steps 3-6).
//
// The GPU forward pass (gpu_forward) only calls run(). Behind it: every expert resident on the GPU
// (resident_experts), or the hybrid offload (resident slices on the GPU, the others on the CPU from the
// mmap, concurrently). This is an internal header of the GPU backend (CUDA types allowed).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "src/engine/forward.h"

namespace ossrun::gpu {

struct GpuExpertBatch {
  int layer = 0;
  int n = 0;                         // tokens
  const float* x = nullptr;          // device (n, H): the post-attention RMSNorm output
  const int32_t* ids = nullptr;      // device (n, k): expert ids chosen by the router
  const float* weights = nullptr;    // device (n, k): softmax over the k chosen logits
  float* residual = nullptr;         // device (n, H): the MoE output is added to it
  cudaStream_t stream = nullptr;     // the compute stream; run() enqueues its GPU work here
};

class GpuExperts {
 public:
  virtual ~GpuExperts() = default;
  virtual void run(const GpuExpertBatch& b) = 0;
  // True when run() with n == 1 never synchronizes with the host and enqueues the same launches on every
  // call, so the decode step can be captured once into a CUDA graph and replayed.
  virtual bool graph_capturable() const = 0;
  // What runs where, for the user: "all 768 experts on the GPU".
  virtual std::string describe() const = 0;
  virtual uint64_t device_bytes() const = 0;  // GPU memory held (slots, tables, workspaces)
  virtual uint64_t host_bytes() const = 0;    // host memory allocated or pinned
  // (token, chosen expert) pairs since construction, and those served by an expert resident on the GPU.
  virtual uint64_t expert_calls() const = 0;
  virtual uint64_t expert_calls_gpu() const = 0;
  // Bytes moved and hand-off latency (the hybrid offload); zeros when every expert is resident.
  virtual engine::OffloadCounters offload_counters() const { return {}; }
};

}  // namespace ossrun::gpu
