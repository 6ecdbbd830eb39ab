#include "src/engine/cpu_forward.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "src/engine/ops.h"
#include "src/model/bf16.h"
#include "src/model/error.h"

namespace ossrun::engine {

CpuForward::CpuForward(const Checkpoint& ck, const CpuForwardOptions& opt)
    : config_(ck.config()), workers_(opt.threads), max_batch_(opt.max_batch) {
  const ModelConfig& c = config_;
  const int64_t group = c.num_attention_heads / c.num_key_value_heads;
  if (group > kMaxAttentionGroup || group * c.head_dim > kMaxAttentionGroupFloats)
    throw InputError("attention shape " + std::to_string(group) + " query heads per KV head x head_dim " +
                     std::to_string(c.head_dim) + " is beyond the CPU attention's limits (" +
                     std::to_string(kMaxAttentionGroup) + " heads, " + std::to_string(kMaxAttentionGroupFloats) + " floats)");
  ctx_.kernels = &cpu::kernels(opt.isa);
  ctx_.workers = &workers_;
  if (max_batch_ >= kMinMatmulTokens) {
    // Inputs: (rows, K) for K in {H, q_dim, I}; outputs: (rows, N) for N in {q_dim, H, 2I, E}, and lm_head's
    // (kLogitRowsPerMatmul, V). Expert groups are padded to 16 rows.
    const int64_t rows = (max_batch_ + 15) / 16 * 16;
    const int64_t widest = std::max({c.hidden_size, c.q_dim(), 2 * c.intermediate_size, c.num_local_experts});
    matmul_ = std::make_unique<SplitMatmul>(rows * widest, std::max(rows * widest, kLogitRowsPerMatmul * c.vocab_size));
    ctx_.matmul = matmul_.get();
  }
  rope_ = rope_frequencies(c.rope, c.head_dim);

  const ModelWeights& w = ck.weights();
  embed_ = w.embed.bf16_data();
  final_norm_ = w.final_norm.bf16_data();
  lm_head_ = dense_weight(w.lm_head);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    Layer& L = layers_.emplace_back();
    L.input_norm = lw.input_norm.bf16_data();
    L.q = dense_weight(lw.q_weight, &lw.q_bias);
    L.k = dense_weight(lw.k_weight, &lw.k_bias);
    L.v = dense_weight(lw.v_weight, &lw.v_bias);
    L.o = dense_weight(lw.o_weight, &lw.o_bias);
    for (int64_t h = 0; h < c.num_attention_heads; ++h) L.sinks.push_back(bf16_to_float(lw.sinks.bf16_data()[h]));
    L.post_norm = lw.post_attention_norm.bf16_data();
    L.router = dense_weight(lw.router_weight, &lw.router_bias);
    const bool sliding = c.layer_types[l] == LayerType::SlidingAttention;
    L.attn = {.n_heads = c.num_attention_heads,
              .n_kv_heads = c.num_key_value_heads,
              .head_dim = c.head_dim,
              .scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))),
              .window = sliding ? c.sliding_window : 0};
    L.cache = LayerKvCache(sliding ? std::min(c.sliding_window, opt.ctx) : opt.ctx, c.kv_dim());
  }
  experts_ = std::make_unique<CpuExperts>(ck, ctx_, max_batch_);

  const size_t B = static_cast<size_t>(max_batch_);
  x_.resize(B * c.hidden_size);
  t_.resize(B * c.hidden_size);
  q_.resize(B * c.q_dim());
  k_.resize(B * c.kv_dim());
  v_.resize(B * c.kv_dim());
  attn_.resize(B * c.q_dim());
  proj_.resize(B * c.hidden_size);
  router_.resize(B * c.num_local_experts);
  ids_.resize(B * c.num_experts_per_tok);
  weights_.resize(B * c.num_experts_per_tok);
  cos_.resize(B * c.head_dim / 2);
  sin_.resize(B * c.head_dim / 2);
  partials_.resize(static_cast<size_t>(attention_partial_floats(layers_[0].attn, 1, kMaxDecodeSegments)));
}

// Decode has one query: split each (query, KV head) pair's keys into segments so that there are about four
// tasks per thread, with at least kMinSegmentKeys keys per segment.
int64_t CpuForward::decode_segments(const AttentionShape& a, int64_t pos) const {
  const int64_t keys = a.window > 0 ? std::min(pos + 1, a.window) : pos + 1;
  const int64_t wanted = (4 * threads() + a.n_kv_heads - 1) / a.n_kv_heads;
  return std::clamp<int64_t>(std::min(wanted, keys / kMinSegmentKeys), 1, kMaxDecodeSegments);
}

std::string CpuForward::describe() const {
  return "CPU: all " + std::to_string(config_.num_hidden_layers) + " layers, " + cpu::isa_name(isa()) + " kernels, " +
         std::to_string(threads()) + (threads() == 1 ? " thread" : " threads") + ", " + experts_->describe() +
         (matmul_ ? "; batches: oneDNN " + cpu::OnednnMatmul::isa() + " (split-bf16 inputs)" : std::string()) +
         "; KV cache " + std::to_string((kv_cache_bytes() + (1 << 20) - 1) >> 20) + " MiB f32";
}

uint64_t CpuForward::kv_cache_bytes() const {
  uint64_t n = 0;
  for (const Layer& L : layers_) n += L.cache.nbytes();
  return n;
}

