// `ossrun bench kernels`: each CPU kernel's achieved GB/s at gpt-oss shapes, for every ISA this machine runs,
// beside the read bandwidth measured in the same run (decode is bandwidth bound: that is the ceiling).
//
// The weights are synthetic but shaped and laid out as in the checkpoint: random nibbles, scale bytes in the
// range real experts use and bf16 values of ordinary magnitude (speed must not depend on subnormal or NaN
// arithmetic). Every kernel cycles through enough copies of its weights (experts of a layer, replicas of a dense
// matrix) to read at least as many bytes per sweep as the read-bandwidth probe, far more than the last-level
// cache, so that calls stream their weights from DRAM as decode does. Weights are allocated per kernel group and
// freed after it, to keep the peak footprint near that of the lm_head.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cpu_kernels/cpu_features.h"
#include "cpu_kernels/kernels.h"
#include "cpu_kernels/memory_bandwidth.h"
#include "cpu_kernels/thread_pool.h"
#include "src/cli/bench_command.h"
#include "src/model/mxfp4.h"

namespace ossrun::cli {
namespace {

using cpu::KernelTable;
using cpu::LargeBuffer;
using cpu::ThreadPool;

// gpt-oss shapes (gpt-oss.md §1-§2); hidden and intermediate are both 2880.
constexpr int64_t kHidden = 2880, kIntermediate = 2880, kTopK = 4;
constexpr int64_t kQRows = 4096, kKvRows = 512, kVocab = 201088, kAttnOut = 4096;
constexpr int64_t kRowAlign = 16;  // task boundaries on multiples of 16 rows

struct BenchKernelsFlags {
  int threads = 0;
  std::string isa = "all";
  double seconds = 1.0;
};

// How many copies of `bytes` to cycle through so that one sweep reads at least what the bandwidth probe reads.
int64_t copies_for(int64_t bytes) {
  return std::max<int64_t>(1, (cpu::default_bandwidth_buffer_bytes() + bytes - 1) / bytes);
}

// Makes random bytes look like real weights: scale bytes 118..126 (2^-9 .. 2^-1), bf16 values of magnitude
// 2^-7 .. 2^-6 with random sign and mantissa.
void make_realistic_scales(ThreadPool& pool, LargeBuffer& scales) {
  uint8_t* s = scales.data();
  const int64_t n = scales.size(), parts = 64;
  pool.parallel_for(parts, [&](int64_t p) {
    const cpu::TaskRange r = cpu::split_range(n, parts, p);
    for (int64_t i = r.begin; i < r.end; ++i) s[i] = static_cast<uint8_t>(118 + s[i] % 9);
  });
}
void make_realistic_bf16(ThreadPool& pool, LargeBuffer& buffer) {
  uint16_t* w = reinterpret_cast<uint16_t*>(buffer.data());
  const int64_t n = buffer.size() / 2, parts = 64;
  pool.parallel_for(parts, [&](int64_t p) {
    const cpu::TaskRange r = cpu::split_range(n, parts, p);
    for (int64_t i = r.begin; i < r.end; ++i) w[i] = static_cast<uint16_t>((w[i] & 0x807f) | 0x3c00);
  });
}

// MXFP4 expert tensors (gate_up or down) with their bias, in checkpoint layout, for n_experts experts.
struct ExpertWeights {
  int64_t rows, K, n_experts;
  LargeBuffer blocks;          // (n_experts, rows, K/32, 16) u8
  LargeBuffer scales;          // (n_experts, rows, K/32) u8
  std::vector<uint16_t> bias;  // (n_experts, rows) bf16

  ExpertWeights(ThreadPool& pool, int64_t rows_, int64_t K_, uint64_t seed)
      : rows(rows_),
        K(K_),
        n_experts(std::max<int64_t>(32, copies_for(rows_ * K_ / 2))),  // at least a layer's 32 experts
        blocks(pool, n_experts * rows_ * K_ / 2, seed),
        scales(pool, n_experts * rows_ * K_ / mxfp4::kBlock, seed + 1),
        bias(static_cast<size_t>(n_experts * rows_), 0x3c00) {
    make_realistic_scales(pool, scales);
  }
  const uint8_t* expert_blocks(int64_t e) const { return blocks.data() + e * rows * K / 2; }
  const uint8_t* expert_scales(int64_t e) const { return scales.data() + e * rows * K / mxfp4::kBlock; }
  const uint16_t* expert_bias(int64_t e) const { return bias.data() + e * rows; }
  int64_t bytes_per_expert() const { return rows * K / 2 + rows * K / mxfp4::kBlock + rows * 2; }
};

// Replicas of one bf16 matrix (rows, K) and a bias of `bias_len` values.
struct DenseWeights {
  int64_t rows, K, copies;
  LargeBuffer data;            // (copies, rows, K) bf16
  std::vector<uint16_t> bias;  // (bias_len) bf16

