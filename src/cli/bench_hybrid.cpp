// `ossrun bench hybrid --model DIR --vram 4G,6G,8G,12G`: the hybrid offload at several VRAM budgets, three
// expert placements at each (equal VRAM), beside the bandwidth bound measured in the same run.
//
// Placements (SessionOptions::expert_placement):
//   cpu-only       attention on the GPU, every expert on the CPU;
//   static-layers  the first N layers' experts on the CPU, all experts of the others on the GPU (N as small as
//                  the budget allows);
//   cache          the router-statistics expert cache (the product), warmed first: --warm tokens decoded
//                  before timing (and whatever statistics were saved next to the model).
// For each: decode tok/s, the expert hit rate, bytes per token (GPU memory: dense weights + GPU experts; CPU
// memory: CPU experts; PCIe up and down), and the bound those bytes imply at the bandwidths measured here
// (CPU: cpu_kernels' read probe; GPU: device-to-device copy), i.e. cpu_bytes / cpu_bw + gpu_bytes / gpu_bw
// per token, beside the measured time per token; the decode hand-off per layer; prefill tok/s at
// --prefill-tokens (2048) random ids.
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
#include "src/cli/bench_command.h"
#include "src/engine/sampler.h"
#include "src/engine/session.h"
#include "src/gpu/device.h"
#include "src/model/checkpoint.h"
#include "src/model/error.h"
#include "src/model/inspect.h"
#if OSSRUN_HAVE_CUDA
#include "gpu_kernels/copy_bandwidth.cuh"
#endif

namespace ossrun::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Flags {
  std::string model;
  std::string vram = "4G,6G,8G,12G";
  int threads = 0;
  int64_t tokens = 64;           // timed decode tokens
  int64_t warm = 256;            // tokens decoded before timing the cache placement
  int64_t prefill_tokens = 2048;
  uint64_t seed = 1;
};

std::vector<uint64_t> parse_budgets(const std::string& list) {
  std::vector<uint64_t> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(offload::parse_byte_size(item, "--vram"));
  if (out.empty()) throw InputError("--vram: give at least one budget, e.g. 8G");
  return out;
}

// GPU-side bytes of one decoded token besides the experts: attention, router, norms, lm_head.
uint64_t gpu_dense_bytes(const ModelConfig& c) {
  const CheckpointSummary s = summarize(c);
  auto bytes = [&](Component k) { return s.by_component[static_cast<size_t>(k)].bytes; };
  return bytes(Component::Attention) + bytes(Component::Norms) + bytes(Component::Router) +
         (c.tie_word_embeddings ? bytes(Component::Embedding) : bytes(Component::LmHead));
}

struct Row {
  std::string placement;
  double tok_s = 0, hit = 0;
  double gpu_b = 0, cpu_b = 0, up_b = 0, down_b = 0;  // per token
  double bound_ms = 0, measured_ms = 0;
  double handoff_cpu_ms = 0, handoff_total_ms = 0;
  double prefill_tok_s = 0;
  uint64_t vram_used = 0;
};

Row run_placement(const Checkpoint& ck, const Flags& f, uint64_t budget, const std::string& placement, double cpu_gbps,
                  double gpu_gbps) {
  engine::SessionOptions o;
  o.backend = engine::Backend::Gpu;
  o.vram_budget = budget;
  o.threads = f.threads;
  o.policy = "router";
  o.expert_placement = placement;
  o.ctx = std::max(f.prefill_tokens, f.warm + f.tokens + 1);
  engine::Session s(ck, o);
  const ModelConfig& c = s.config();
  std::mt19937_64 rng(f.seed);
  auto random_id = [&] { return static_cast<int32_t>(rng() % static_cast<uint64_t>(c.vocab_size)); };

  // Prefill throughput first (it also warms the statistics a little), then decode from a fresh sequence.
  std::vector<int32_t> prompt(static_cast<size_t>(f.prefill_tokens));
  for (int32_t& id : prompt) id = random_id();
  auto t0 = Clock::now();
  std::span<const float> logits = s.prefill(prompt);
  Row r;
  r.placement = placement;
  r.prefill_tok_s = static_cast<double>(f.prefill_tokens) / seconds_since(t0);

  s.reset();
  logits = s.decode(random_id());
  const int64_t warm = placement == "cache" ? f.warm : 8;  // a few tokens everywhere: first-touch costs
  for (int64_t i = 0; i < warm; ++i) logits = s.decode(engine::argmax(logits));
  const engine::SessionReport a = s.report();
  t0 = Clock::now();
  for (int64_t i = 0; i < f.tokens; ++i) logits = s.decode(engine::argmax(logits));
  const double secs = seconds_since(t0);
  const engine::SessionReport b = s.report();

  const double n = static_cast<double>(f.tokens);
  r.tok_s = n / secs;
  r.measured_ms = 1e3 * secs / n;
  const double calls = static_cast<double>(b.expert_calls - a.expert_calls);
  r.hit = calls > 0 ? static_cast<double>(b.expert_calls_gpu - a.expert_calls_gpu) / calls : 0;
  r.gpu_b = static_cast<double>(gpu_dense_bytes(c)) + static_cast<double>(b.offload.gpu_expert_bytes - a.offload.gpu_expert_bytes) / n;
  r.cpu_b = static_cast<double>(b.offload.cpu_expert_bytes - a.offload.cpu_expert_bytes) / n;
  r.up_b = static_cast<double>(b.offload.pcie_up_bytes - a.offload.pcie_up_bytes) / n;
  r.down_b = static_cast<double>(b.offload.pcie_down_bytes - a.offload.pcie_down_bytes) / n;
  r.bound_ms = 1e3 * (r.cpu_b / (cpu_gbps * 1e9) + r.gpu_b / (gpu_gbps * 1e9));
  r.handoff_cpu_ms = b.offload.handoff_cpu_ms;
  r.handoff_total_ms = b.offload.handoff_total_ms;
  r.vram_used = b.vram_bytes;
  return r;
}

