// `ossrun bench gpu` measurements. Every kernel streams buffers larger than L2: the MoE bench cycles through
// 8 choice lists covering all 32 experts of a gpt-oss-20b layer (423 MB), the q projection through 8 weight
// copies (189 MB), lm_head is 1.16 GB by itself. Weights are random (scales in a realistic range), never zeros.
// Each figure is the median of `reps` timed groups of 8 calls (1 call for lm_head), launched back to back on a
// stream, and again as the replay of a CUDA graph of the same group (the decode loop will run as a graph).
// Attention decode cycles through 8 layers' bf16 K/V caches (537 MB at 32k; at 1k the 16 MB stay in L2)
// and counts the K/V bytes read;
// attention prefill (not graphed in the engine) is timed on the stream and counts its multiply-adds as flops.
// The per-token ops (bench_ops) run at decode shapes on small, L2-resident buffers.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gpu_kernels/attention_decode.cuh"
#include "gpu_kernels/attention_prefill.cuh"
#include "gpu_kernels/bf16_gemm.cuh"
#include "gpu_kernels/bf16_matvec.cuh"
#include "gpu_kernels/copy_bandwidth.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/embedding.cuh"
#include "gpu_kernels/event_timer.cuh"
#include "gpu_kernels/kernel_bench.h"
#include "gpu_kernels/mma_peak.cuh"
#include "gpu_kernels/mxfp4_moe_gemm.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "gpu_kernels/rmsnorm.cuh"
#include "gpu_kernels/rope.cuh"
#include "gpu_kernels/router_topk.cuh"
#include "gpu_kernels/sampling.cuh"

namespace ossrun::gpu {
namespace {

// gpt-oss-20b
constexpr int kHidden = 2880, kIntermediate = 2880, kExperts = 32, kTopK = 4;
constexpr int kVocab = 201088, kQDim = 4096;
constexpr int kGroup = 8;  // calls per timed group (and distinct weight sets cycled through)

__device__ uint32_t mix32(uint64_t i, uint32_t seed) {
  uint64_t z = i * 0x9e3779b97f4a7c15ull + seed;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>((z ^ (z >> 31)) >> 32);
}

// p[i] = lo + (random mod span)
__global__ void fill_bytes_kernel(uint8_t* p, size_t n, uint32_t seed, uint32_t lo, uint32_t span) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = static_cast<uint8_t>(lo + mix32(i, seed) % span);
}

// p[i] = bf16 of a uniform value in [-amp, amp)
__global__ void fill_bf16_kernel(uint16_t* p, size_t n, uint32_t seed, float amp) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = amp * (static_cast<float>(mix32(i, seed)) * (2.0f / 4294967296.0f) - 1.0f);
    p[i] = static_cast<uint16_t>(__float_as_uint(v) >> 16);
  }
}

void fill_bytes(DeviceBuffer<uint8_t>& b, uint32_t seed, uint32_t lo, uint32_t span) {
  fill_bytes_kernel<<<1024, 256>>>(b.get(), b.size(), seed, lo, span);
  OSSRUN_CUDA_CHECK_LAUNCH();
}
void fill_bf16(DeviceBuffer<uint16_t>& b, uint32_t seed, float amp) {
  fill_bf16_kernel<<<1024, 256>>>(b.get(), b.size(), seed, amp);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = u(rng);
  return v;
}