uint64_t CpuForward::host_bytes() const {
  uint64_t floats = x_.size() + t_.size() + q_.size() + k_.size() + v_.size() + attn_.size() + proj_.size() +
                    router_.size() + weights_.size() + cos_.size() + sin_.size() + partials_.size();
  for (const Layer& L : layers_) floats += L.sinks.size();
  return kv_cache_bytes() + floats * sizeof(float) + ids_.size() * sizeof(int32_t) + (matmul_ ? matmul_->bytes() : 0);
}

void CpuForward::forward(const int32_t* ids, int64_t n, int64_t pos0) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, E = c.num_local_experts, K = c.num_experts_per_tok;
  const int64_t half = c.head_dim / 2;
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (n < 1 || n > max_batch_)
    throw std::logic_error("forward of " + std::to_string(n) + " tokens; the workspaces hold 1 to " + std::to_string(max_batch_));
  batch_n_ = n;

  // x = embed[token]
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* row = embed_ + static_cast<int64_t>(ids[i]) * H;
    for (int64_t j = 0; j < H; ++j) x_[i * H + j] = bf16_to_float(row[j]);
  }
  // RoPE cos/sin (with the YaRN concentration) for the batch's positions, shared by every layer.
  for (int64_t i = 0; i < n; ++i) rope_cos_sin(rope_, pos0 + i, cos_.data() + i * half, sin_.data() + i * half);

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer& L = layers_[l];
    // --- attention block: x += o_proj(Attn(RMSNorm_attn(x))) ---
    // t = RMSNorm(x, w_in)
    for (int64_t i = 0; i < n; ++i) rmsnorm(x_.data() + i * H, L.input_norm, t_.data() + i * H, H, eps);
    // q, k, v = biased projections (one dispatch over their rows)
    const Projection qkv[] = {{L.q, t_.data(), q_.data()}, {L.k, t_.data(), k_.data()}, {L.v, t_.data(), v_.data()}};
    project(ctx_, qkv, n);
    // half-split RoPE on q and k
    for (int64_t i = 0; i < n; ++i) {
      apply_rope(q_.data() + i * c.q_dim(), c.num_attention_heads, c.head_dim, cos_.data() + i * half, sin_.data() + i * half);
      apply_rope(k_.data() + i * c.kv_dim(), c.num_key_value_heads, c.head_dim, cos_.data() + i * half, sin_.data() + i * half);
    }
    // softmax(scale q.k, with the sink in the denominator; sliding window on sliding layers) . v
    const AttentionBatch ab{.q = q_.data(), .new_k = k_.data(), .new_v = v_.data(), .n = n, .pos0 = pos0,
                            .cache = &L.cache, .sinks = L.sinks.data(), .out = attn_.data(),
                            .segments = n == 1 ? decode_segments(L.attn, pos0) : 1, .partials = partials_.data()};
    workers_.for_rows(attention_task_count(L.attn, ab), 1, [&](int64_t t0, int64_t t1) { attention_tasks(L.attn, ab, t0, t1); });
    attention_merge(L.attn, ab);
    // append k and v to the cache
    L.cache.store(k_.data(), v_.data(), n, pos0);
    // x += o_proj(attn) + o_bias
    project(ctx_, {L.o, attn_.data(), proj_.data()}, n);
    for (int64_t j = 0; j < n * H; ++j) x_[j] += proj_[j];

    // --- MoE block: x += MoE(RMSNorm_mlp(x)) ---
    // t = RMSNorm(x, w_post)
    for (int64_t i = 0; i < n; ++i) rmsnorm(x_.data() + i * H, L.post_norm, t_.data() + i * H, H, eps);
    // router logits = W t + b; top-k; softmax over the k
    project(ctx_, {L.router, t_.data(), router_.data()}, n);
    for (int64_t i = 0; i < n; ++i)
      router_topk_softmax(router_.data() + i * E, E, K, ids_.data() + i * K, weights_.data() + i * K);
    // x += sum_i w_i (W2 SwiGLU(W1 t + b1) + b2): the expert seam
    expert_calls_ += static_cast<uint64_t>(n * K);
    experts_->run({.layer = static_cast<int>(l), .n = n, .x = t_.data(), .ids = ids_.data(), .weights = weights_.data(),
                   .out = proj_.data()});
    for (int64_t j = 0; j < n * H; ++j) x_[j] += proj_[j];
  }
}

void CpuForward::logits(int64_t r0, int64_t r1, float* out) {
  if (r0 < 0 || r1 > batch_n_ || r0 >= r1)
    throw std::logic_error("logits rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ") outside the last batch of " +
                           std::to_string(batch_n_));
  const int64_t H = config_.hidden_size;
  // final RMSNorm, then logits = lm_head x (no bias, no scaling)
  for (int64_t i = r0; i < r1; ++i)
    rmsnorm(x_.data() + i * H, final_norm_, t_.data() + (i - r0) * H, H, static_cast<float>(config_.rms_norm_eps));
  for (int64_t i = 0; i < r1 - r0; i += kLogitRowsPerMatmul)
    project(ctx_, {lm_head_, t_.data() + i * H, out + i * config_.vocab_size}, std::min(kLogitRowsPerMatmul, r1 - r0 - i));
}

}  // namespace ossrun::engine