  DenseWeights(ThreadPool& pool, int64_t rows_, int64_t K_, int64_t bias_len, uint64_t seed)
      : rows(rows_),
        K(K_),
        copies(copies_for(rows_ * K_ * 2)),
        data(pool, copies * rows_ * K_ * 2, seed),
        bias(static_cast<size_t>(bias_len), 0x3c00) {
    make_realistic_bf16(pool, data);
  }
  const uint16_t* copy(int64_t c) const { return reinterpret_cast<const uint16_t*>(data.data()) + c * rows * K; }
};

// Activations and outputs shared by every benchmark.
struct Vectors {
  std::vector<float> x = std::vector<float>(static_cast<size_t>(std::max(kAttnOut, kHidden)));
  std::vector<float> out = std::vector<float>(static_cast<size_t>(kVocab));
  std::vector<float> act = std::vector<float>(static_cast<size_t>(kTopK * kIntermediate));  // (4, I)
  std::vector<float> y = std::vector<float>(static_cast<size_t>(kTopK * kHidden));          // (4, hidden)
  std::vector<uint16_t> tile = std::vector<uint16_t>(static_cast<size_t>(2 * kIntermediate * kHidden));
  Vectors() {
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i * 37 % 101) - 50) / 50.0f;
  }
};

// One benchmark: a sweep is `calls` calls that together read every copy of the weights once. `in_cache` runs
// the kernel on the calling thread alone over a slice small enough for L2 and returns the bytes it read: the
// kernel's compute ceiling per core, which says whether the DRAM figure is bound by memory or by the core.
struct KernelBench {
  std::string kernel, shape;
  int64_t bytes_per_call;  // weight bytes read per call (dequantize: read + written)
  int64_t calls;
  std::function<void(const KernelTable&, int64_t call)> run;  // owns (shares) the weights it reads
  std::function<int64_t(const KernelTable&)> in_cache;
};

constexpr int64_t kInCacheRows = 256;  // rows of a slice for the in-cache figure (0.7-1.5 MB)

struct Timing {
  double best_gbps, median_gbps, median_us_per_call;
  double read_best_gbps;  // the best read pass interleaved with the sweeps
  double in_cache_gbps;   // one thread, weights in L2
};

// After one untimed warm-up sweep, alternates timed sweeps with read-bandwidth passes until `min_seconds` have
// passed and at least 3 of each were timed, so that kernel and ceiling see the same conditions (on a shared
// machine the bandwidth left to us drifts from second to second).
Timing measure(const KernelBench& b, const KernelTable& table, cpu::ReadBandwidthProbe& probe, double min_seconds) {
  using clock = std::chrono::steady_clock;
  auto sweep = [&] {
    const auto t0 = clock::now();
    for (int64_t c = 0; c < b.calls; ++c) b.run(table, c);
    return std::chrono::duration<double>(clock::now() - t0).count();
  };
  sweep();
  std::vector<double> seconds;
  double read_best = 0;
  const auto start = clock::now();
  while (seconds.size() < 3 || std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    seconds.push_back(sweep());
    read_best = std::max(read_best, probe.pass_gbps());
  }
  std::sort(seconds.begin(), seconds.end());
  const double bytes = static_cast<double>(b.bytes_per_call * b.calls);
  const double median = seconds[seconds.size() / 2];
  // In cache: best of 20 repetitions after a warm-up.
  b.in_cache(table);
  double in_cache_best = 0;
  for (int rep = 0; rep < 20; ++rep) {
    const auto t0 = clock::now();
    const auto cached_bytes = static_cast<double>(b.in_cache(table));
    in_cache_best = std::max(in_cache_best, cached_bytes / std::chrono::duration<double>(clock::now() - t0).count());
  }
  return {bytes / seconds.front() * 1e-9, bytes / median * 1e-9, median / static_cast<double>(b.calls) * 1e6, read_best,
          in_cache_best * 1e-9};
}

