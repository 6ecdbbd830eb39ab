// The memory plan: what lives on the GPU, what in RAM, what stays behind the mmap, decided from the
// config, the budgets, the context and the prefill chunk before anything is loaded (`ossrun plan`).
//
// GPU, when there is one and a VRAM budget:
//  - dense weights: attention (q/k/v/o with biases, sinks), router, norms, lm_head. The embedding table
//    stays in host memory behind the mmap: a token needs one row (hidden x 2 bytes), gathered on the host
//    and uploaded with the token, so its 1.08 GiB would be VRAM spent for nothing. lm_head is read whole
//    every token, so it is on the GPU. (A tied embedding is lm_head, and so on the GPU.)
//  - the KV cache, bf16 K and V: full-attention layers keep the context; sliding-window layers keep
//    window - 1 + chunk positions (a prefill chunk writes all its keys while its first query still needs
//    the window before it), never more than the context.
//  - workspaces: fp32 activations of one prefill chunk, one token's logits, fixed kernel scratch.
//  - expert slots: the rest, in whole slices, spread over layers to maximise expected hits (below).
// RAM (the budget counts memory ossrun pins, allocates or locks; the page cache behind the mmap is the
// kernel's to reclaim and is not counted):
//  - pinned staging for uploads (two slices: one filling while one is copied) and for the activations
//    exchanged with CPU-computed experts; the CPU experts' workspace (dequantized tiles for prefill);
//  - CPU-only plans: the KV cache and activations, then the dense weights locked when they fit;
//  - locked hot experts (mlock of their mmap'd pages), the hottest of those not on the GPU.
// Behind the mmap, read on demand: the embedding table, every other expert, unlocked dense weights.
//
// Per-layer slots: with router statistics, each layer has a popularity curve (expected hits per token of
// its n most popular experts); the sum over layers of expected hits is maximised by giving slots one at a
// time to the layer whose next slot gains most, which is optimal because the curves are concave (shares
// sorted in decreasing order). Without statistics every expert is assumed equally likely and the same
// rule spreads slots uniformly. Locked RAM experts continue the same greedy after the GPU's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/model/config.h"

namespace ossrun::offload {

struct PlanRequest {
  ModelConfig config;
  uint64_t vram_budget = 0;  // 0: no GPU, a CPU-only plan
  uint64_t ram_budget = 0;
  int64_t context = 8192;        // tokens of context the KV cache holds
  int64_t prefill_chunk = 512;   // tokens per forward step in prefill (capped at the context)
  // Optional (layers, experts): probability that a token routes to each expert (RouterStats::share), and
  // the tokens of evidence behind it (RouterStats::routed_tokens); shares are blended with the uniform
  // distribution as if that had been seen kPriorTokens times, so little evidence moves little.
  std::vector<std::vector<double>> expert_share;
  double stats_tokens = 0;
};
constexpr double kPriorTokens = 256;

struct GpuPlacement {
  uint64_t budget = 0;
  uint64_t attention = 0, router = 0, norms = 0, lm_head = 0, embedding = 0;  // dense weights
  uint64_t kv_cache = 0;
  uint64_t workspace = 0;
  uint64_t experts = 0;  // all slots

  uint64_t dense() const { return attention + router + norms + lm_head + embedding; }
  uint64_t used() const { return dense() + kv_cache + workspace + experts; }
  bool operator==(const GpuPlacement&) const = default;
};

struct HostPlacement {
  uint64_t budget = 0;
  uint64_t pinned_staging = 0;  // upload staging and the CPU experts' activation exchange (GPU plans)
  uint64_t workspace = 0;       // CPU activations and dequantized tiles
  uint64_t kv_cache = 0;        // CPU-only plans
  uint64_t locked_dense = 0;    // CPU-only plans, when the dense weights fit
  uint64_t locked_experts = 0;

  uint64_t used() const { return pinned_staging + workspace + kv_cache + locked_dense + locked_experts; }
  bool operator==(const HostPlacement&) const = default;
};

struct MappedPlacement {  // behind the mmap, in the page cache when touched
  uint64_t embedding = 0, dense = 0, experts = 0;
  bool operator==(const MappedPlacement&) const = default;
};

struct LayerPlacement {
  LayerType type = LayerType::FullAttention;
  int64_t kv_positions = 0;
  uint64_t kv_bytes = 0;
  int gpu_slots = 0;
  int locked_experts = 0;
  int mapped_experts = 0;
  double gpu_hit_rate = 0;     // expected fraction of routed experts found in the GPU slots
  double locked_hit_rate = 0;  // ... among the locked RAM experts
  bool operator==(const LayerPlacement&) const = default;
};

struct MemoryPlan {
  bool cpu_only = false;
  bool from_router_stats = false;  // hit rates from statistics (else: uniform routing assumed)
  int64_t context = 0, prefill_chunk = 0;
  int experts_per_layer = 0, experts_per_token = 0;
  uint64_t expert_slice_bytes = 0;
  GpuPlacement gpu;
  HostPlacement host;
  MappedPlacement mapped;
  std::vector<LayerPlacement> layers;

  int gpu_slots() const;
  int locked_experts() const;
  double gpu_hit_rate() const;     // mean over layers
  double locked_hit_rate() const;
  bool operator==(const MemoryPlan&) const = default;
};

// Throws InputError when the request is malformed (context outside 1..max_position_embeddings, a bad
// expert_share) or a budget cannot hold the required part; the message gives the numbers and says what
// would fit (a smaller context, or CPU-only and what it needs).
MemoryPlan plan_memory(const PlanRequest& request);

// The workspace terms, exposed for the engine (which allocates what the plan reserved) and the tests.
uint64_t gpu_workspace_bytes(const ModelConfig& c, int64_t chunk);
uint64_t host_workspace_bytes(const ModelConfig& c, int64_t chunk, bool cpu_only);
uint64_t pinned_staging_bytes(const ModelConfig& c, int64_t chunk, uint64_t expert_slice_bytes);
// KV positions a layer keeps for this context and chunk.
int64_t kv_positions(const ModelConfig& c, int layer, int64_t context, int64_t chunk);

}  // namespace ossrun::offload
