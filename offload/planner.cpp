#include <algorithm>
#include <cmath>
#include <queue>
#include <string>
#include <tuple>

#include "offload/byte_size.h"
#include "offload/memory_plan.h"
#include "src/model/error.h"
#include "src/model/inspect.h"

namespace ossrun::offload {
namespace {

constexpr uint64_t kKernelScratch = 64ull << 20;  // reductions, sort buffers, cuBLAS workspace
constexpr uint64_t kF32 = 4, kBf16 = 2;

uint64_t component(const CheckpointSummary& s, Component c) { return s.by_component[static_cast<size_t>(c)].bytes; }

uint64_t kv_bytes_per_position(const ModelConfig& c) { return static_cast<uint64_t>(c.kv_dim()) * 2 /*K, V*/ * kBf16; }

uint64_t kv_cache_bytes(const ModelConfig& c, int64_t context, int64_t chunk) {
  uint64_t positions = 0;
  for (int l = 0; l < c.num_hidden_layers; ++l) positions += static_cast<uint64_t>(kv_positions(c, l, context, chunk));
  return positions * kv_bytes_per_position(c);
}

// fp32 activations of one forward step over `chunk` tokens, attention and MoE.
uint64_t activation_bytes(const ModelConfig& c, int64_t chunk) {
  const uint64_t T = chunk, H = c.hidden_size, I = c.intermediate_size, E = c.num_local_experts, k = c.num_experts_per_tok;
  const uint64_t per_token = 2 * H                               // residual, normalised input
                             + c.q_dim() + 2 * c.kv_dim()        // q, k, v
                             + c.q_dim()                         // attention output
                             + 2 * c.num_attention_heads         // softmax running max and sum (flash-style: no T x context scores)
                             + E + 2 * k                         // router logits, top-k weights and ids
                             + k * (2 * I + I + H);              // per routed expert: gate_up, SwiGLU, output
  return T * per_token * kF32;
}

// One token's logits plus the sampler's probabilities and sort indices.
uint64_t logits_bytes(const ModelConfig& c) { return static_cast<uint64_t>(c.vocab_size) * 3 * kF32; }

// One expert dequantized to bf16 (prefill's oneDNN tiles), double-buffered.
uint64_t dequant_tile_bytes(const ModelConfig& c) {
  const uint64_t H = c.hidden_size, I = c.intermediate_size;
  return 2 * (2 * I * H + I * H) * kBf16;
}

uint64_t gpu_required(const ModelConfig& c, const GpuPlacement& dense, int64_t context, int64_t chunk) {
  return dense.dense() + kv_cache_bytes(c, context, chunk) + gpu_workspace_bytes(c, chunk);
}

uint64_t cpu_only_required(const ModelConfig& c, int64_t context, int64_t chunk) {
  return kv_cache_bytes(c, context, chunk) + host_workspace_bytes(c, chunk, /*cpu_only=*/true);
}

// The largest n in [1, below) with fits(n), 0 when none; fits must be monotone (true, then false).
template <class Fits>
int64_t largest_fitting(int64_t below, Fits fits) {
  int64_t lo = 0, hi = below;  // fits(lo) (0 stands for "none"), !fits(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

// Per layer, the shares of its experts in decreasing order: element i is the expected number of routed
// experts per token that the layer's (i+1)-th most popular expert serves.
std::vector<std::vector<double>> popularity_curves(const PlanRequest& r) {
  const ModelConfig& c = r.config;
  const int L = static_cast<int>(c.num_hidden_layers), E = static_cast<int>(c.num_local_experts);
  const double uniform = static_cast<double>(c.num_experts_per_tok) / E;
  std::vector<std::vector<double>> curves(L, std::vector<double>(E, uniform));
  if (r.expert_share.empty()) return curves;
  const double n = r.stats_tokens;
  for (int l = 0; l < L; ++l) {
    for (int e = 0; e < E; ++e) curves[l][e] = (n * r.expert_share[l][e] + kPriorTokens * uniform) / (n + kPriorTokens);
    std::sort(curves[l].begin(), curves[l].end(), std::greater<>());
  }
  return curves;
}

// Adds `total` slots to `counts`, one at a time to the layer whose next slot gains most (ties: the layer
// with fewer slots, then the lower index, which makes equal curves come out uniform).
void allocate_greedy(const std::vector<std::vector<double>>& curves, std::vector<int>& counts, int64_t total) {
  using Entry = std::tuple<double, int, int>;  // gain, -count, -layer
  std::priority_queue<Entry> queue;
  for (int l = 0; l < static_cast<int>(curves.size()); ++l)
    if (counts[l] < static_cast<int>(curves[l].size())) queue.emplace(curves[l][counts[l]], -counts[l], -l);
  for (int64_t i = 0; i < total && !queue.empty(); ++i) {
    const int l = -std::get<2>(queue.top());
    queue.pop();
    if (++counts[l] < static_cast<int>(curves[l].size())) queue.emplace(curves[l][counts[l]], -counts[l], -l);
  }
}

double curve_sum(const std::vector<double>& curve, int from, int to) {
  double s = 0;
  for (int i = from; i < to; ++i) s += curve[i];
  return s;
}

void validate(const PlanRequest& r) {
  const ModelConfig& c = r.config;
  if (c.num_hidden_layers < 1 || c.num_local_experts < 1 || c.num_experts_per_tok < 1)
    throw InputError("memory plan: the model config has no layers or experts");
  if (r.context < 1 || r.context > c.max_position_embeddings)
    throw InputError("memory plan: context " + std::to_string(r.context) + " is outside 1.." +
                     std::to_string(c.max_position_embeddings) + " (max_position_embeddings)");
  if (r.prefill_chunk < 1) throw InputError("memory plan: the prefill chunk must be at least 1 token");
  if (r.expert_share.empty()) return;
  if (static_cast<int64_t>(r.expert_share.size()) != c.num_hidden_layers)
    throw InputError("memory plan: router statistics for " + std::to_string(r.expert_share.size()) + " layers, the model has " +
                     std::to_string(c.num_hidden_layers));
  for (const auto& layer : r.expert_share) {
    if (static_cast<int64_t>(layer.size()) != c.num_local_experts)
      throw InputError("memory plan: router statistics for " + std::to_string(layer.size()) + " experts, the model has " +
                       std::to_string(c.num_local_experts));
    for (double v : layer)
      if (!(v >= 0 && v <= 1)) throw InputError("memory plan: an expert share is outside [0, 1]: " + std::to_string(v));
  }
  if (!(r.stats_tokens >= 0) || std::isinf(r.stats_tokens))
    throw InputError("memory plan: the router statistics' token count must be finite and >= 0");
}

std::string dense_breakdown(const GpuPlacement& g) {
  std::string s = "attention " + format_bytes(g.attention) + ", router " + format_bytes(g.router) + ", norms " +
                  format_bytes(g.norms) + ", lm_head " + format_bytes(g.lm_head);
  if (g.embedding) s += ", embedding " + format_bytes(g.embedding);
  return s;
}

[[noreturn]] void vram_too_small(const PlanRequest& r, const GpuPlacement& dense, int64_t chunk) {
  const ModelConfig& c = r.config;
  std::string msg = "VRAM budget " + format_bytes(r.vram_budget) + " cannot hold the dense part at context " +
                    std::to_string(r.context) + ": it needs " + format_bytes(gpu_required(c, dense, r.context, chunk)) +
                    " (dense weights " + format_bytes(dense.dense()) + ": " + dense_breakdown(dense) + "; KV cache " +
                    format_bytes(kv_cache_bytes(c, r.context, chunk)) + "; workspace " +
                    format_bytes(gpu_workspace_bytes(c, chunk)) + " for a prefill chunk of " + std::to_string(chunk) + ").";
  const int64_t fits = largest_fitting(r.context, [&](int64_t ctx) {
    return gpu_required(c, dense, ctx, std::min(r.prefill_chunk, ctx)) <= r.vram_budget;
  });
  if (fits > 0)
    msg += " A context of up to " + std::to_string(fits) + " tokens fits (--ctx " + std::to_string(fits) + ").";
  else
    msg += " No context fits: the GPU needs at least " + format_bytes(gpu_required(c, dense, 1, 1)) + " (context 1, chunk 1).";
  const uint64_t cpu = cpu_only_required(c, r.context, chunk);
  msg += " Or run CPU-only (--vram 0): " + format_bytes(cpu) + " of RAM for the KV cache and activations at context " +
         std::to_string(r.context) + ", plus " + format_bytes(dense.dense()) +
         " to lock the dense weights (optional), every expert read from the mmap.";
  throw InputError(msg);
}

[[noreturn]] void ram_too_small(const PlanRequest& r, uint64_t needed, int64_t chunk, bool cpu_only) {
  const ModelConfig& c = r.config;
  const uint64_t slice = summarize(c).expert_slice_bytes;
  std::string msg = "RAM budget " + format_bytes(r.ram_budget) + " is too small: ";
  if (cpu_only) {
    msg += "a CPU-only plan at context " + std::to_string(r.context) + " needs " + format_bytes(needed) + " (KV cache " +
           format_bytes(kv_cache_bytes(c, r.context, chunk)) + ", activations and tiles " +
           format_bytes(host_workspace_bytes(c, chunk, true)) + ").";
    const int64_t fits = largest_fitting(r.context, [&](int64_t ctx) {
      return cpu_only_required(c, ctx, std::min(r.prefill_chunk, ctx)) <= r.ram_budget;
    });
    msg += fits > 0 ? " A context of up to " + std::to_string(fits) + " tokens fits (--ctx " + std::to_string(fits) + ")."
                    : " No context fits; at least " + format_bytes(cpu_only_required(c, 1, 1)) + " is needed.";
  } else {
    msg += "the pinned staging (" + format_bytes(pinned_staging_bytes(c, chunk, slice)) + ") and CPU expert workspace (" +
           format_bytes(host_workspace_bytes(c, chunk, false)) + ") for a prefill chunk of " + std::to_string(chunk) +
           " tokens need " + format_bytes(needed) + ".";
    const int64_t fits = largest_fitting(chunk, [&](int64_t t) {
      return pinned_staging_bytes(c, t, slice) + host_workspace_bytes(c, t, false) <= r.ram_budget;
    });
    msg += fits > 0 ? " A prefill chunk of up to " + std::to_string(fits) + " tokens fits (--chunk " + std::to_string(fits) + ")."
                    : " Even a chunk of 1 token needs " +
                          format_bytes(pinned_staging_bytes(c, 1, slice) + host_workspace_bytes(c, 1, false)) + ".";
  }
  throw InputError(msg);
}

}  // namespace

int64_t kv_positions(const ModelConfig& c, int layer, int64_t context, int64_t chunk) {
  if (c.layer_types.at(static_cast<size_t>(layer)) == LayerType::FullAttention) return context;
  return std::min(context, c.sliding_window - 1 + chunk);
}

uint64_t gpu_workspace_bytes(const ModelConfig& c, int64_t chunk) {
  return activation_bytes(c, chunk) + logits_bytes(c) + kKernelScratch;
}

uint64_t host_workspace_bytes(const ModelConfig& c, int64_t chunk, bool cpu_only) {
  const uint64_t T = chunk, I = c.intermediate_size, k = c.num_experts_per_tok;
  // With a GPU the host computes only experts: their SwiGLU intermediates (inputs and outputs are pinned).
  const uint64_t activations = cpu_only ? activation_bytes(c, chunk) + logits_bytes(c) : T * k * (2 * I + I) * kF32;
  return activations + dequant_tile_bytes(c);
}

uint64_t pinned_staging_bytes(const ModelConfig& c, int64_t chunk, uint64_t slice) {
  const uint64_t T = chunk, H = c.hidden_size, k = c.num_experts_per_tok;
  const uint64_t exchange = T * (H + 2 * k + k * H) * kF32;  // normalised input, ids and weights, expert outputs
  return 2 * slice + exchange;
}

int MemoryPlan::gpu_slots() const {
  int n = 0;
  for (const auto& l : layers) n += l.gpu_slots;
  return n;
}
int MemoryPlan::locked_experts() const {
  int n = 0;
  for (const auto& l : layers) n += l.locked_experts;
  return n;
}
double MemoryPlan::gpu_hit_rate() const {
  double s = 0;
  for (const auto& l : layers) s += l.gpu_hit_rate;
  return layers.empty() ? 0 : s / layers.size();
}
double MemoryPlan::locked_hit_rate() const {
  double s = 0;
  for (const auto& l : layers) s += l.locked_hit_rate;
  return layers.empty() ? 0 : s / layers.size();
}

MemoryPlan plan_memory(const PlanRequest& r) {
  validate(r);
  const ModelConfig& c = r.config;
  const CheckpointSummary summary = summarize(c);
  const int L = static_cast<int>(c.num_hidden_layers), E = static_cast<int>(c.num_local_experts);
  const int64_t chunk = std::min(r.prefill_chunk, r.context);

  MemoryPlan plan;
  plan.cpu_only = r.vram_budget == 0;
  plan.from_router_stats = !r.expert_share.empty();
  plan.context = r.context;
  plan.prefill_chunk = chunk;
  plan.experts_per_layer = E;
  plan.experts_per_token = static_cast<int>(c.num_experts_per_tok);
  plan.expert_slice_bytes = summary.expert_slice_bytes;
  const uint64_t slice = summary.expert_slice_bytes;

  GpuPlacement dense;  // the dense weights as they would sit on the GPU
  dense.attention = component(summary, Component::Attention);
  dense.router = component(summary, Component::Router);
  dense.norms = component(summary, Component::Norms);
  dense.lm_head = component(summary, Component::LmHead);
  dense.embedding = c.tie_word_embeddings ? component(summary, Component::Embedding) : 0;
  const uint64_t embedding_table = component(summary, Component::Embedding);

  std::vector<int> gpu_slots(L, 0), held(L, 0);
  const std::vector<std::vector<double>> curves = popularity_curves(r);
  uint64_t ram_left = r.ram_budget;
  if (!plan.cpu_only) {
    const uint64_t required = gpu_required(c, dense, r.context, chunk);
    if (required > r.vram_budget) vram_too_small(r, dense, chunk);
    plan.gpu = dense;
    plan.gpu.budget = r.vram_budget;
    plan.gpu.kv_cache = kv_cache_bytes(c, r.context, chunk);
    plan.gpu.workspace = gpu_workspace_bytes(c, chunk);
    const int64_t slots = std::min<uint64_t>((r.vram_budget - required) / slice, static_cast<uint64_t>(L) * E);
    allocate_greedy(curves, gpu_slots, slots);
    plan.gpu.experts = static_cast<uint64_t>(slots) * slice;

    plan.host.pinned_staging = pinned_staging_bytes(c, chunk, slice);
    plan.host.workspace = host_workspace_bytes(c, chunk, /*cpu_only=*/false);
    const uint64_t needed = plan.host.pinned_staging + plan.host.workspace;
    if (needed > r.ram_budget) ram_too_small(r, needed, chunk, /*cpu_only=*/false);
    ram_left -= needed;
    plan.mapped.embedding = c.tie_word_embeddings ? 0 : embedding_table;
  } else {
    plan.host.kv_cache = kv_cache_bytes(c, r.context, chunk);
    plan.host.workspace = host_workspace_bytes(c, chunk, /*cpu_only=*/true);
    const uint64_t needed = plan.host.kv_cache + plan.host.workspace;
    if (needed > r.ram_budget) ram_too_small(r, needed, chunk, /*cpu_only=*/true);
    ram_left -= needed;
    // Every token reads all dense weights, so they are the first thing worth locking.
    const uint64_t dense_host = dense.dense();
    if (dense_host <= ram_left) {
      plan.host.locked_dense = dense_host;
      ram_left -= dense_host;
    } else {
      plan.mapped.dense = dense_host;
    }
    plan.mapped.embedding = c.tie_word_embeddings ? 0 : embedding_table;
  }
  plan.host.budget = r.ram_budget;

  held = gpu_slots;
  const int64_t lockable = static_cast<int64_t>(L) * E - plan.gpu.experts / slice;
  const int64_t locked = std::min<int64_t>(static_cast<int64_t>(ram_left / slice), lockable);
  allocate_greedy(curves, held, locked);
  plan.host.locked_experts = static_cast<uint64_t>(locked) * slice;

  const double k = static_cast<double>(c.num_experts_per_tok);
  for (int l = 0; l < L; ++l) {
    LayerPlacement p;
    p.type = c.layer_types[l];
    p.kv_positions = kv_positions(c, l, r.context, chunk);
    p.kv_bytes = static_cast<uint64_t>(p.kv_positions) * kv_bytes_per_position(c);
    p.gpu_slots = gpu_slots[l];
    p.locked_experts = held[l] - gpu_slots[l];
    p.mapped_experts = E - held[l];
    p.gpu_hit_rate = curve_sum(curves[l], 0, gpu_slots[l]) / k;
    p.locked_hit_rate = curve_sum(curves[l], gpu_slots[l], held[l]) / k;
    plan.mapped.experts += static_cast<uint64_t>(p.mapped_experts) * slice;
    plan.layers.push_back(p);
  }
  return plan;
}

}  // namespace ossrun::offload
