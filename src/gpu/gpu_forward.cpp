#include "src/gpu/gpu_forward.cuh"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "gpu_kernels/attention_prefill.cuh"
#include "gpu_kernels/bf16_matvec.cuh"
#include "gpu_kernels/embedding.cuh"
#include "gpu_kernels/kv_cache.cuh"
#include "gpu_kernels/rmsnorm.cuh"
#include "gpu_kernels/rope.cuh"
#include "gpu_kernels/router_topk.cuh"
#include "offload/memory_plan.h"
#include "src/engine/rope.h"
#include "src/gpu/device.h"
#include "src/model/bf16.h"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

// lm_head rows per GEMM when many positions' logits are wanted (bounds dev_logits_ at 16 x vocab floats).
constexpr int64_t kLogitRows = 16;
constexpr uint64_t kAlign = 256;
uint64_t aligned(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

GpuForward::GpuForward(const Checkpoint& ck, const GpuForwardOptions& opt, Uploader& up,
                       std::unique_ptr<GpuExperts> experts)
    : config_(ck.config()), threads_(opt.threads), max_batch_(opt.max_batch), experts_(std::move(experts)) {
  const ModelConfig& c = config_;
  const size_t B = static_cast<size_t>(max_batch_);
  const size_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), E = c.num_local_experts, K = c.num_experts_per_tok;
  OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  OSSRUN_CUDA_CHECK(cudaEventCreateWithFlags(&inputs_copied_, cudaEventDisableTiming));
  OSSRUN_CUDA_CHECK(cudaEventRecord(inputs_copied_, stream_));
  embed_ = ck.weights().embed.bf16_data();
  upload_dense(ck, up);

  // RoPE cos/sin for every position of the context (the host computes the angles in double).
  const size_t half = c.head_dim / 2;
  std::vector<float> cos_table(opt.ctx * half), sin_table(opt.ctx * half);
  const engine::RopeFrequencies rope = engine::rope_frequencies(c.rope, c.head_dim);
  for (int64_t p = 0; p < opt.ctx; ++p) engine::rope_cos_sin(rope, p, cos_table.data() + p * half, sin_table.data() + p * half);
  rope_rows_ = opt.ctx;
  rope_cos_ = DeviceBuffer<float>(cos_table);
  rope_sin_ = DeviceBuffer<float>(sin_table);

  int largest_capacity = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer& L = layers_[l];
    const bool sliding = c.layer_types[l] == LayerType::SlidingAttention;
    // The plan's rows; a sliding ring keeps at least the window even when the context is shorter (the
    // attention kernels address it modulo a capacity of at least window rows).
    const int64_t planned = offload::kv_positions(c, static_cast<int>(l), opt.ctx, max_batch_);
    const int64_t capacity = sliding ? std::max(planned, c.sliding_window) : planned;
    L.attn = {.n_heads = static_cast<int>(c.num_attention_heads),
              .n_kv_heads = static_cast<int>(c.num_key_value_heads),
              .head_dim = static_cast<int>(c.head_dim),
              .scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))),
              .window = sliding ? static_cast<int>(c.sliding_window) : 0,
              .capacity = static_cast<int>(capacity)};
    L.k_cache = DeviceBuffer<uint16_t>(static_cast<size_t>(capacity) * KV);
    L.v_cache = DeviceBuffer<uint16_t>(static_cast<size_t>(capacity) * KV);
    largest_capacity = std::max(largest_capacity, L.attn.capacity);
  }
  attn_ws_ = std::make_unique<AttentionDecodeWorkspace>(layers_[0].attn, static_cast<int>(opt.ctx));

  x_ = DeviceBuffer<float>(B * H);
  t_ = DeviceBuffer<float>(B * H);
  q_ = DeviceBuffer<float>(std::max(B * Q, Q + 2 * KV));
  k_ = DeviceBuffer<float>(B * KV);
  v_ = DeviceBuffer<float>(B * KV);
  attn_ = DeviceBuffer<float>(B * Q);
  proj_ = DeviceBuffer<float>(B * H);
  router_ = DeviceBuffer<float>(B * E);
  ids_ = DeviceBuffer<int32_t>(B * K);
  weights_ = DeviceBuffer<float>(B * K);
  positions_ = DeviceBuffer<int32_t>(B);
  dev_logits_ = DeviceBuffer<float>(static_cast<size_t>(std::min<int64_t>(kLogitRows, max_batch_)) * c.vocab_size);
  token_ = DeviceBuffer<int32_t>(1);
  draw_ = DeviceBuffer<uint64_t>(1);
  const int widest_k = static_cast<int>(std::max(H, Q));
  gemm_ws_ = std::make_unique<Bf16GemmWorkspace>(static_cast<int>(max_batch_), widest_k);
  sampler_ = std::make_unique<DeviceSampler>(c.vocab_size);
  host_x_ = PinnedArray<float>(B * H);
  host_positions_ = PinnedArray<int32_t>(B);
  host_token_ = PinnedArray<int32_t>(1);
  host_draw_ = PinnedArray<uint64_t>(1);
}