// Splits [0, n) into about 4 tasks per thread on kRowAlign boundaries and runs fn(begin, end) over the pool.
void parallel_rows(ThreadPool& pool, int64_t n, cpu::FunctionRef<void(int64_t, int64_t)> fn) {
  const int64_t tasks = std::min<int64_t>(4 * pool.size(), (n + kRowAlign - 1) / kRowAlign);
  pool.parallel_for(tasks, [&](int64_t t) {
    const cpu::TaskRange r = cpu::split_range(n, tasks, t, kRowAlign);
    if (r.begin < r.end) fn(r.begin, r.end);
  });
}

std::string shape(int64_t rows, int64_t K) { return std::to_string(rows) + "x" + std::to_string(K); }

// The MXFP4 expert kernels over one layer's gate_up and down tensors.
std::vector<KernelBench> expert_benches(ThreadPool& pool, Vectors& v) {
  auto gate_up = std::make_shared<ExpertWeights>(pool, 2 * kIntermediate, kHidden, 10);
  auto down = std::make_shared<ExpertWeights>(pool, kHidden, kIntermediate, 20);
  const int64_t per_expert_tasks = std::max(1, pool.size());
  return {
      {"gate_up_swiglu_mxfp4", shape(gate_up->rows, kHidden) + ", 1 expert", gate_up->bytes_per_expert(),
       gate_up->n_experts,
       [&pool, &v, gate_up](const KernelTable& t, int64_t e) {
         parallel_rows(pool, kIntermediate, [&](int64_t j0, int64_t j1) {
           t.gate_up_swiglu_mxfp4(gate_up->expert_blocks(e), gate_up->expert_scales(e), gate_up->expert_bias(e),
                                  v.x.data(), v.act.data(), kHidden, j0, j1, {});
         });
       },
       [&v, gate_up](const KernelTable& t) {
         t.gate_up_swiglu_mxfp4(gate_up->expert_blocks(0), gate_up->expert_scales(0), gate_up->expert_bias(0),
                                v.x.data(), v.act.data(), kHidden, 0, kInCacheRows / 2, {});
         return kInCacheRows * gate_up->bytes_per_expert() / gate_up->rows;
       }},
      {"matvec_mxfp4 (down)", shape(down->rows, kIntermediate) + ", 1 expert", down->bytes_per_expert(),
       down->n_experts,
       [&pool, &v, down](const KernelTable& t, int64_t e) {
         parallel_rows(pool, kHidden, [&](int64_t r0, int64_t r1) {
           t.matvec_mxfp4(down->expert_blocks(e), down->expert_scales(e), down->expert_bias(e), v.x.data(),
                          v.out.data(), kIntermediate, r0, r1);
         });
       },
       [&v, down](const KernelTable& t) {
         t.matvec_mxfp4(down->expert_blocks(0), down->expert_scales(0), down->expert_bias(0), v.x.data(), v.out.data(),
                        kIntermediate, 0, kInCacheRows);
         return kInCacheRows * down->bytes_per_expert() / down->rows;
       }},
      // A token's MoE: its 4 experts' gate_up in one pass over the pool, then their down projections in another.
      {"moe token: gate_up, down", "4 experts, 2 passes",
       kTopK * (gate_up->bytes_per_expert() + down->bytes_per_expert()),
       std::max(gate_up->n_experts, down->n_experts) / kTopK,
       [&pool, &v, gate_up, down, per_expert_tasks](const KernelTable& t, int64_t token) {
         pool.parallel_for(kTopK * per_expert_tasks, [&](int64_t task) {
           const int64_t slot = task / per_expert_tasks, e = (token * kTopK + slot) % gate_up->n_experts;
           const auto r = cpu::split_range(kIntermediate, per_expert_tasks, task % per_expert_tasks, kRowAlign);
           t.gate_up_swiglu_mxfp4(gate_up->expert_blocks(e), gate_up->expert_scales(e), gate_up->expert_bias(e),
                                  v.x.data(), v.act.data() + slot * kIntermediate, kHidden, r.begin, r.end, {});
         });
         pool.parallel_for(kTopK * per_expert_tasks, [&](int64_t task) {
           const int64_t slot = task / per_expert_tasks, e = (token * kTopK + slot) % down->n_experts;
           const auto r = cpu::split_range(kHidden, per_expert_tasks, task % per_expert_tasks, kRowAlign);
           t.matvec_mxfp4(down->expert_blocks(e), down->expert_scales(e), down->expert_bias(e),
                          v.act.data() + slot * kIntermediate, v.y.data() + slot * kHidden, kIntermediate, r.begin,
                          r.end);
         });
       },
       [&v, gate_up, down](const KernelTable& t) {  // a slice of each tensor, in the same proportion
         t.gate_up_swiglu_mxfp4(gate_up->expert_blocks(0), gate_up->expert_scales(0), gate_up->expert_bias(0),
                                v.x.data(), v.act.data(), kHidden, 0, kInCacheRows / 2, {});
         t.matvec_mxfp4(down->expert_blocks(0), down->expert_scales(0), down->expert_bias(0), v.act.data(), v.y.data(),
                        kIntermediate, 0, kInCacheRows / 2);
         return kInCacheRows / 2 *
                (gate_up->bytes_per_expert() / gate_up->rows * 2 + down->bytes_per_expert() / down->rows);
       }},
      {"dequantize_mxfp4_bf16", shape(gate_up->rows, kHidden) + ", read+written",
       gate_up->bytes_per_expert() + gate_up->rows * kHidden * 2, gate_up->n_experts,
       [&pool, &v, gate_up](const KernelTable& t, int64_t e) {
         parallel_rows(pool, gate_up->rows, [&](int64_t r0, int64_t r1) {
           t.dequantize_mxfp4_bf16(gate_up->expert_blocks(e), gate_up->expert_scales(e), v.tile.data(), kHidden, r0,
                                   r1);
         });
       },
       [&v, gate_up](const KernelTable& t) {
         t.dequantize_mxfp4_bf16(gate_up->expert_blocks(0), gate_up->expert_scales(0), v.tile.data(), kHidden, 0,
                                 kInCacheRows / 4);  // its output is 4x its input: keep both in L2
         return kInCacheRows / 4 * (gate_up->bytes_per_expert() / gate_up->rows + kHidden * 2);
       }},
  };
}