class Stream {
 public:
  Stream() { OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() { OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(s_)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_{};
};

// Times `group(stream)` (which makes `calls` calls) launched directly, then captured once as a graph and
// replayed; appends one figure for each.
template <typename Group>
void time_both_ways(std::vector<KernelFigure>& figures, const std::string& kernel, const std::string& shape, double bytes,
                    int calls, int reps, cudaStream_t stream, Group&& group) {
  const double stream_ms = median_ms(stream, /*warmup=*/3, reps, group);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  OSSRUN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  group(stream);
  OSSRUN_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  OSSRUN_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  const double graph_ms =
      median_ms(stream, /*warmup=*/3, reps, [&](cudaStream_t s) { OSSRUN_CUDA_CHECK(cudaGraphLaunch(exec, s)); });
  OSSRUN_CUDA_CHECK(cudaGraphExecDestroy(exec));
  OSSRUN_CUDA_CHECK(cudaGraphDestroy(graph));
  for (auto [launch, ms] : {std::pair<const char*, double>{"stream", stream_ms}, {"graph", graph_ms}}) {
    const double us = ms * 1e3 / calls;
    figures.push_back({kernel, shape, launch, bytes, us, bytes / (us * 1e-6) / 1e9, 0, 0});
  }
}

// All 32 experts of one gpt-oss-20b layer, random, one allocation per tensor.
struct Layer20bExperts {
  static constexpr size_t gu_rows = 2 * kIntermediate, gu_g = kHidden / 32, dn_rows = kHidden, dn_g = kIntermediate / 32;
  DeviceBuffer<uint8_t> gu_blocks{kExperts * gu_rows * gu_g * 16}, gu_scales{kExperts * gu_rows * gu_g};
  DeviceBuffer<uint8_t> dn_blocks{kExperts * dn_rows * dn_g * 16}, dn_scales{kExperts * dn_rows * dn_g};
  DeviceBuffer<uint16_t> gu_bias{kExperts * gu_rows}, dn_bias{kExperts * dn_rows};
  std::vector<ExpertSlotMxfp4> slots = std::vector<ExpertSlotMxfp4>(kExperts);

  Layer20bExperts() {
    fill_bytes(gu_blocks, 1, 0, 256);
    fill_bytes(dn_blocks, 2, 0, 256);
    fill_bytes(gu_scales, 3, 118, 9);  // 2^-9 .. 2^-1, around the checkpoint's scales
    fill_bytes(dn_scales, 4, 118, 9);
    fill_bf16(gu_bias, 5, 0.5f);
    fill_bf16(dn_bias, 6, 0.5f);
    OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());  // the fills ran on the legacy stream
    for (size_t e = 0; e < kExperts; ++e)
      slots[e] = {gu_blocks.get() + e * gu_rows * gu_g * 16, gu_scales.get() + e * gu_rows * gu_g,
                  gu_bias.get() + e * gu_rows,                dn_blocks.get() + e * dn_rows * dn_g * 16,
                  dn_scales.get() + e * dn_rows * dn_g,       dn_bias.get() + e * dn_rows};
  }
  // MXFP4 blocks, scales and bf16 biases of one expert.
  static double expert_bytes() { return gu_rows * gu_g * 17.0 + gu_rows * 2.0 + dn_rows * dn_g * 17.0 + dn_rows * 2.0; }
};

void bench_moe(KernelBenchReport& report, const Layer20bExperts& layer, int reps, cudaStream_t stream) {
  const std::vector<ExpertSlotMxfp4>& slots = layer.slots;
  // Group call n uses experts 4n .. 4n+3 with softmax weights: all 32 experts once per group.
  std::vector<ExpertChoice> choices(kGroup * kTopK);
  std::mt19937 rng(7);
  std::normal_distribution<float> logit(0.0f, 1.0f);
  for (int n = 0; n < kGroup; ++n) {
    float w[kTopK], sum = 0;
    for (float& v : w) sum += (v = std::exp(logit(rng)));
    for (int c = 0; c < kTopK; ++c) choices[n * kTopK + c] = {n * kTopK + c, w[c] / sum};
  }
  DeviceBuffer<ExpertSlotMxfp4> slots_d(slots);
  DeviceBuffer<ExpertChoice> choices_d(choices);
  DeviceBuffer<float> x(random_floats(kHidden, 8)), out(random_floats(kHidden, 9));
  MoeWorkspace ws(kHidden, kIntermediate, kTopK);
  const MoeShape shape{kHidden, kIntermediate, kExperts};

  const double bytes = kTopK * Layer20bExperts::expert_bytes() + kHidden * 4.0 /*x*/ + kHidden * 8.0 /*out read, written*/;
  for (MoeCombine combine : {MoeCombine::Deterministic, MoeCombine::Atomic}) {
    for (Mxfp4Lut lut : {Mxfp4Lut::F32x2, Mxfp4Lut::Bf16x2}) {
      const std::string name = std::string("mxfp4_moe_matvec ") + mxfp4_lut_name(lut) + " " +
                               (combine == MoeCombine::Deterministic ? "det" : "atomic");
      time_both_ways(report.figures, name, "H=2880 I=2880 k=4 of 32", bytes, kGroup, reps, stream, [&](cudaStream_t s) {
        for (int n = 0; n < kGroup; ++n)
          mxfp4_moe_matvec(slots_d.get(), choices_d.get() + n * kTopK, kTopK, x.get(), out.get(), shape,
                           SwigluParams{}, ws, s, combine, lut);
      });
    }
  }
  ws.check_errors();
}

void bench_bf16(KernelBenchReport& report, int reps, cudaStream_t stream) {
  {  // lm_head: one matrix of 1.16 GB, no bias
    DeviceBuffer<uint16_t> W(static_cast<size_t>(kVocab) * kHidden);
    fill_bf16(W, 11, 0.05f);
    OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
    DeviceBuffer<float> x(random_floats(kHidden, 12)), y(kVocab);
    const double bytes = kVocab * (kHidden * 2.0 + 4.0) + kHidden * 4.0;
    time_both_ways(report.figures, "bf16_matvec", "lm_head 201088x2880", bytes, 1, reps, stream,
                   [&](cudaStream_t s) { bf16_matvec(W.get(), nullptr, x.get(), y.get(), kVocab, kHidden, s); });
  }
  {  // q projection: 8 copies cycled (189 MB), with bias
    const size_t per = static_cast<size_t>(kQDim) * kHidden;
    DeviceBuffer<uint16_t> W(kGroup * per), bias(kGroup * static_cast<size_t>(kQDim));
    fill_bf16(W, 13, 0.05f);
    fill_bf16(bias, 14, 0.5f);
    OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
    DeviceBuffer<float> x(random_floats(kHidden, 15)), y(kQDim);
    const double bytes = kQDim * (kHidden * 2.0 + 2.0 + 4.0) + kHidden * 4.0;
    time_both_ways(report.figures, "bf16_matvec", "q 4096x2880 +bias", bytes, kGroup, reps, stream, [&](cudaStream_t s) {
      for (int n = 0; n < kGroup; ++n)
        bf16_matvec(W.get() + n * per, bias.get() + n * kQDim, x.get(), y.get(), kQDim, kHidden, s);
    });
  }
}

void add_compute(KernelBenchReport& report, const std::string& kernel, const std::string& shape, double flops,
                 double mma_flops, double weight_bytes, double ms) {
  const double s = ms * 1e-3;
  report.compute.push_back({kernel, shape, flops, mma_flops, weight_bytes, ms * 1e3, flops / s / 1e12,
                            mma_flops / s / 1e12, weight_bytes / s / 1e9});
}

// bf16_gemm at the q projection (+bias) and lm_head shapes; at small n also against n bf16_matvec calls.
void bench_bf16_gemm(KernelBenchReport& report, int reps, cudaStream_t stream) {
  constexpr int kMaxN = 2048;
  Bf16GemmWorkspace ws(kMaxN, kHidden);
  DeviceBuffer<float> x(random_floats(static_cast<size_t>(kMaxN) * kHidden, 21));
  struct Matrix {
    const char* name;
    long long rows;
    bool bias;
  };
  for (const Matrix& m : {Matrix{"q", kQDim, true}, Matrix{"lm_head", kVocab, false}}) {
    DeviceBuffer<uint16_t> W(static_cast<size_t>(m.rows) * kHidden), bias(m.bias ? m.rows : 0);
    fill_bf16(W, 22, 0.05f);
    if (m.bias) fill_bf16(bias, 23, 0.5f);
    OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<int> ns = m.bias ? std::vector<int>{8, 64, 512, 2048} : std::vector<int>{64, 512, 2048};
    DeviceBuffer<float> y(static_cast<size_t>(kMaxN) * m.rows);
    const double w_bytes = m.rows * kHidden * 2.0;
    for (int n : ns) {
      const std::string shape = std::string(m.name) + " " + std::to_string(m.rows) + "x2880 n=" + std::to_string(n);
      const double flops = 2.0 * n * m.rows * kHidden;
      for (Bf16GemmTile tile : {Bf16GemmTile::Auto, Bf16GemmTile::Wide, Bf16GemmTile::Narrow}) {
        const double ms = median_ms(stream, 2, reps, [&](cudaStream_t s) {
          bf16_gemm(W.get(), m.bias ? bias.get() : nullptr, x.get(), y.get(), n, m.rows, kHidden, ws, s, tile);
        });
        add_compute(report, std::string("bf16_gemm ") + bf16_gemm_tile_name(tile), shape, flops, 2 * flops, w_bytes,
                    ms);
      }
      if (n <= 64) {  // the alternative a small batch has: one matvec per token
        const double ms = median_ms(stream, 2, reps, [&](cudaStream_t s) {
          for (int t = 0; t < n; ++t)
            bf16_matvec(W.get(), m.bias ? bias.get() : nullptr, x.get() + static_cast<size_t>(t) * kHidden,
                        y.get() + static_cast<size_t>(t) * m.rows, m.rows, kHidden, s);
        });
        add_compute(report, "bf16_matvec x n", shape, flops, flops, w_bytes, ms);
      }
    }
  }
}

// mxfp4_moe_gemm for one gpt-oss-20b layer: n tokens, each routed to 4 distinct random experts of 32.
void bench_moe_gemm(KernelBenchReport& report, const Layer20bExperts& layer, int reps, cudaStream_t stream) {
  constexpr int kMaxN = 2048;
  DeviceBuffer<ExpertSlotMxfp4> slots_d(layer.slots);
  MoeGemmWorkspace ws(kMaxN, kTopK, kExperts, kHidden, kIntermediate);
  std::mt19937 rng(31);
  std::vector<int32_t> choice_slots(kMaxN * kTopK);
  std::vector<float> weights(kMaxN * kTopK);
  std::vector<int> order(kExperts);
  for (int t = 0; t < kMaxN; ++t) {
    for (int e = 0; e < kExperts; ++e) order[e] = e;
    std::shuffle(order.begin(), order.end(), rng);
    for (int c = 0; c < kTopK; ++c) choice_slots[t * kTopK + c] = order[c], weights[t * kTopK + c] = 0.25f;
  }
  DeviceBuffer<int32_t> choices_d(choice_slots);
  DeviceBuffer<float> weights_d(weights), x(random_floats(static_cast<size_t>(kMaxN) * kHidden, 32));
  DeviceBuffer<float> out(random_floats(static_cast<size_t>(kMaxN) * kHidden, 33));
  const MoeShape shape{kHidden, kIntermediate, kExperts};
  for (int n : {64, 512, 2048}) {
    for (MoeGemmTile tile : {MoeGemmTile::Auto, MoeGemmTile::N64, MoeGemmTile::N128}) {
      const double ms = median_ms(stream, 2, reps, [&](cudaStream_t s) {
        mxfp4_moe_gemm(slots_d.get(), kExperts, choices_d.get(), weights_d.get(), n, kTopK, x.get(), out.get(), shape,
                       SwigluParams{}, ws, s, tile);
      });
      const double flops =
          2.0 * n * kTopK * (2.0 * kIntermediate * kHidden + static_cast<double>(kHidden) * kIntermediate);
      // Every expert is chosen at these n (the bench's routing covers all 32 by n = 64 with near certainty).
      add_compute(report, std::string("mxfp4_moe_gemm ") + moe_gemm_tile_name(tile),
                  "20b layer k=4 of 32 n=" + std::to_string(n), flops, 2 * flops,
                  kExperts * Layer20bExperts::expert_bytes(), ms);
    }
  }
  ws.check_errors();
}

// The per-token ops at decode shapes: tiny buffers (L2-resident, as in the decode loop), so these are launch-
// and latency-bound; the figure to watch is the graph time per call.
void bench_ops(KernelBenchReport& report, int reps, cudaStream_t stream) {
  constexpr int kHeads = 64, kKvHeads = 8, kHeadDim = 64, kPrefill = 128;
  auto& figs = report.op_figures;
  auto time = [&](const std::string& kernel, const std::string& shape, double bytes, auto&& call) {
    time_both_ways(figs, kernel, shape, bytes, kGroup, reps, stream, [&](cudaStream_t s) {
      for (int n = 0; n < kGroup; ++n) call(s);
    });
  };
  DeviceBuffer<float> x(random_floats(size_t{kPrefill} * kHidden, 21)), delta(random_floats(size_t{kPrefill} * kHidden, 22));
  DeviceBuffer<float> y(size_t{kPrefill} * kHidden);
  DeviceBuffer<uint16_t> w(kHidden);
  fill_bf16(w, 23, 1.0f);
  OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
  time("rmsnorm_f32", "1x2880", kHidden * 10.0,
       [&](cudaStream_t s) { rmsnorm_f32(x.get(), w.get(), y.get(), 1, kHidden, 1e-5f, s); });
  time("rmsnorm_f32", "128x2880", kPrefill * kHidden * 8.0 + kHidden * 2.0,
       [&](cudaStream_t s) { rmsnorm_f32(x.get(), w.get(), y.get(), kPrefill, kHidden, 1e-5f, s); });
  time("add_rmsnorm_f32", "1x2880", kHidden * 18.0,
       [&](cudaStream_t s) { add_rmsnorm_f32(x.get(), delta.get(), w.get(), y.get(), 1, kHidden, 1e-5f, s); });

  DeviceBuffer<float> q(random_floats(kHeads * kHeadDim, 24)), k(random_floats(kKvHeads * kHeadDim, 25));
  DeviceBuffer<float> cos_t(random_floats(4096 * kHeadDim / 2, 26)), sin_t(random_floats(4096 * kHeadDim / 2, 27));
  DeviceBuffer<int32_t> pos(std::vector<int32_t>{1234});
  time("rope_apply_f32", "1 tok 64+8 heads d64", (kHeads + kKvHeads) * kHeadDim * 8.0 + kHeadDim * 4.0, [&](cudaStream_t s) {
    rope_apply_f32(q.get(), k.get(), 1, kHeads, kKvHeads, kHeadDim, cos_t.get(), sin_t.get(), pos.get(), s, 4096);
  });

  DeviceBuffer<float> router_logits(random_floats(128, 28)), weights(4);
  DeviceBuffer<int32_t> ids(4);
  DeviceBuffer<ExpertChoice> choices(4);
  for (int experts : {32, 128})
    time("router_topk_softmax", "1 tok k=4 of " + std::to_string(experts), experts * 4.0 + 4 * 8.0,
         [&](cudaStream_t s) { router_topk_softmax(router_logits.get(), 1, experts, 4, ids.get(), weights.get(), s); });
  time("expert_choices_from_topk", "4 choices", 4 * 16.0,
       [&](cudaStream_t s) { expert_choices_from_topk(ids.get(), weights.get(), 4, nullptr, choices.get(), s); });

  DeviceBuffer<uint16_t> table(static_cast<size_t>(kVocab) * kHidden);
  fill_bf16(table, 29, 0.05f);
  OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
  DeviceBuffer<int32_t> token_id(std::vector<int32_t>{4321});
  time("embedding_gather_bf16", "1 tok x 2880", kHidden * 6.0,
       [&](cudaStream_t s) { embedding_gather_bf16(table.get(), kVocab, kHidden, token_id.get(), 1, x.get(), s); });

  // Logits like a language model's: a few thousand plausible tokens above a long tail.
  std::vector<float> lm(kVocab);
  std::mt19937 rng(30);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& l : lm) l = normal(rng);
  DeviceBuffer<float> logits(lm);
  DeviceBuffer<uint64_t> counter(std::vector<uint64_t>{0});
  DeviceBuffer<int32_t> token(1);
  DeviceSampler sampler(kVocab);
  const struct {
    const char* name;
    DeviceSamplerParams p;
  } modes[] = {{"greedy", {0.0f, 1.0f, 0, 0.0f, 1}},
               {"T=1", {1.0f, 1.0f, 0, 0.0f, 1}},
               {"T=1 top-p 0.9", {1.0f, 0.9f, 0, 0.0f, 1}},
               {"T=0.7 top-k 50", {0.7f, 1.0f, 50, 0.0f, 1}},
               {"T=1 k40 p0.95 min-p 0.05", {1.0f, 0.95f, 40, 0.05f, 1}}};
  for (const auto& m : modes)
    time(std::string("DeviceSampler ") + m.name, "vocab 201088", kVocab * 4.0,
         [&](cudaStream_t s) { sampler.sample(logits.get(), m.p, counter.get(), token.get(), s); });
  // Fewer CTAs: cheaper grid barriers and histogram merges, more work per CTA.
  for (int ctas : {33, 66}) {
    DeviceSampler capped(kVocab, ctas);
    time("DeviceSampler T=1 top-p 0.9", "vocab 201088, " + std::to_string(ctas) + " CTAs", kVocab * 4.0,
         [&](cudaStream_t s) { capped.sample(logits.get(), modes[2].p, counter.get(), token.get(), s); });
  }
}

