// `ossrun bench gpu` measurements. Every kernel streams buffers larger than L2: the MoE bench cycles through
// 8 choice lists covering all 32 experts of a gpt-oss-20b layer (423 MB), the q projection through 8 weight
// copies (189 MB), lm_head is 1.16 GB by itself. Weights are random (scales in a realistic range), never zeros.
// Each figure is the median of `reps` timed groups of 8 calls (1 call for lm_head), launched back to back on a
// stream, and again as the replay of a CUDA graph of the same group (the decode loop will run as a graph).
// The MoE also runs as a graph of 24 calls, one per layer of gpt-oss-20b (expert sets cycled over the 32, so
// that a layer's weights are never in L2), for each MoeTuning measured.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gpu_kernels/bf16_matvec.cuh"
#include "gpu_kernels/copy_bandwidth.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/event_timer.cuh"
#include "gpu_kernels/kernel_bench.h"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"

namespace ossrun::gpu {
namespace {

// gpt-oss-20b
constexpr int kHidden = 2880, kIntermediate = 2880, kExperts = 32, kTopK = 4;
constexpr int kVocab = 201088, kQDim = 4096;
constexpr int kGroup = 8;    // calls per timed group (and distinct weight sets cycled through)
constexpr int kLayers = 24;  // gpt-oss-20b's layers: the MoE calls of one decoded token

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

// Times `group(stream)` (which makes `calls` calls) launched directly (unless graph_only), then captured once as
// a graph and replayed; appends one figure for each.
template <typename Group>
void time_both_ways(KernelBenchReport& report, const std::string& kernel, const std::string& shape, double bytes,
                    int calls, int reps, cudaStream_t stream, Group&& group, bool graph_only = false) {
  const double stream_ms = graph_only ? 0.0 : median_ms(stream, /*warmup=*/3, reps, group);
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
    if (graph_only && launch == std::string("stream")) continue;
    const double us = ms * 1e3 / calls;
    report.figures.push_back({kernel, shape, launch + std::string(" x") + std::to_string(calls), bytes, us,
                              bytes / (us * 1e-6) / 1e9});
  }
}

void bench_moe(KernelBenchReport& report, int reps, cudaStream_t stream) {
  const size_t gu_rows = 2 * kIntermediate, gu_g = kHidden / 32, dn_rows = kHidden, dn_g = kIntermediate / 32;
  DeviceBuffer<uint8_t> gu_blocks(kExperts * gu_rows * gu_g * 16), gu_scales(kExperts * gu_rows * gu_g);
  DeviceBuffer<uint8_t> dn_blocks(kExperts * dn_rows * dn_g * 16), dn_scales(kExperts * dn_rows * dn_g);
  DeviceBuffer<uint16_t> gu_bias(kExperts * gu_rows), dn_bias(kExperts * dn_rows);
  fill_bytes(gu_blocks, 1, 0, 256);
  fill_bytes(dn_blocks, 2, 0, 256);
  fill_bytes(gu_scales, 3, 118, 9);  // 2^-9 .. 2^-1, around the checkpoint's scales
  fill_bytes(dn_scales, 4, 118, 9);
  fill_bf16(gu_bias, 5, 0.5f);
  fill_bf16(dn_bias, 6, 0.5f);
  OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());  // the fills ran on the legacy stream

  std::vector<ExpertSlotMxfp4> slots(kExperts);
  for (size_t e = 0; e < kExperts; ++e)
    slots[e] = {gu_blocks.get() + e * gu_rows * gu_g * 16, gu_scales.get() + e * gu_rows * gu_g,
                gu_bias.get() + e * gu_rows,                dn_blocks.get() + e * dn_rows * dn_g * 16,
                dn_scales.get() + e * dn_rows * dn_g,       dn_bias.get() + e * dn_rows};
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