// matvec_bf16 over replicas of one dense (rows, K) weight.
std::vector<KernelBench> dense_bench(ThreadPool& pool, Vectors& v, const char* name, int64_t rows, int64_t K) {
  auto w = std::make_shared<DenseWeights>(pool, rows, K, rows, rows);
  return {{"matvec_bf16 " + std::string(name), shape(rows, K), rows * K * 2 + rows * 2, w->copies,
           [&pool, &v, w](const KernelTable& t, int64_t c) {
             parallel_rows(pool, w->rows, [&](int64_t r0, int64_t r1) {
               t.matvec_bf16(w->copy(c), w->bias.data(), v.x.data(), v.out.data(), w->K, r0, r1);
             });
           },
           [&v, w](const KernelTable& t) {
             const int64_t n = std::min(w->rows, kInCacheRows);
             t.matvec_bf16(w->copy(0), w->bias.data(), v.x.data(), v.out.data(), w->K, 0, n);
             return n * (w->K * 2 + 2);
           }}};
}

// matvec_bf16_t over replicas of a dense expert's gate_up in transformers' transposed (K, cols) layout.
std::vector<KernelBench> transposed_bench(ThreadPool& pool, Vectors& v) {
  const int64_t cols = 2 * kIntermediate;
  auto w = std::make_shared<DenseWeights>(pool, kHidden, cols, cols, 80);
  return {{"matvec_bf16_t (dense expert)", shape(kHidden, cols) + " (K, cols)", kHidden * cols * 2 + cols * 2,
           w->copies,
           [&pool, &v, w, cols](const KernelTable& t, int64_t c) {
             const int64_t tasks = 4 * pool.size();
             pool.parallel_for(tasks, [&](int64_t task) {
               const cpu::TaskRange r = cpu::split_range(cols, tasks, task, 128);
               t.matvec_bf16_t(w->copy(c), w->bias.data(), v.x.data(), v.out.data(), w->rows, cols, r.begin, r.end);
             });
           },
           [&v, w, cols](const KernelTable& t) {  // 128 columns of all K rows: 0.7 MB
             t.matvec_bf16_t(w->copy(0), w->bias.data(), v.x.data(), v.out.data(), w->rows, cols, 0, 128);
             return w->rows * 128 * 2 + 128 * 2;
           }}};
}