// gpt-oss-20b attention: 64 query heads, 8 KV heads, head_dim 64.
constexpr AttnShape attn_shape(int window, int capacity) { return {64, 8, 64, 0.125f, window, capacity}; }

void bench_attention_decode(KernelBenchReport& report, int reps, cudaStream_t stream) {
  constexpr int kMaxCtx = 131072;  // the engine sizes its workspace for the longest context
  AttentionDecodeWorkspace ws(attn_shape(0, kMaxCtx), kMaxCtx);
  DeviceBuffer<float> q(random_floats(64 * 64, 21)), sinks(random_floats(64, 22)), out(64 * 64);
  for (int ctx : {1024, 8192, 32768}) {
    const AttnShape s = attn_shape(0, ctx);
    const size_t per = static_cast<size_t>(ctx) * 8 * 64;  // bf16 per layer's K (or V)
    DeviceBuffer<uint16_t> k(kGroup * per), v(kGroup * per);
    fill_bf16(k, 23, 2.0f);
    fill_bf16(v, 24, 1.0f);
    DeviceBuffer<int32_t> pos(std::vector<int32_t>{ctx - 1});
    OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
    const double bytes = 2.0 * per * sizeof(uint16_t);
    const std::string shape = "64/8/64 ctx " + std::to_string(ctx / 1024) + "k";
    time_both_ways(report.figures, "attention_decode bf16", shape, bytes, kGroup, reps, stream, [&](cudaStream_t st) {
      for (int n = 0; n < kGroup; ++n)
        attention_decode(q.get(), k.get() + n * per, v.get() + n * per, sinks.get(), pos.get(), s, out.get(), ws, st);
    });
    for (size_t f = report.figures.size() - 2; f < report.figures.size(); ++f) {  // the stream and graph figures
      KernelFigure& fig = report.figures[f];
      fig.flops = 4.0 * 64 * ctx * 64;  // scores and weighted values: 2 x 2 x head_dim per (head, key)
      fig.tflops = fig.flops / (fig.median_us * 1e6);
    }
  }
}