  const double expert_bytes = gu_rows * gu_g * 17.0 + gu_rows * 2.0 + dn_rows * dn_g * 17.0 + dn_rows * 2.0;
  const double bytes = kTopK * expert_bytes + kHidden * 4.0 /*x*/ + kHidden * 8.0 /*out read, written*/;
  const char* moe_shape = "H=2880 I=2880 k=4 of 32";
  // `calls` calls, call n with expert set n % kGroup.
  auto moe_calls = [&](int calls, MoeCombine combine, Mxfp4Lut lut, const MoeTuning& tuning) {
    return [&, calls, combine, lut, tuning](cudaStream_t s) {
      for (int n = 0; n < calls; ++n)
        mxfp4_moe_matvec(slots_d.get(), choices_d.get() + (n % kGroup) * kTopK, kTopK, x.get(), out.get(), shape,
                         SwigluParams{}, ws, s, combine, lut, tuning);
    };
  };
  for (MoeCombine combine : {MoeCombine::Deterministic, MoeCombine::Atomic}) {
    for (Mxfp4Lut lut : {Mxfp4Lut::F32x2, Mxfp4Lut::Bf16x2}) {
      const std::string name = std::string("mxfp4_moe_matvec ") + mxfp4_lut_name(lut) + " " +
                               (combine == MoeCombine::Deterministic ? "det" : "atomic");
      time_both_ways(report, name, moe_shape, bytes, kGroup, reps, stream, moe_calls(kGroup, combine, lut, {}));
    }
  }
  // The tunings, deterministic combine and f32x2 table; 24 calls = one token through gpt-oss-20b's layers.
  MoeTuning no_down = MoeTuning{}, no_lines = MoeTuning{}, no_pdl = MoeTuning{}, d3 = MoeTuning{}, d4 = MoeTuning{},
            chunk2 = MoeTuning{};
  no_down.prefetch_down = false;
  no_lines.line_prefetch = false;
  no_pdl.programmatic_launch = false;
  d3.prefetch_steps = 3;
  d4.prefetch_steps = 4;
  chunk2.gate_up_chunk = 2;
  const std::pair<const char*, MoeTuning> tunings[] = {
      {"v2", kMoeTuningV2},
      {"default", MoeTuning{}},
      {"default-prefetch_down", no_down},
      {"default-line_prefetch", no_lines},
      {"default-pdl", no_pdl},
      {"default d=3", d3},
      {"default d=4", d4},
      {"default+chunk2", chunk2},
  };
  for (const auto& [tname, tuning] : tunings) {
    const std::string name = std::string("moe det f32x2 ") + tname;
    time_both_ways(report, name, moe_shape, bytes, kGroup, reps, stream,
                   moe_calls(kGroup, MoeCombine::Deterministic, Mxfp4Lut::F32x2, tuning));
    time_both_ways(report, name, moe_shape, bytes, kLayers, reps, stream,
                   moe_calls(kLayers, MoeCombine::Deterministic, Mxfp4Lut::F32x2, tuning), /*graph_only=*/true);
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
    time_both_ways(report, "bf16_matvec", "lm_head 201088x2880", bytes, 1, reps, stream,
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
    time_both_ways(report, "bf16_matvec", "q 4096x2880 +bias", bytes, kGroup, reps, stream, [&](cudaStream_t s) {
      for (int n = 0; n < kGroup; ++n)
        bf16_matvec(W.get() + n * per, bias.get() + n * kQDim, x.get(), y.get(), kQDim, kHidden, s);
    });
  }
}

}  // namespace

KernelBenchReport run_kernel_bench(const KernelBenchOptions& options) {
  KernelBenchReport report;
  Stream stream;
  const CopyBandwidth copy = measure_copy_bandwidth(size_t{1} << 30, options.reps, stream.get());
  report.copy_buffer_bytes = static_cast<double>(copy.buffer_bytes);
  report.copy_gbps = copy.gbps;
  bench_moe(report, options.reps, stream.get());
  bench_bf16(report, options.reps, stream.get());
  OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  return report;
}

}  // namespace ossrun::gpu