std::vector<cpu::Isa> isas_to_run(const std::string& requested) {
  std::vector<cpu::Isa> isas;
  for (cpu::Isa isa : {cpu::Isa::Avx512, cpu::Isa::Avx2, cpu::Isa::Scalar}) {
    if (requested != "all" && requested != cpu::isa_name(isa)) continue;
    if (!cpu::isa_supported(isa)) {
      if (requested == "all") continue;
      throw CLI::ValidationError(
          "--isa", requested + " is not supported on this machine (detected: " + cpu::cpu_features().describe() + ")");
    }
    isas.push_back(isa);
  }
  return isas;
}

void run_bench_kernels(const BenchKernelsFlags& flags) {
  const std::vector<cpu::Isa> isas = isas_to_run(flags.isa);
  ThreadPool pool({.threads = flags.threads});
  std::printf("ossrun bench kernels: %d threads (%s); cpu: %s; last-level cache %.0f MiB\n", pool.size(),
              pool.pinned() ? "workers pinned to cores" : "not pinned", cpu::cpu_features().describe().c_str(),
              static_cast<double>(cpu::last_level_cache_bytes()) / (1 << 20));
  const cpu::ReadBandwidth bw = cpu::measure_read_bandwidth(pool, cpu::default_bandwidth_buffer_bytes(), 5);
  std::printf("memory read bandwidth: best %.1f GB/s, median %.1f GB/s (%.0f MiB buffer, %d passes)\n\n", bw.best_gbps,
              bw.median_gbps, static_cast<double>(bw.buffer_bytes) / (1 << 20), bw.passes);
  std::printf("%-28s %-26s %-6s %8s %9s %7s %7s %8s %6s %9s\n", "kernel", "shape", "isa", "MB/call", "us/call", "GB/s",
              "median", "read bw", "ratio", "1T in L2");
  std::fflush(stdout);

  cpu::ReadBandwidthProbe probe(pool, cpu::default_bandwidth_buffer_bytes());
  Vectors v;
  const std::vector<std::function<std::vector<KernelBench>()>> groups = {
      [&] { return expert_benches(pool, v); },
      [&] { return dense_bench(pool, v, "q_proj", kQRows, kHidden); },
      [&] { return dense_bench(pool, v, "k_proj", kKvRows, kHidden); },
      [&] { return dense_bench(pool, v, "v_proj", kKvRows, kHidden); },
      [&] { return dense_bench(pool, v, "o_proj", kHidden, kAttnOut); },
      [&] { return dense_bench(pool, v, "lm_head", kVocab, kHidden); },
      [&] { return transposed_bench(pool, v); },
  };
  for (const auto& make_group : groups) {
    const std::vector<KernelBench> benches = make_group();  // weights live until the group is done
    for (const KernelBench& b : benches) {
      for (cpu::Isa isa : isas) {
        const Timing t = measure(b, cpu::kernels(isa), probe, flags.seconds);
        std::printf("%-28s %-26s %-6s %8.2f %9.1f %7.1f %7.1f %8.1f %5.0f%% %9.1f\n", b.kernel.c_str(), b.shape.c_str(),
                    cpu::isa_name(isa), static_cast<double>(b.bytes_per_call) * 1e-6, t.median_us_per_call, t.best_gbps,
                    t.median_gbps, t.read_best_gbps, 100.0 * t.best_gbps / t.read_best_gbps, t.in_cache_gbps);
        std::fflush(stdout);
      }
    }
  }
  std::printf(
      "\nGB/s: weight bytes per call / time, best sweep (median beside). read bw: the best read pass interleaved\n"
      "with those sweeps. ratio: GB/s / read bw. 1T in L2: GB/s of one thread on a slice that fits in L2, the\n"
      "kernel's compute ceiling per core (a kernel is memory-bound when threads x this exceeds read bw).\n");
}

}  // namespace

void add_bench_kernels(CLI::App& bench) {
  auto* cmd =
      bench.add_subcommand("kernels", "Measure each CPU kernel's GB/s at gpt-oss shapes against memory bandwidth");
  auto flags = std::make_shared<BenchKernelsFlags>();
  cmd->add_option("--threads", flags->threads, "Threads, the caller included (0: one per physical core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--isa", flags->isa, "Kernel variant to measure")
      ->check(CLI::IsMember({"all", "scalar", "avx2", "avx512"}));
  cmd->add_option("--seconds", flags->seconds, "Minimum timed seconds per kernel and ISA")->check(CLI::PositiveNumber);
  cmd->footer("Example:\n  ossrun bench kernels --threads 8 --isa avx2");
  cmd->callback([flags] { run_bench_kernels(*flags); });
}

}  // namespace ossrun::cli