GpuForward::~GpuForward() {
  OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamSynchronize(stream_));
  if (decode_graph_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaGraphExecDestroy(decode_graph_));
  OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(inputs_copied_));
  OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(stream_));
}

// Every dense weight in one allocation of 256-byte aligned pieces; q, k and v stacked into one (Q + 2KV, H)
// matrix (and their biases into one vector) so that decode projects them in one launch.
void GpuForward::upload_dense(const Checkpoint& ck, Uploader& up) {
  const ModelConfig& c = config_;
  const ModelWeights& w = ck.weights();
  const uint64_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), E = c.num_local_experts;
  const uint64_t per_layer = 2 * aligned(H * 2) + aligned((Q + 2 * KV) * H * 2) + aligned((Q + 2 * KV) * 2) +
                             aligned(H * Q * 2) + aligned(H * 2) + aligned(c.num_attention_heads * 4) +
                             aligned(E * H * 2) + aligned(E * 2);
  const uint64_t total = per_layer * c.num_hidden_layers + aligned(H * 2) + aligned(c.vocab_size * H * 2);
  dense_ = DeviceBuffer<uint8_t>(total);
  up.begin("dense weights to the GPU", total);
  uint8_t* at = dense_.get();
  // Uploads the views back to back and moves `at` past them, aligned; returns where they start.
  auto put = [&](std::initializer_list<const TensorView*> views) {
    uint8_t* start = at;
    uint64_t n = 0;
    for (const TensorView* v : views) {
      up.upload(start + n, v->bytes.data(), v->bytes.size());
      n += v->bytes.size();
    }
    at += aligned(n);
    return start;
  };
  auto bf16 = [](uint8_t* p) { return reinterpret_cast<const uint16_t*>(p); };
  std::vector<float> sinks(c.num_attention_heads);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    Layer& L = layers_.emplace_back();
    L.input_norm = bf16(put({&lw.input_norm}));
    L.qkv = bf16(put({&lw.q_weight, &lw.k_weight, &lw.v_weight}));
    L.qkv_bias = bf16(put({&lw.q_bias, &lw.k_bias, &lw.v_bias}));
    L.o = bf16(put({&lw.o_weight}));
    L.o_bias = bf16(put({&lw.o_bias}));
    for (int64_t h = 0; h < c.num_attention_heads; ++h) sinks[h] = bf16_to_float(lw.sinks.bf16_data()[h]);
    up.upload(at, sinks.data(), sinks.size() * sizeof(float));
    L.sinks = reinterpret_cast<const float*>(at);
    at += aligned(sinks.size() * sizeof(float));
    L.post_norm = bf16(put({&lw.post_attention_norm}));
    L.router = bf16(put({&lw.router_weight}));
    L.router_bias = bf16(put({&lw.router_bias}));
  }
  final_norm_ = bf16(put({&w.final_norm}));
  lm_head_ = bf16(put({&w.lm_head}));
  up.finish();
}

