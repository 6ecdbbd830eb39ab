// `ossrun bench hybrid-experts --model DIR --vram 1G,2G`: the hybrid offload's expert layer alone (no
// attention: what HybridExperts::run costs per token), driven by a synthetic routing trace
// (offload/trace_synth.h, --skew), at several expert budgets and the three placements of `bench hybrid`.
// It needs no forward pass, so it measures the offload on any checkpoint shape, e.g. a synthetic one:
//   ossrun synth --preset gpt-oss-20b --layers 6 --sparse-experts /tmp/oss20b-6l
// Per row: decode tok/s through all layers' experts, the hit rate, bytes per token (GPU experts, CPU
// experts, PCIe up/down), the bound cpu_bytes / CPU read GB/s + gpu_bytes / GPU copy GB/s (both measured
// in this run) beside the measured time, the hand-off per layer, and prefill tok/s (chunks of 512).
// Slots per layer: the budget's slots spread evenly (the planner's rule without statistics).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_kernels/memory_bandwidth.h"
#include "cpu_kernels/thread_pool.h"
#include "offload/byte_size.h"
#include "offload/trace_synth.h"
#include "src/cli/bench_command.h"
#include "src/gpu/device.h"
#include "src/model/checkpoint.h"
#include "src/model/error.h"
#if OSSRUN_HAVE_CUDA
#include "gpu_kernels/copy_bandwidth.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "src/gpu/hybrid_experts.cuh"
#endif

