// `ossrun bench decode --model DIR [--tokens N] [--prompt-tokens P]`: the engine's speed beside its
// ceiling, measured in the same run, on whichever backend the session runs (the CPU, or the GPU when the
// model fits it).
//
// 1. Prefill of P random token ids: tok/s and GFLOP/s (2 per weight of the active path, plus attention).
// 2. Decode of N greedy tokens after that prompt: tok/s, the bytes each token reads (dense weights, k
//    experts per layer, lm_head, and the KV cache) and the GB/s that implies, beside the memory's bandwidth
//    measured in passes interleaved with the decoded tokens, so that both see the same conditions (other
//    processes, clocks): on the CPU cpu_kernels' read probe; on the GPU a device-to-device copy (bytes read
//    plus written). The share of the best pass is the figure of merit, and bytes per token / bandwidth is
//    the bound on decode speed.
// On the CPU every weight page is touched before timing, so the figures are for a model resident in the
// page cache; on the GPU the weights were uploaded at load and decode samples on the device.
#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdio>
#include <random>
#include <vector>

#include "cpu_kernels/memory_bandwidth.h"
#include "cpu_kernels/thread_pool.h"
#include "src/cli/bench_command.h"
#include "src/cli/commands.h"
#include "src/cli/progress.h"
#include "src/cli/session_flags.h"
#include "src/engine/sampler.h"
#include "src/gpu/gpu_backend.h"
#include "src/model/inspect.h"

namespace ossrun::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Reads one byte per page of every weight the forward pass uses (the embedding table: one row per token,
// so it is left alone), so that page faults are not timed. Reports its progress in bytes.
void touch_weights(const ModelWeights& w, ProgressReporter& progress) {
  std::vector<const TensorView*> tensors;
  for (const LayerWeights& l : w.layers)
    for (const TensorView* t : {&l.input_norm, &l.q_weight, &l.q_bias, &l.k_weight, &l.k_bias, &l.v_weight, &l.v_bias,
                                &l.o_weight, &l.o_bias, &l.sinks, &l.post_attention_norm, &l.router_weight, &l.router_bias,
                                &l.gate_up_blocks, &l.gate_up_scales, &l.down_blocks, &l.down_scales, &l.gate_up_weight,
                                &l.down_weight, &l.gate_up_bias, &l.down_bias})
      tensors.push_back(t);
  tensors.push_back(&w.final_norm);
  tensors.push_back(&w.lm_head);
  engine::LoadProgress p{.what = "reading the weights into the page cache"};
  for (const TensorView* t : tensors) p.total += t->bytes.size();
  volatile uint8_t sink = 0;
  for (const TensorView* t : tensors) {
    for (size_t i = 0; i < t->bytes.size(); i += 4096) sink = sink + static_cast<uint8_t>(t->bytes[i]);
    p.done += t->bytes.size();
    progress.update(p);
  }
  progress.finish();
}

// Weight bytes one decoded token reads: every dense tensor of every layer, k of the E expert slices per
// layer, the final norm, lm_head, and one embedding row.
struct TokenBytes {
  uint64_t dense = 0, experts = 0, lm_head = 0;
  uint64_t total() const { return dense + experts + lm_head; }
};

TokenBytes decode_weight_bytes(const ModelConfig& c) {
  const CheckpointSummary s = summarize(c);
  auto bytes = [&](Component k) { return s.by_component[static_cast<size_t>(k)].bytes; };
  TokenBytes b;
  b.dense = bytes(Component::Attention) + bytes(Component::Norms) + bytes(Component::Router) +
            static_cast<uint64_t>(c.hidden_size) * 2;  // one bf16 embedding row
  b.experts = s.expert_slice_bytes * static_cast<uint64_t>(c.num_experts_per_tok * c.num_hidden_layers);
  b.lm_head = c.tie_word_embeddings ? bytes(Component::Embedding) : bytes(Component::LmHead);
  return b;
}

// K and V bytes (f32 on the CPU, bf16 on the GPU) that attention reads for a query at position pos
// (sliding layers: the window).
uint64_t kv_bytes_read(const ModelConfig& c, int64_t pos, uint64_t element_bytes) {
  uint64_t n = 0;
  for (LayerType t : c.layer_types) {
    const int64_t keys = t == LayerType::SlidingAttention ? std::min(pos + 1, c.sliding_window) : pos + 1;
    n += static_cast<uint64_t>(keys * c.kv_dim() * 2) * element_bytes;
  }
  return n;
}

// Matmul FLOPs of prefilling n tokens from position 0: 2 per active weight per token (lm_head for the last
// token only) plus 4 * q_dim per visible key per layer for the attention scores and the weighted sum.
double prefill_flops(const ModelConfig& c, int64_t n) {
  const CheckpointSummary s = summarize(c);
  const double lm_head = static_cast<double>(c.vocab_size * c.hidden_size);
  const double per_token = 2.0 * (static_cast<double>(s.active_params) - lm_head);
  double attention = 0;
  for (int64_t i = 0; i < n; ++i)
    for (LayerType t : c.layer_types) {
      const int64_t keys = t == LayerType::SlidingAttention ? std::min(i + 1, c.sliding_window) : i + 1;
      attention += 4.0 * static_cast<double>(c.q_dim() * keys);
    }
  return per_token * static_cast<double>(n) + 2 * lm_head + attention;
}

}  // namespace

