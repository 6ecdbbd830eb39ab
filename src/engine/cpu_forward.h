// The gpt-oss forward pass on the CPU (gpt-oss.md §10), for a batch of tokens at consecutive positions.
//
// One batch code path serves prefill (many tokens: q/k/v/o and router projections share each chunk of
// weight rows across the batch, the MoE is grouped by expert) and decode (one token against the KV cache).
// Every buffer is sized at construction from the config, the context and the largest batch; a forward
// call allocates nothing and creates no thread.
//
// Numerics: activations, residual and accumulation in f32; norms and softmaxes in f32; K/V cached in f32.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/engine/attention.h"
#include "src/engine/cpu_experts.h"
#include "src/engine/forward.h"
#include "src/engine/kv_cache.h"
#include "src/engine/linear.h"
#include "src/engine/rope.h"
#include "src/model/checkpoint.h"

namespace ossrun::engine {

struct CpuForwardOptions {
  int64_t ctx = 0;        // positions the KV cache holds
  int64_t max_batch = 0;  // most tokens per forward call
  int threads = 0;        // <= 0: one per core
  cpu::Isa isa = cpu::Isa::Scalar;
};

class CpuForward : public Forward {
 public:
  CpuForward(const Checkpoint& ck, const CpuForwardOptions& opt);

  // Runs ids[0..n) (n <= max_batch, valid token ids) at positions pos0 .. pos0+n-1 through every layer and
  // stores their keys and values. The cache must hold positions 0 .. pos0-1 from earlier calls.
  void forward(const int32_t* ids, int64_t n, int64_t pos0) override;
  // Final norm and lm_head for rows [r0, r1) of the last forward's batch: out (r1-r0, vocab).
  void logits(int64_t r0, int64_t r1, float* out) override;

  const ModelConfig& config() const override { return config_; }
  int threads() const override { return workers_.threads(); }
  cpu::Isa isa() const { return ctx_.kernels->isa; }
  std::string describe() const override;
  uint64_t kv_cache_bytes() const;
  // Host memory this object allocated: KV cache, workspaces and the matmul scratch (not the mmap'd weights).
  uint64_t host_bytes() const override;
  // (token, chosen expert) pairs computed since construction.
  uint64_t expert_calls() const override { return expert_calls_; }

 private:
  struct Layer {
    const uint16_t* input_norm = nullptr;  // (H) bf16
    DenseWeight q, k, v, o;                // (q_dim, H), (kv_dim, H), (kv_dim, H), (H, q_dim) with biases
    std::vector<float> sinks;              // (n_heads) f32
    const uint16_t* post_norm = nullptr;   // (H) bf16
    DenseWeight router;                    // (E, H) with bias
    AttentionShape attn;                   // window set on sliding layers
    LayerKvCache cache;
  };

  // lm_head rows per matmul (bounds the matmul's output scratch at 2 x 16 x vocab floats).
  static constexpr int64_t kLogitRowsPerMatmul = 16;
  // Decode attention splits keys into at most this many segments of at least kMinSegmentKeys keys.
  static constexpr int64_t kMaxDecodeSegments = 32;
  static constexpr int64_t kMinSegmentKeys = 128;
  int64_t decode_segments(const AttentionShape& a, int64_t pos) const;

  ModelConfig config_;
  Workers workers_;
  std::unique_ptr<SplitMatmul> matmul_;  // batches of at least kMinMatmulTokens; null for smaller max_batch
  CpuContext ctx_;
  RopeFrequencies rope_;
  const uint16_t* embed_ = nullptr;       // (V, H) bf16
  const uint16_t* final_norm_ = nullptr;  // (H) bf16
  DenseWeight lm_head_;                   // (V, H)
  std::vector<Layer> layers_;
  std::unique_ptr<Experts> experts_;
  int64_t max_batch_ = 0;
  int64_t batch_n_ = 0;  // tokens of the last forward
  uint64_t expert_calls_ = 0;

  // Workspaces, (max_batch, ...) f32 unless noted.
  std::vector<float> x_;          // (B, H) the residual stream
  std::vector<float> t_;          // (B, H) normalized input of the current block
  std::vector<float> q_;          // (B, q_dim)
  std::vector<float> k_, v_;      // (B, kv_dim)
  std::vector<float> attn_;       // (B, q_dim) attention output, heads concatenated
  std::vector<float> proj_;       // (B, H) o_proj output, then the experts' output
  std::vector<float> router_;     // (B, E) router logits
  std::vector<int32_t> ids_;      // (B, k) chosen experts
  std::vector<float> weights_;    // (B, k) their softmax weights
  std::vector<float> cos_, sin_;  // (B, head_dim/2) RoPE tables of the batch's positions
  std::vector<float> partials_;   // (n_heads, kMaxDecodeSegments, head_dim + 2) decode attention segments
};

}  // namespace ossrun::engine