void GpuForward::gather_embeddings(const int32_t* ids, int64_t n, int64_t pos0) {
  const int64_t H = config_.hidden_size;
  // The previous batch's copies must have left the pinned buffers before they are refilled.
  OSSRUN_CUDA_CHECK(cudaEventSynchronize(inputs_copied_));
  float* hx = host_x_.get();
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t* row = embed_ + static_cast<int64_t>(ids[i]) * H;
    for (int64_t j = 0; j < H; ++j) hx[i * H + j] = bf16_to_float(row[j]);
    host_positions_.get()[i] = static_cast<int32_t>(pos0 + i);
  }
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(x_.get(), hx, n * H * sizeof(float), cudaMemcpyHostToDevice, stream_));
  OSSRUN_CUDA_CHECK(
      cudaMemcpyAsync(positions_.get(), host_positions_.get(), n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  OSSRUN_CUDA_CHECK(cudaEventRecord(inputs_copied_, stream_));
}

void GpuForward::enqueue_layers(int64_t n, int64_t pos0) {
  const ModelConfig& c = config_;
  const int H = static_cast<int>(c.hidden_size), Q = static_cast<int>(c.q_dim()), KV = static_cast<int>(c.kv_dim());
  const int E = static_cast<int>(c.num_local_experts), K = static_cast<int>(c.num_experts_per_tok);
  const int nn = static_cast<int>(n);
  const float eps = static_cast<float>(c.rms_norm_eps);
  const bool one = n == 1;
  cudaStream_t s = stream_;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer& L = layers_[l];
    // --- attention block: x += o_proj(Attn(RMSNorm_attn(x))) ---
    rmsnorm_f32(x_.get(), L.input_norm, t_.get(), nn, H, eps, s);
    float *q = q_.get(), *k = k_.get(), *v = v_.get();
    if (one) {  // q | k | v in one matvec over the stacked weights
      bf16_matvec(L.qkv, L.qkv_bias, t_.get(), q, Q + 2 * KV, H, s);
      k = q + Q;
      v = k + KV;
    } else {
      bf16_gemm(L.qkv, L.qkv_bias, t_.get(), q, nn, Q, H, *gemm_ws_, s);
      bf16_gemm(L.qkv + static_cast<int64_t>(Q) * H, L.qkv_bias + Q, t_.get(), k, nn, KV, H, *gemm_ws_, s);
      bf16_gemm(L.qkv + static_cast<int64_t>(Q + KV) * H, L.qkv_bias + Q + KV, t_.get(), v, nn, KV, H, *gemm_ws_, s);
    }
    rope_apply_f32(q, k, nn, L.attn.n_heads, L.attn.n_kv_heads, L.attn.head_dim, rope_cos_.get(), rope_sin_.get(),
                   positions_.get(), s, static_cast<int>(rope_rows_));
    // The batch's keys and values go into the cache first; the attention reads them all from there.
    kv_store_bf16(k, v, positions_.get(), nn, L.attn, L.k_cache.get(), L.v_cache.get(), s);
    if (one)
      attention_decode(q, L.k_cache.get(), L.v_cache.get(), L.sinks, positions_.get(), L.attn, attn_.get(), *attn_ws_, s);
    else
      attention_prefill(q, L.k_cache.get(), L.v_cache.get(), L.sinks, nn, static_cast<int>(pos0), L.attn, attn_.get(), s);
    if (one)
      bf16_matvec(L.o, L.o_bias, attn_.get(), proj_.get(), H, Q, s);
    else
      bf16_gemm(L.o, L.o_bias, attn_.get(), proj_.get(), nn, H, Q, *gemm_ws_, s);

    // --- MoE block: x += MoE(RMSNorm_mlp(x)) ---
    add_rmsnorm_f32(x_.get(), proj_.get(), L.post_norm, t_.get(), nn, H, eps, s);
    if (one)
      bf16_matvec(L.router, L.router_bias, t_.get(), router_.get(), E, H, s);
    else
      bf16_gemm(L.router, L.router_bias, t_.get(), router_.get(), nn, E, H, *gemm_ws_, s);
    router_topk_softmax(router_.get(), nn, E, K, ids_.get(), weights_.get(), s);
    experts_->run({.layer = static_cast<int>(l), .n = nn, .x = t_.get(), .ids = ids_.get(), .weights = weights_.get(),
                   .residual = x_.get(), .stream = s});
  }
}

void GpuForward::enqueue_last_logits(int64_t row) {
  const int H = static_cast<int>(config_.hidden_size);
  rmsnorm_f32(x_.get() + row * H, final_norm_, t_.get(), 1, H, static_cast<float>(config_.rms_norm_eps), stream_);
  bf16_matvec(lm_head_, nullptr, t_.get(), dev_logits_.get(), config_.vocab_size, H, stream_);
}

void GpuForward::forward(const int32_t* ids, int64_t n, int64_t pos0) {
  if (n < 1 || n > max_batch_)
    throw std::logic_error("forward of " + std::to_string(n) + " tokens; the workspaces hold 1 to " + std::to_string(max_batch_));
  gather_embeddings(ids, n, pos0);
  batch_n_ = n;
  if (n == 1 && experts_->graph_capturable()) {
    // Decode: every layer, the final norm and lm_head as one graph, captured at the first step. Nothing in
    // it depends on the position but positions_ (device memory), so it replays at every step.
    if (!decode_graph_) {
      const uint64_t calls_before = experts_->expert_calls(), gpu_calls_before = experts_->expert_calls_gpu();
      cudaGraph_t graph = nullptr;
      OSSRUN_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      enqueue_layers(1, pos0);
      enqueue_last_logits(0);
      OSSRUN_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
      OSSRUN_CUDA_CHECK(cudaGraphInstantiate(&decode_graph_, graph, 0));
      OSSRUN_CUDA_CHECK(cudaGraphDestroy(graph));
      // The capture ran no expert; the replays are counted in graph_expert_calls().
      if (experts_->expert_calls() != calls_before || experts_->expert_calls_gpu() != gpu_calls_before)
        throw std::logic_error("GpuExperts counted calls while being captured");
    }
    OSSRUN_CUDA_CHECK(cudaGraphLaunch(decode_graph_, stream_));
    ++graph_replays_;
    last_logits_ready_ = true;
    return;
  }
  enqueue_layers(n, pos0);
  last_logits_ready_ = false;
}