namespace ossrun::cli {
namespace {

struct Flags {
  std::string model;
  std::string vram = "1G,2G,4G";
  int threads = 0;
  int64_t tokens = 64, warm = 256, prefill_tokens = 2048;
  double skew = 1.0;
};

#if OSSRUN_HAVE_CUDA
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void run(const Flags& f) {
  const gpu::DeviceInfo& dev = gpu::probe();
  if (!dev.present) throw std::runtime_error("bench hybrid-experts: " + gpu::describe(dev));
  std::vector<uint64_t> budgets;
  std::stringstream ss(f.vram);
  for (std::string item; std::getline(ss, item, ',');) budgets.push_back(offload::parse_byte_size(item, "--vram"));
  const auto ck = Checkpoint::open(f.model);
  const ModelConfig& c = ck->config();
  const int L = static_cast<int>(c.num_hidden_layers), E = static_cast<int>(c.num_local_experts),
            k = static_cast<int>(c.num_experts_per_tok);
  const int64_t H = c.hidden_size, chunk = 512;
  const int64_t T = std::max(f.warm + f.tokens, f.prefill_tokens);

  // Routing per layer as (T, k) device arrays; equal weights; random inputs.
  offload::SyntheticTraceParams tp;
  tp.shape = {L, E, k};
  tp.tokens = T;
  tp.skew = f.skew;
  const offload::Trace trace = offload::generate_synthetic_trace(tp);
  std::vector<gpu::DeviceBuffer<int32_t>> ids;
  for (int l = 0; l < L; ++l) {
    std::vector<int32_t> v;
    for (int64_t t = 0; t < T; ++t)
      for (uint16_t e : trace.ids(t, l)) v.push_back(e);
    ids.emplace_back(v);
  }
  const gpu::DeviceBuffer<float> weights(std::vector<float>(static_cast<size_t>(chunk * k), 1.0f / k));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xh(static_cast<size_t>(chunk * H));
  for (float& v : xh) v = u(rng);
  const gpu::DeviceBuffer<float> x(xh);
  gpu::DeviceBuffer<float> residual(static_cast<size_t>(chunk * H));
  cudaStream_t stream;
  OSSRUN_CUDA_CHECK(cudaStreamCreate(&stream));

  // Every expert page read once, so that no placement pays the first page faults.
  const gpu::SlotLayout layout = gpu::SlotLayout::of(ck->expert(0, 0));
  volatile uint8_t sink = 0;
  for (int l = 0; l < L; ++l)
    for (int e = 0; e < E; ++e) {
      const auto pieces = gpu::slice_pieces(ck->expert(l, e));
      for (size_t q = 0; q < pieces.size(); ++q)
        for (size_t i = 0; i < layout.bytes[q]; i += 4096) sink = sink + static_cast<uint8_t>(pieces[q][i]);
    }
  cpu::ThreadPool pool(cpu::ThreadPoolOptions{.threads = f.threads});
  cpu::ReadBandwidthProbe cpu_probe(pool, cpu::default_bandwidth_buffer_bytes());
  const double gpu_gbps = gpu::measure_copy_bandwidth(size_t{1} << 30, 10, stream).gbps;
  const uint64_t stride = layout.stride;
  std::printf("device: %s; GPU copy %.1f GB/s; %d layers x %d experts (top-%d), slice %.2f MB; trace skew %.2f\n",
              gpu::describe(dev).c_str(), gpu_gbps, L, E, k, static_cast<double>(stride) * 1e-6, f.skew);
  std::printf("%-9s %-14s %7s %6s %8s %8s %8s %8s %8s %8s %8s %8s %9s\n", "budget", "placement", "tok/s", "hit",
              "GPU MB/t", "CPU MB/t", "up MB/t", "down KB/t", "ms/tok", "bound ms", "handoff", "(total)", "prefill");

  auto decode = [&](gpu::HybridExperts& h, int64_t t0, int64_t n) {
    for (int64_t t = t0; t < t0 + n; ++t)
      for (int l = 0; l < L; ++l)
        h.run({.layer = l, .n = 1, .x = x.get(), .ids = ids[static_cast<size_t>(l)].get() + t * k,
               .weights = weights.get(), .residual = residual.get(), .stream = stream});
    OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream));
  };
  for (uint64_t budget : budgets) {
    for (gpu::HybridPlacement placement :
         {gpu::HybridPlacement::CpuOnly, gpu::HybridPlacement::StaticLayers, gpu::HybridPlacement::Cache}) {
      gpu::HybridOptions o;
      o.placement = placement;
      o.threads = f.threads;
      o.max_tokens = chunk;
      o.vram_budget = budget;
      offload::MemoryPlan plan;
      plan.layers.resize(static_cast<size_t>(L));
      const int64_t slots = static_cast<int64_t>(budget / stride);
      for (int l = 0; l < L; ++l)
        plan.layers[static_cast<size_t>(l)].gpu_slots = static_cast<int>(std::min<int64_t>(E, slots / L + (l < slots % L)));
      gpu::HybridExperts h(*ck, plan, o);
      const double cpu_gbps = cpu_probe.pass_gbps();
      const int64_t warm = placement == gpu::HybridPlacement::Cache ? f.warm : 8;
      decode(h, 0, warm);
      h.drain_uploads();
      const gpu::HybridCounters a = h.counters();
      auto t0 = Clock::now();
      decode(h, warm, f.tokens);
      const double secs = seconds_since(t0);
      const gpu::HybridCounters b = h.counters();
      const double n = static_cast<double>(f.tokens);
      const double hit = static_cast<double>(b.expert_calls_gpu - a.expert_calls_gpu) /
                         static_cast<double>(std::max<uint64_t>(b.expert_calls - a.expert_calls, 1));
      const double gpu_b = static_cast<double>(b.gpu_weight_bytes - a.gpu_weight_bytes) / n;
      const double cpu_b = static_cast<double>(b.cpu_weight_bytes - a.cpu_weight_bytes) / n;
      const double bound_ms = 1e3 * (cpu_b / (cpu_gbps * 1e9) + gpu_b / (gpu_gbps * 1e9));
      double hc = 0, ht = 0;
      uint64_t hn = 0;
      for (const gpu::HandoffStats& s : h.handoff()) hc += s.cpu_ms_sum, ht += s.total_ms_sum, hn += s.count;
      // Prefill: chunks of 512 tokens through every layer.
      t0 = Clock::now();
      for (int64_t p = 0; p + chunk <= f.prefill_tokens; p += chunk)
        for (int l = 0; l < L; ++l)
          h.run({.layer = l, .n = static_cast<int>(chunk), .x = x.get(), .ids = ids[static_cast<size_t>(l)].get() + p * k,
                 .weights = weights.get(), .residual = residual.get(), .stream = stream});
      OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream));
      const double prefill_tok_s = static_cast<double>(f.prefill_tokens / chunk * chunk) / seconds_since(t0);
      std::printf("%-9s %-14s %7.1f %5.1f%% %8.1f %8.1f %8.2f %8.1f %8.2f %8.2f %6.3fms %6.3fms %7.0f/s\n",
                  offload::format_bytes(budget).c_str(), gpu::hybrid_placement_name(placement), n / secs, 100 * hit,
                  gpu_b * 1e-6, cpu_b * 1e-6, static_cast<double>(b.pcie_up_bytes - a.pcie_up_bytes) / n * 1e-6,
                  static_cast<double>(b.pcie_down_bytes - a.pcie_down_bytes) / n * 1e-3, 1e3 * secs / n, bound_ms,
                  hn ? hc / static_cast<double>(hn) : 0.0, hn ? ht / static_cast<double>(hn) : 0.0, prefill_tok_s);
      std::printf("          (%s; CPU read %.1f GB/s; %s VRAM held; PCIe %.1f GB/s probed)\n", h.describe().c_str(),
                  cpu_gbps, offload::format_bytes(h.device_bytes()).c_str(), h.throughput().pcie_bytes_per_s * 1e-9);
      std::fflush(stdout);
    }
  }
  OSSRUN_CUDA_CHECK(cudaStreamDestroy(stream));
}
#else
[[noreturn]] void run(const Flags&) {
  throw std::runtime_error("bench hybrid-experts: this ossrun was built without CUDA (configure with nvcc present)");
}
#endif

}  // namespace

void add_bench_hybrid_experts(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("hybrid-experts",
                                   "Hybrid offload's expert layer alone on a synthetic routing trace, three placements "
                                   "per budget, beside the bandwidth bound");
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "Checkpoint directory (MXFP4 experts)")->required();
  cmd->add_option("--vram", f->vram, "Comma-separated expert budgets (default 1G,2G,4G)");
  cmd->add_option("--threads", f->threads, "CPU threads (default: one per core)");
  cmd->add_option("--tokens", f->tokens, "Timed decode tokens (default 64)")->check(CLI::PositiveNumber);
  cmd->add_option("--warm", f->warm, "Tokens before timing the cache placement (default 256)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--prefill-tokens", f->prefill_tokens, "Prefilled tokens, chunks of 512 (default 2048)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--skew", f->skew, "Zipf exponent of the synthetic routing (default 1)")->check(CLI::Range(0.0, 6.0));
  cmd->callback([f] { run(*f); });
}

}  // namespace ossrun::cli