void bench_attention_prefill(KernelBenchReport& report, int reps, cudaStream_t stream) {
  for (int window : {0, 128})
    for (int n : {512, 2048}) {
      const AttnShape s = attn_shape(window, n);
      DeviceBuffer<uint16_t> k(static_cast<size_t>(n) * 8 * 64), v(static_cast<size_t>(n) * 8 * 64);
      fill_bf16(k, 31, 2.0f);
      fill_bf16(v, 32, 1.0f);
      OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
      DeviceBuffer<float> q(random_floats(static_cast<size_t>(n) * 64 * 64, 33)), sinks(random_floats(64, 34));
      DeviceBuffer<float> out(static_cast<size_t>(n) * 64 * 64);
      double keys = 0;  // visible (query, key) pairs
      for (int i = 0; i < n; ++i) keys += window > 0 ? std::min(i + 1, window) : i + 1;
      // Scores and weighted values: 2 x 2 x head_dim per (query head, key); the mma kernel's hi/lo halves
      // do twice that on the tensor cores, not counted.
      const double flops = keys * 64 * 4.0 * 64, bytes = 2.0 * k.bytes() + 2.0 * q.bytes();  // q read, out written
      const std::string shape = "64/8/64 n " + std::to_string(n) + (window ? " win 128" : " full");
      for (AttentionPrefillKernel kernel : {AttentionPrefillKernel::Simt, AttentionPrefillKernel::Mma}) {
        const double us = 1e3 * median_ms(stream, /*warmup=*/2, reps, [&](cudaStream_t st) {
          attention_prefill(q.get(), k.get(), v.get(), sinks.get(), n, 0, s, out.get(), st, kernel);
        });
        const char* name = kernel == AttentionPrefillKernel::Mma ? "attention_prefill bf16 mma" : "attention_prefill bf16 simt";
        report.figures.push_back({name, shape, "stream", bytes, us, bytes / (us * 1e3), flops, flops / (us * 1e6)});
      }
    }
}

}  // namespace

KernelBenchReport run_kernel_bench(const KernelBenchOptions& options) {
  KernelBenchReport report;
  Stream stream;
  const CopyBandwidth copy = measure_copy_bandwidth(size_t{1} << 30, options.reps, stream.get());
  report.copy_buffer_bytes = static_cast<double>(copy.buffer_bytes);
  report.copy_gbps = copy.gbps;
  {
    const Layer20bExperts layer;
    bench_moe(report, layer, options.reps, stream.get());
    if (options.gemm) bench_moe_gemm(report, layer, options.reps, stream.get());
  }
  bench_bf16(report, options.reps, stream.get());
  if (options.gemm) {
    report.mma_peak_tflops = measure_mma_bf16_tflops(options.reps, stream.get());
    bench_bf16_gemm(report, options.reps, stream.get());
  }
  bench_ops(report, options.reps, stream.get());
  bench_attention_decode(report, options.reps, stream.get());
  bench_attention_prefill(report, options.reps, stream.get());
  OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  return report;
}

}  // namespace ossrun::gpu
