// A generation session: the CPU forward pass, its KV cache and the position, for one sequence.
//
//   Session s(checkpoint, {.ctx = 4096, .threads = 8});
//   auto last = s.prefill(prompt_ids);     // logits of the last prompt token (vocab floats)
//   auto next = s.decode(sampled_id);      // logits after one more token
//
// Token ids are checked against the vocabulary and the context; a bad id or a full context is an
// InputError naming the id or the sizes. Returned spans stay valid until the next call.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "src/engine/forward.h"
#include "src/engine/sampler.h"
#include "src/model/checkpoint.h"

namespace ossrun::engine {

// Where the forward pass runs. Auto: the GPU when this build has CUDA and a GPU is present (the whole model
// when it fits the VRAM budget, otherwise the hybrid offload), the CPU otherwise.
enum class Backend { Auto, Cpu, Gpu };

struct SessionOptions {
  int64_t ctx = 4096;                 // most positions (prompt + generated); at most max_position_embeddings
  int threads = 0;                    // <= 0: one per core
  std::optional<cpu::Isa> isa;        // kernel variant; default: cpu::default_isa()
  int64_t prefill_batch = 512;        // tokens per prefill step (more tokens per expert amortize its dequantization)
  Backend backend = Backend::Auto;
  uint64_t vram_budget = 0;           // bytes of GPU memory ossrun may use; 0: the GPU's free memory less headroom
  uint64_t ram_budget = 0;            // bytes of RAM ossrun may pin, allocate or lock; 0: available less headroom
  std::string policy = "router";      // expert-cache policy of the hybrid offload: static, lru, lfu, router
  // Where the hybrid offload puts experts (gpu::HybridPlacement): "cache" (the plan's per-layer slots, refilled
  // by the policy), "cpu-only" (attention on the GPU, every expert on the CPU), "static-layers" (the first N
  // layers' experts on the CPU, all of the others' on the GPU, N as small as the budget allows).
  std::string expert_placement = "cache";
  std::filesystem::path trace;        // non-empty: record every token's routing there (GPU backend)
  std::function<void(const LoadProgress&)> on_progress;  // called while loading; may be empty
};

// What the session uses and how its experts were served, for /stats and start-up lines.
struct SessionReport {
  std::string placement;            // describe()
  uint64_t vram_bytes = 0;          // GPU memory the session holds
  uint64_t ram_bytes = 0;           // host memory the session allocated (KV cache, workspaces, pinned buffers)
  uint64_t expert_calls = 0;        // (token, chosen expert) pairs computed since the session began
  uint64_t expert_calls_gpu = 0;    // of which by an expert resident on the GPU
  OffloadCounters offload;          // the hybrid offload's bytes and hand-off (zeros elsewhere)
};

class Session {
 public:
  Session(const Checkpoint& ck, const SessionOptions& opt = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Appends ids to the sequence and returns the logits after the last of them (ids non-empty).
  std::span<const float> prefill(std::span<const int32_t> ids);
  // Same, calling on_logits(position, logits) for every id in order.
  using LogitsFn = std::function<void(int64_t position, std::span<const float> logits)>;
  void prefill(std::span<const int32_t> ids, const LogitsFn& on_logits);
  // Appends one id and returns the logits after it.
  std::span<const float> decode(int32_t id);

  // Generation with the sampler inside the session (on the GPU when the model runs there, so no logits
  // cross the bus): set the sampling options, then prefill_next / decode_next append ids as prefill / decode
  // do and return the token drawn from the logits after the last of them. The draws of one seed are
  // reproducible on one backend; the CPU and the GPU use different random streams (greedy is identical).
  void set_sampler(const SamplerOptions& opt);
  int32_t prefill_next(std::span<const int32_t> ids);
  int32_t decode_next(int32_t id);

  // Forgets the sequence (position 0); keeps every buffer.
  void reset() { position_ = 0; }
  int64_t position() const { return position_; }
  int64_t ctx() const { return ctx_; }
  int64_t vocab_size() const;
  int threads() const;
  const ModelConfig& config() const;
  // "CPU: all 24 layers, avx2 kernels, 2 threads, mxfp4 experts on the CPU", or the GPU's placement
  std::string describe() const;
  SessionReport report() const;

 private:
  void check(std::span<const int32_t> ids) const;
  // on_logits null: only the logits after the last id, into logits_.
  void run_chunks(std::span<const int32_t> ids, const LogitsFn* on_logits, bool want_logits);
  int32_t sample_last();

  std::unique_ptr<Forward> forward_;
  SamplerOptions sampling_;
  std::optional<Sampler> sampler_;  // the host sampler, when the backend does not sample itself
  uint64_t draws_ = 0;
  int64_t last_n_ = 0;  // tokens of the last forward call
  int64_t ctx_ = 0;
  int64_t batch_ = 0;
  int64_t position_ = 0;
  std::vector<float> logits_;  // (rows_per_pass, vocab)
};

}  // namespace ossrun::engine
