// The gpt-oss forward pass on the GPU (gpt-oss.md §10): the same steps as src/engine/cpu_forward, with the
// dense weights (attention, router, norms, lm_head) and the bf16 KV cache in device memory and the experts
// behind the GpuExperts seam (all resident, or the hybrid offload).
//
// Decode (one token) enqueues no host synchronization: the token's embedding row (gathered on the host
// from the mmap, as the plan keeps the embedding table there) and its position are copied in, then one
// CUDA graph runs every layer, the final norm and lm_head; sampling runs on the device too, so a step
// costs the host one 4-byte copy back. Prefill runs the same layers on batches with the GEMM kernels.
//
// Numerics: activations, residual and accumulation in f32; K and V cached in bf16; GEMM inputs split into
// bf16 hi + lo (as the CPU's oneDNN path) so batches match decode to f32 accuracy.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gpu_kernels/attention_decode.cuh"
#include "gpu_kernels/bf16_gemm.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/sampling.cuh"
#include "src/engine/forward.h"
#include "src/gpu/gpu_backend.h"
#include "src/gpu/gpu_experts.cuh"
#include "src/gpu/pinned_array.cuh"
#include "src/gpu/uploader.cuh"
#include "src/model/checkpoint.h"

namespace ossrun::gpu {

class GpuForward : public engine::Forward {
 public:
  // experts: the placement of the experts (its constructor has uploaded what it keeps on the GPU).
  GpuForward(const Checkpoint& ck, const GpuForwardOptions& opt, Uploader& up, std::unique_ptr<GpuExperts> experts);
  ~GpuForward() override;

  void forward(const int32_t* ids, int64_t n, int64_t pos0) override;
  void logits(int64_t r0, int64_t r1, float* out) override;
  std::optional<int32_t> sample_last(const engine::SamplerOptions& opt, uint64_t step) override;

  const ModelConfig& config() const override { return config_; }
  int threads() const override { return threads_; }
  std::string describe() const override;
  uint64_t host_bytes() const override;
  uint64_t device_bytes() const override;
  // Graph replays do not call GpuExperts::run, so their (token, expert) pairs are counted here: all on the GPU.
  uint64_t expert_calls() const override { return experts_->expert_calls() + graph_expert_calls(); }
  uint64_t expert_calls_gpu() const override { return experts_->expert_calls_gpu() + graph_expert_calls(); }
  engine::OffloadCounters offload_counters() const override { return experts_->offload_counters(); }

 private:
  struct Layer {
    const uint16_t* input_norm;  // (H) bf16
    const uint16_t* qkv;         // (q_dim + 2 kv_dim, H) bf16: q rows, then k, then v
    const uint16_t* qkv_bias;    // (q_dim + 2 kv_dim) bf16
    const uint16_t* o;           // (H, q_dim) bf16
    const uint16_t* o_bias;      // (H) bf16
    const float* sinks;          // (n_heads) f32
    const uint16_t* post_norm;   // (H) bf16
    const uint16_t* router;      // (E, H) bf16
    const uint16_t* router_bias; // (E) bf16
    AttnShape attn;
    DeviceBuffer<uint16_t> k_cache, v_cache;  // (capacity, n_kv_heads, head_dim) bf16 each
  };

  void upload_dense(const Checkpoint& ck, Uploader& up);
  // Every layer for the n tokens whose embeddings are in x_ and positions in positions_.
  void enqueue_layers(int64_t n, int64_t pos0);
  // Final norm of row `row` of x_ and lm_head into dev_logits_ row 0 (one token).
  void enqueue_last_logits(int64_t row);
  void gather_embeddings(const int32_t* ids, int64_t n, int64_t pos0);
  uint64_t graph_expert_calls() const {
    return graph_replays_ * static_cast<uint64_t>(config_.num_experts_per_tok * config_.num_hidden_layers);
  }

  ModelConfig config_;
  int threads_ = 0;
  int64_t max_batch_ = 0;
  int64_t batch_n_ = 0;               // tokens of the last forward
  bool last_logits_ready_ = false;    // dev_logits_ row 0 holds the last row's logits (decode graph)
  const uint16_t* embed_ = nullptr;   // (V, H) bf16 on the host (mmap)
  std::unique_ptr<GpuExperts> experts_;
  cudaStream_t stream_ = nullptr;
  cudaGraphExec_t decode_graph_ = nullptr;
  uint64_t graph_replays_ = 0;  // decode steps run by replaying decode_graph_ (the first, captured, step included)

  DeviceBuffer<uint8_t> dense_;       // every dense weight, 256-byte aligned pieces
  std::vector<Layer> layers_;
  const uint16_t* final_norm_ = nullptr;  // (H) bf16
  const uint16_t* lm_head_ = nullptr;     // (V, H) bf16
  DeviceBuffer<float> rope_cos_, rope_sin_;  // (ctx, head_dim/2) f32, the YaRN concentration included
  int64_t rope_rows_ = 0;                     // ctx

  // Workspaces on the device, (max_batch, ...) f32 unless noted.
  DeviceBuffer<float> x_;        // (B, H) the residual stream
  DeviceBuffer<float> t_;        // (B, H) normalized input of the current block
  DeviceBuffer<float> q_, k_, v_;  // (B, q_dim), (B, kv_dim), (B, kv_dim); decode writes q|k|v into q_
  DeviceBuffer<float> attn_;     // (B, q_dim)
  DeviceBuffer<float> proj_;     // (B, H)
  DeviceBuffer<float> router_;   // (B, E)
  DeviceBuffer<int32_t> ids_;    // (B, k)
  DeviceBuffer<float> weights_;  // (B, k)
  DeviceBuffer<int32_t> positions_;  // (B)
  DeviceBuffer<float> dev_logits_;   // (kLogitRows, V)
  DeviceBuffer<int32_t> token_;      // (1) sampled token
  DeviceBuffer<uint64_t> draw_;      // (1) the sampler's counter
  std::unique_ptr<AttentionDecodeWorkspace> attn_ws_;
  std::unique_ptr<Bf16GemmWorkspace> gemm_ws_;
  std::unique_ptr<DeviceSampler> sampler_;

  // Pinned host staging.
  PinnedArray<float> host_x_;           // (B, H) embeddings of the batch
  PinnedArray<int32_t> host_positions_; // (B)
  PinnedArray<int32_t> host_token_;     // (1)
  PinnedArray<uint64_t> host_draw_;     // (1)
  cudaEvent_t inputs_copied_ = nullptr;  // the last H2D of host_x_/host_positions_ is done
};

}  // namespace ossrun::gpu