#if OSSRUN_HAVE_CUDA
double gpu_copy_gbps() { return gpu::measure_copy_bandwidth(size_t{1} << 30, 10, nullptr).gbps; }
#else
[[noreturn]] double gpu_copy_gbps() {
  throw std::runtime_error("bench hybrid: this ossrun was built without CUDA (configure with nvcc present)");
}
#endif

void run_bench_hybrid(const Flags& f) {
  const std::vector<uint64_t> budgets = parse_budgets(f.vram);
  const gpu::DeviceInfo& dev = gpu::probe();
  if (!dev.present) throw std::runtime_error("bench hybrid: " + gpu::describe(dev));
  const auto ck = Checkpoint::open(f.model);
  std::printf("device: %s\n", gpu::describe(dev).c_str());
  cpu::ThreadPool pool(cpu::ThreadPoolOptions{.threads = f.threads});
  cpu::ReadBandwidthProbe cpu_probe(pool, cpu::default_bandwidth_buffer_bytes());
  const double gpu_gbps = gpu_copy_gbps();
  std::printf("GPU copy bandwidth %.1f GB/s (bytes read + written); CPU read bandwidth measured between placements\n\n",
              gpu_gbps);
  std::printf("%-7s %-14s %8s %6s %9s %9s %9s %9s %9s %9s %8s %8s %9s\n", "vram", "placement", "tok/s", "hit",
              "GPU MB/t", "CPU MB/t", "up MB/t", "down KB/t", "ms/token", "bound ms", "hand-off", "(total)", "prefill");
  for (uint64_t budget : budgets) {
    for (const char* placement : {"cpu-only", "static-layers", "cache"}) {
      const double cpu_gbps = cpu_probe.pass_gbps();  // the same conditions as the run that follows
      const Row r = run_placement(*ck, f, budget, placement, cpu_gbps, gpu_gbps);
      std::printf("%-7s %-14s %8.2f %5.1f%% %9.1f %9.1f %9.2f %9.1f %9.2f %9.2f %6.3fms %6.3fms %7.1f/s\n",
                  offload::format_bytes(budget).c_str(), r.placement.c_str(), r.tok_s, 100 * r.hit, r.gpu_b * 1e-6,
                  r.cpu_b * 1e-6, r.up_b * 1e-6, r.down_b * 1e-3, r.measured_ms, r.bound_ms, r.handoff_cpu_ms,
                  r.handoff_total_ms, r.prefill_tok_s);
      std::printf("        (CPU read %.1f GB/s; bound = CPU MB / CPU GB/s + GPU MB / GPU GB/s; %s VRAM held)\n", cpu_gbps,
                  offload::format_bytes(r.vram_used).c_str());
      std::fflush(stdout);
    }
  }
}

}  // namespace

void add_bench_hybrid(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "hybrid", "Hybrid offload: decode and prefill at several VRAM budgets, three placements, beside the bandwidth bound");
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "Checkpoint directory")->required();
  cmd->add_option("--vram", f->vram, "Comma-separated VRAM budgets (default 4G,6G,8G,12G)");
  cmd->add_option("--threads", f->threads, "CPU threads (default: one per core)");
  cmd->add_option("--tokens", f->tokens, "Timed decode tokens per placement (default 64)")->check(CLI::PositiveNumber);
  cmd->add_option("--warm", f->warm, "Tokens decoded before timing the cache placement (default 256)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--prefill-tokens", f->prefill_tokens, "Random ids prefilled per placement (default 2048)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", f->seed, "Seed of the random ids (default 1)");
  cmd->footer("Example:\n  ossrun bench hybrid --model ~/models/gpt-oss-20b --vram 4G,8G");
  cmd->callback([f] { run_bench_hybrid(*f); });
}

}  // namespace ossrun::cli