void add_bench_decode(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("decode", "Prefill and decode speed beside the measured memory bandwidth (CPU or GPU)");
  struct Flags {
    SessionFlags session;
    int64_t tokens = 32;
    int64_t prompt_tokens = 512;
    uint64_t seed = 1;
  };
  auto f = std::make_shared<Flags>();
  add_session_flags(*cmd, f->session, "Context size (default: prompt + decoded tokens)");
  cmd->add_option("--tokens", f->tokens, "Tokens to decode (default 32)")->check(CLI::PositiveNumber);
  cmd->add_option("--prompt-tokens", f->prompt_tokens, "Random prompt ids to prefill first (default 512)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", f->seed, "Seed of the random prompt (default 1)");
  cmd->footer("Examples:\n  ossrun bench decode --model ~/models/gpt-oss-20b --tokens 16\n"
              "  ossrun bench decode --model ~/models/gpt-oss-20b --profile cpu-only --threads 8 --prompt-tokens 128");
  cmd->callback([f] {
    OpenModel m = open_model(f->session, f->prompt_tokens + f->tokens + 1);
    engine::Session& s = *m.session;
    const ModelConfig& c = s.config();

    const bool on_gpu = s.report().vram_bytes > 0;
    std::unique_ptr<cpu::ThreadPool> probe_pool;
    std::unique_ptr<cpu::ReadBandwidthProbe> probe;
    if (!on_gpu) {
      ProgressReporter progress(progress_mode(f->session.quiet));
      touch_weights(m.checkpoint->weights(), progress);
      probe_pool = std::make_unique<cpu::ThreadPool>(cpu::ThreadPoolOptions{.threads = s.threads()});
      probe = std::make_unique<cpu::ReadBandwidthProbe>(*probe_pool, cpu::default_bandwidth_buffer_bytes());
    }
    auto bandwidth_pass = [&] { return on_gpu ? gpu::measure_copy_gbps(3) : probe->pass_gbps(); };

    std::mt19937_64 rng(f->seed);
    std::vector<int32_t> prompt(static_cast<size_t>(f->prompt_tokens));
    for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(c.vocab_size));
    s.set_sampler({.temperature = 0});
    bandwidth_pass();  // warm-up: the first copy pass allocates; the first prefill on the GPU compiles nothing
    auto t0 = Clock::now();
    int32_t next = s.prefill_next(prompt);
    const double prefill_s = seconds_since(t0);
    std::printf("prefill          %lld tokens in %.3f s: %.2f tok/s, %.2f GFLOP/s\n", static_cast<long long>(f->prompt_tokens),
                prefill_s, static_cast<double>(f->prompt_tokens) / prefill_s,
                prefill_flops(c, f->prompt_tokens) / prefill_s * 1e-9);

    const TokenBytes wb = decode_weight_bytes(c);
    uint64_t kv = 0;
    double decode_s = 0;
    std::vector<double> bw{bandwidth_pass()};  // one pass before the first token too
    // Decode in runs of 8 tokens between bandwidth passes (a GPU token takes a few milliseconds, so timing
    // one at a time would mostly time the clock); the first token (on the GPU: the graph's capture) is not timed.
    next = s.decode_next(next);
    for (int64_t i = 0; i < f->tokens; i += 8) {
      const int64_t run = std::min<int64_t>(8, f->tokens - i);
      for (int64_t j = 0; j < run; ++j) kv += kv_bytes_read(c, s.position() + j, on_gpu ? 2 : 4);
      t0 = Clock::now();
      for (int64_t j = 0; j < run; ++j) next = s.decode_next(next);
      decode_s += seconds_since(t0);
      bw.push_back(bandwidth_pass());
    }
    std::sort(bw.begin(), bw.end());
    const double bw_best = bw.back(), bw_median = bw[bw.size() / 2];
    const double tok_s = static_cast<double>(f->tokens) / decode_s;
    const double bytes_per_token = static_cast<double>(wb.total()) + static_cast<double>(kv) / static_cast<double>(f->tokens);
    const double gb_s = bytes_per_token * tok_s * 1e-9;
    std::printf("decode           %lld tokens in %.3f s: %.2f tok/s (%.1f ms/token)\n", static_cast<long long>(f->tokens),
                decode_s, tok_s, 1e3 / tok_s);
    std::printf("bytes per token  %.3f GB: dense %.3f GB, experts %.3f GB (%lld per layer), lm_head %.3f GB, KV %.3f MB\n",
                bytes_per_token * 1e-9, static_cast<double>(wb.dense) * 1e-9, static_cast<double>(wb.experts) * 1e-9,
                static_cast<long long>(c.num_experts_per_tok), static_cast<double>(wb.lm_head) * 1e-9,
                static_cast<double>(kv) / static_cast<double>(f->tokens) * 1e-6);
    if (on_gpu)
      std::printf("copy bandwidth   %.2f GB/s best, %.2f GB/s median (%zu device-to-device copies of 1 GiB between the decoded tokens)\n",
                  bw_best, bw_median, bw.size());
    else
      std::printf("read bandwidth   %.2f GB/s best, %.2f GB/s median (%zu passes over %.0f MiB between the decoded tokens, %d threads)\n",
                  bw_best, bw_median, bw.size(), static_cast<double>(probe->buffer_bytes()) / (1 << 20), s.threads());
    const double bound_tok_s = bw_best * 1e9 / bytes_per_token;
    std::printf("bandwidth bound  %.3f GB per token / %.2f GB/s = %.1f tok/s (%.2f ms/token)\n", bytes_per_token * 1e-9, bw_best,
                bound_tok_s, 1e3 / bound_tok_s);
    std::printf("decode reads     %.2f GB/s = %.0f%% of the best measured %.2f GB/s (%.0f%% of the median; goal: %s)\n", gb_s,
                100 * gb_s / bw_best, bw_best, 100 * gb_s / bw_median, on_gpu ? "60%" : "70%");
  });
}

}  // namespace ossrun::cli