void GpuForward::logits(int64_t r0, int64_t r1, float* out) {
  if (r0 < 0 || r1 > batch_n_ || r0 >= r1)
    throw std::logic_error("logits rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ") outside the last batch of " +
                           std::to_string(batch_n_));
  const int64_t H = config_.hidden_size, V = config_.vocab_size;
  if (r1 - r0 == 1 && r0 == batch_n_ - 1) {
    if (!last_logits_ready_) enqueue_last_logits(r0);
    last_logits_ready_ = true;
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(out, dev_logits_.get(), V * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return;
  }
  // final RMSNorm, then logits = lm_head x, kLogitRows rows at a time (dev_logits_ is overwritten).
  last_logits_ready_ = false;
  const int64_t rows = static_cast<int64_t>(dev_logits_.size()) / V;
  for (int64_t i = r0; i < r1; i += rows) {
    const int m = static_cast<int>(std::min(rows, r1 - i));
    rmsnorm_f32(x_.get() + i * H, final_norm_, t_.get(), m, static_cast<int>(H), static_cast<float>(config_.rms_norm_eps),
                stream_);
    bf16_gemm(lm_head_, nullptr, t_.get(), dev_logits_.get(), m, V, static_cast<int>(H), *gemm_ws_, stream_);
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(out + (i - r0) * V, dev_logits_.get(), m * V * sizeof(float), cudaMemcpyDeviceToHost,
                                      stream_));
    OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
}

std::optional<int32_t> GpuForward::sample_last(const engine::SamplerOptions& opt, uint64_t step) {
  if (batch_n_ < 1) throw std::logic_error("sample_last before any forward");
  if (!last_logits_ready_) enqueue_last_logits(batch_n_ - 1);
  last_logits_ready_ = true;
  *host_draw_.get() = step;
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(draw_.get(), host_draw_.get(), sizeof(uint64_t), cudaMemcpyHostToDevice, stream_));
  const DeviceSamplerParams p{.temperature = opt.temperature,
                              .top_p = opt.top_p,
                              .top_k = static_cast<int>(std::min<int64_t>(opt.top_k, config_.vocab_size)),
                              .min_p = opt.min_p,
                              .seed = opt.seed};
  sampler_->sample(dev_logits_.get(), p, draw_.get(), token_.get(), stream_);
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(host_token_.get(), token_.get(), sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return *host_token_.get();
}

std::string GpuForward::describe() const {
  uint64_t kv = 0;
  for (const Layer& L : layers_) kv += L.k_cache.bytes() + L.v_cache.bytes();
  return "GPU " + gpu::describe(gpu::probe()) + ": all " + std::to_string(config_.num_hidden_layers) +
         " layers' attention, router and lm_head, " + experts_->describe() + "; KV cache " + mib(kv) + " bf16; " +
         (experts_->graph_capturable() ? "decode as one CUDA graph per token" : "decode launched layer by layer") +
         "; sampling on the GPU";
}

uint64_t GpuForward::host_bytes() const {
  return host_x_.bytes() + host_positions_.bytes() + host_token_.bytes() + host_draw_.bytes() + experts_->host_bytes();
}

uint64_t GpuForward::device_bytes() const {
  uint64_t n = dense_.bytes() + rope_cos_.bytes() + rope_sin_.bytes() + x_.bytes() + t_.bytes() + q_.bytes() + k_.bytes() +
               v_.bytes() + attn_.bytes() + proj_.bytes() + router_.bytes() + ids_.bytes() + weights_.bytes() +
               positions_.bytes() + dev_logits_.bytes() + token_.bytes() + draw_.bytes();
  for (const Layer& L : layers_) n += L.k_cache.bytes() + L.v_cache.bytes();
  return n + experts_->device_bytes();
}

}  // namespace ossrun::gpu
