// HybridExperts: construction (budgets, slots, policies, warm start), the decode path, and reporting.
// Residency upkeep is in hybrid_residency.cpp, the prefill path in hybrid_prefill.cpp, the start-up probe in
// hybrid_probe.cpp.
#include "src/gpu/hybrid_experts.cuh"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>

#include "gpu_kernels/add_f32.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "offload/byte_size.h"
#include "offload/router_stats_io.h"
#include "src/model/error.h"
#include "src/tokenizer/data_paths.h"

namespace ossrun::gpu {
namespace {

// Staging buffers hold at most this much each; a slice is copied in chunks (the worker fills one while the
// link drains the other).
constexpr size_t kMaxStagingBytes = size_t{8} << 20;

// mxfp4_moe_matvec's workspace for k choices (MoeWorkspace: activations, partials, arrivals, error flag).
uint64_t moe_workspace_bytes(int64_t H, int64_t I, int k) {
  return static_cast<uint64_t>(k) * static_cast<uint64_t>(I + H) * sizeof(float) + static_cast<uint64_t>(H) * 4 + 4;
}

// mxfp4_moe_gemm's workspace (MoeGemmWorkspace: routing metadata, tile list at 64 positions, x split or y,
// activations hi and lo).
uint64_t moe_gemm_workspace_bytes(int64_t H, int64_t I, int k, int64_t max_tokens, int n_slots) {
  const uint64_t choices = static_cast<uint64_t>(max_tokens * k);
  const uint64_t tiles = choices / 64 + std::min<uint64_t>(static_cast<uint64_t>(n_slots), choices);
  return 3 * static_cast<uint64_t>(n_slots) * 4 + choices * 4 + tiles * 16 + 4 + choices * static_cast<uint64_t>(H) * 4 +
         2 * choices * static_cast<uint64_t>(I) * 2 + 4;
}

// The device buffers besides the slots: the CPU result, the slot and choice arrays (1 + E regions), the
// kernel workspaces. n_slots: the most slots one launch names (a layer's or the scratch slots).
uint64_t exchange_device_bytes(int64_t H, int64_t I, int k, int E, int64_t max_tokens, bool gemm, int n_slots) {
  const uint64_t regions = static_cast<uint64_t>(1 + E) * static_cast<uint64_t>(max_tokens * k);
  return static_cast<uint64_t>(max_tokens * H) * sizeof(float) + regions * (sizeof(ExpertChoice) + sizeof(int32_t)) +
         moe_workspace_bytes(H, I, k) + (gemm ? moe_gemm_workspace_bytes(H, I, k, max_tokens, n_slots) : 0);
}

// MemAvailable from /proc/meminfo in bytes; 0 when unknown.
uint64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

}  // namespace

const char* hybrid_placement_name(HybridPlacement p) {
  switch (p) {
    case HybridPlacement::Cache: return "cache";
    case HybridPlacement::CpuOnly: return "cpu-only";
    case HybridPlacement::StaticLayers: return "static-layers";
  }
  return "?";
}

HybridPlacement parse_hybrid_placement(std::string_view name) {
  for (HybridPlacement p : {HybridPlacement::Cache, HybridPlacement::CpuOnly, HybridPlacement::StaticLayers})
    if (name == hybrid_placement_name(p)) return p;
  throw InputError("unknown expert placement \"" + std::string(name) + "\"; known: cache, cpu-only, static-layers");
}

std::unique_ptr<HybridExperts> make_hybrid_experts(const Checkpoint& ck, const offload::MemoryPlan& plan,
                                                   const HybridOptions& options) {
  return std::make_unique<HybridExperts>(ck, plan, options);
}

HybridExperts::HybridExperts(const Checkpoint& ck, const offload::MemoryPlan& plan, const HybridOptions& o)
    : ck_(ck), placement_(o.placement) {
  const ModelConfig& c = ck.config();
  layers_ = static_cast<int>(c.num_hidden_layers);
  experts_ = static_cast<int>(c.num_local_experts);
  k_ = static_cast<int>(c.num_experts_per_tok);
  hidden_ = c.hidden_size;
  max_tokens_ = o.max_tokens;
  if (max_tokens_ < 1) throw InputError("hybrid experts: max_tokens must be >= 1, found " + std::to_string(max_tokens_));
  if (static_cast<int>(plan.layers.size()) != layers_)
    throw InputError("hybrid experts: the memory plan has " + std::to_string(plan.layers.size()) +
                     " layers, the model " + std::to_string(layers_));
  policy_ = offload::parse_policy(o.policy);
  if (policy_ == offload::PolicyKind::Belady)
    throw InputError("policy \"belady\" needs the future; it exists only in `ossrun simulate`");
  slices_.reserve(static_cast<size_t>(layers_) * static_cast<size_t>(experts_));
  for (int l = 0; l < layers_; ++l)
    for (int e = 0; e < experts_; ++e) slices_.push_back(ck.expert(l, e));
  const SlotLayout layout = SlotLayout::of(slices_.front());  // throws for BF16 experts
  slice_bytes_ = layout.slice_bytes();
  stats_model_dir_ = o.stats_model_dir;
  cache_dir_ = o.cache_dir.empty() ? ossrun_cache_dir() : o.cache_dir;

  // Device memory: the exchange buffers and kernel workspace first, then as many slots as the budget allows.
  vram_budget_ = o.vram_budget ? o.vram_budget : plan.gpu.experts;
  prefill_kernel_ = max_tokens_ > 1 ? o.prefill_kernel : PrefillKernel::Matvec;
  const bool gemm = prefill_kernel_ == PrefillKernel::Gemm;
  const int gemm_slots = std::max(experts_, std::max(o.scratch_slots, 1));  // any layer's or the scratch table
  const uint64_t fixed = exchange_device_bytes(hidden_, c.intermediate_size, k_, experts_, max_tokens_, gemm, gemm_slots);
  if (fixed > vram_budget_)
    throw InputError("hybrid experts: the GPU budget " + offload::format_bytes(vram_budget_) +
                     " cannot hold the exchange buffers and workspace (" + offload::format_bytes(fixed) +
                     " for chunks of " + std::to_string(max_tokens_) + " tokens)");
  int scratch = 0;
  std::vector<int> slots = choose_slots(plan, o, scratch);
  const uint64_t slot_budget = vram_budget_ - fixed;
  auto fits = [&] {
    const int total = std::accumulate(slots.begin(), slots.end(), 0);
    return ExpertSlotPool::bytes_needed(layout, total, scratch, layers_, experts_) <= slot_budget;
  };
  // Shrink until it fits: scratch down to one, then the fullest layers, then the last scratch slot.
  while (!fits() && scratch > 1) --scratch;
  while (!fits()) {
    auto fullest = std::max_element(slots.begin(), slots.end());
    if (*fullest == 0) break;
    --*fullest;
  }
  while (!fits() && scratch > 0) --scratch;
  if (!fits())
    throw InputError("hybrid experts: the GPU budget " + offload::format_bytes(vram_budget_) +
                     " cannot hold the residency map");
  residency_ = std::make_unique<offload::Residency>(experts_, slots);
  pool_ = std::make_unique<ExpertSlotPool>(layout, residency_->total_slots(), scratch, layers_, experts_, slot_budget);
  y_d_ = DeviceBuffer<float>(static_cast<size_t>(max_tokens_ * hidden_));
  const size_t regions = static_cast<size_t>(1 + experts_) * static_cast<size_t>(max_tokens_ * k_);
  choices_d_ = DeviceBuffer<ExpertChoice>(regions);
  slots_d_ = DeviceBuffer<int32_t>(regions);
  moe_ws_ = std::make_unique<MoeWorkspace>(static_cast<int>(hidden_), static_cast<int>(c.intermediate_size), k_);
  if (gemm)
    gemm_ws_ = std::make_unique<MoeGemmWorkspace>(static_cast<int>(max_tokens_), k_, gemm_slots, static_cast<int>(hidden_),
                                                  static_cast<int>(c.intermediate_size));

  // Host memory: the CPU experts and their workspaces, pinned exchange buffers, staging.
  workers_ = std::make_unique<engine::Workers>(o.threads);
  const int64_t rows = (max_tokens_ + 15) / 16 * 16;
  const int64_t widest = std::max(hidden_, 2 * c.intermediate_size);
  matmul_ = std::make_unique<engine::SplitMatmul>(rows * widest, rows * widest);
  cpu_ = std::make_unique<engine::CpuExperts>(ck, engine::CpuContext{&cpu::default_kernels(), workers_.get(), matmul_.get()},
                                              max_tokens_);
  // The RAM budget is checked before anything is pinned.
  ram_budget_ = o.ram_budget;
  const size_t staging = std::min<size_t>(kMaxStagingBytes, slice_bytes_);
  const uint64_t pinned = 2 * static_cast<uint64_t>(max_tokens_ * hidden_) * sizeof(float) +
                          static_cast<uint64_t>(max_tokens_ * k_) * (sizeof(int32_t) + sizeof(float)) +
                          static_cast<uint64_t>(regions) * (sizeof(ExpertChoice) + sizeof(int32_t)) +
                          static_cast<uint64_t>(layers_) * experts_ * sizeof(int32_t) + 2 * staging;
  const uint64_t pageable = cpu_->workspace_bytes() + matmul_->bytes() +
                            static_cast<uint64_t>(max_tokens_ * k_) * sizeof(int32_t) +
                            (static_cast<uint64_t>(k_) + static_cast<uint64_t>(max_tokens_) * layers_ * k_) * sizeof(uint16_t);
  if (ram_budget_ && pinned + pageable > ram_budget_)
    throw InputError("hybrid experts: the host buffers need " + offload::format_bytes(pinned + pageable) +
                     " (pinned exchange and staging " + offload::format_bytes(pinned) + ", CPU expert workspaces " +
                     offload::format_bytes(pageable) + "); the RAM budget is " + offload::format_bytes(ram_budget_));
  x_h_ = PinnedArray<float>(static_cast<size_t>(max_tokens_ * hidden_));
  y_h_ = PinnedArray<float>(static_cast<size_t>(max_tokens_ * hidden_));
  ids_h_ = PinnedArray<int32_t>(static_cast<size_t>(max_tokens_ * k_));
  weights_h_ = PinnedArray<float>(static_cast<size_t>(max_tokens_ * k_));
  choices_h_ = PinnedArray<ExpertChoice>(regions);
  slots_h_ = PinnedArray<int32_t>(regions);
  mirror_h_ = PinnedArray<int32_t>(static_cast<size_t>(layers_) * experts_);
  uploader_ = std::make_unique<PinnedUploader>(staging);
  cpu_ids_.resize(static_cast<size_t>(max_tokens_ * k_));
  routed_.resize(static_cast<size_t>(k_));
  trace_ids_.resize(static_cast<size_t>(max_tokens_) * layers_ * k_);

  layer_done_.resize(static_cast<size_t>(layers_));
  for (cudaEvent_t& e : layer_done_) OSSRUN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  scratch_free_.resize(static_cast<size_t>(pool_->scratch()));
  for (cudaEvent_t& e : scratch_free_) OSSRUN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  OSSRUN_CUDA_CHECK(cudaEventCreate(&d2h_done_));
  OSSRUN_CUDA_CHECK(cudaEventCreate(&h2d_done_));
  mirror_dirty_.assign(static_cast<size_t>(layers_), 0);
  handoff_.resize(static_cast<size_t>(layers_));

  const bool paging = o.paging == Paging::On ||
                      (o.paging == Paging::Auto && mem_available() != 0 &&
                       mem_available() < slice_bytes_ * static_cast<uint64_t>(layers_) * experts_);
  if (paging) paging_ = std::make_unique<offload::ExpertPaging>();
  if (!o.trace.empty()) trace_ = std::make_unique<offload::TraceWriter>(o.trace, offload::TraceShape{layers_, experts_, k_});

  make_policies(o);
  warm_start(o);
  throughput_ = o.throughput ? *o.throughput : load_or_probe_throughput();
  credit_ = std::make_unique<offload::UploadCredit>(throughput_.pcie_bytes_per_s, slice_bytes_,
                                                    /*max_slices=*/std::max(2.0, static_cast<double>(layers_)));
  last_step_ = std::chrono::steady_clock::now();
  read_bytes_at_start_ = offload::process_read_bytes();
}

std::vector<int> HybridExperts::choose_slots(const offload::MemoryPlan& plan, const HybridOptions& o,
                                             int& scratch) const {
  std::vector<int> slots(static_cast<size_t>(layers_), 0);
  scratch = 0;
  switch (o.placement) {
    case HybridPlacement::Cache:
      for (int l = 0; l < layers_; ++l) slots[static_cast<size_t>(l)] = std::min(plan.layers[static_cast<size_t>(l)].gpu_slots, experts_);
      scratch = std::max(o.scratch_slots, 0);
      break;
    case HybridPlacement::CpuOnly: break;
    case HybridPlacement::StaticLayers: {
      // All of a layer's experts or none; the last layers get them (the first N stay on the CPU).
      const uint64_t fixed = exchange_device_bytes(hidden_, ck_.config().intermediate_size, k_, experts_, max_tokens_,
                                                   o.prefill_kernel == PrefillKernel::Gemm && max_tokens_ > 1,
                                                   std::max(experts_, std::max(o.scratch_slots, 1)));
      const SlotLayout layout = SlotLayout::of(slices_.front());
      int gpu_layers = 0;
      while (gpu_layers < layers_ &&
             fixed + ExpertSlotPool::bytes_needed(layout, (gpu_layers + 1) * experts_, 0, layers_, experts_) <=
                 vram_budget_)
        ++gpu_layers;
      for (int l = layers_ - gpu_layers; l < layers_; ++l) slots[static_cast<size_t>(l)] = experts_;
      break;
    }
  }
  return slots;
}

void HybridExperts::make_policies(const HybridOptions& o) {
  std::optional<offload::RouterStats> loaded;
  if (!stats_model_dir_.empty()) {
    offload::LoadedRouterStats ls = offload::load_router_stats_for_model(stats_model_dir_, layers_, experts_, cache_dir_);
    if (!ls.warning.empty()) std::fprintf(stderr, "warning: %s\n", ls.warning.c_str());
    loaded = std::move(ls.stats);
  }
  stats_ = loaded ? std::make_unique<offload::RouterStats>(std::move(*loaded))
                  : std::make_unique<offload::RouterStats>(layers_, experts_, offload::kSavedStatsHalfLifeTokens);
  const offload::PolicyTuning tuning = offload::tuning_for(experts_, k_);
  const offload::PolicyKind kind = o.placement == HybridPlacement::Cache ? policy_ : offload::PolicyKind::Static;
  for (int l = 0; l < layers_; ++l) {
    std::vector<double> prior;
    if (stats_->routed_tokens(l) > 0)
      for (int e = 0; e < experts_; ++e) prior.push_back(stats_->share(l, e));
    else if (kind == offload::PolicyKind::Static)
      prior.assign(static_cast<size_t>(experts_), 1.0 / experts_);  // static needs a ranking; any is as good
    caches_.push_back(offload::make_expert_cache(kind, experts_, residency_->slots(l), tuning, prior));
  }
}

void HybridExperts::warm_start(const HybridOptions& o) {
  std::vector<std::vector<double>> share;
  for (int l = 0; l < layers_; ++l) {
    if (stats_->routed_tokens(l) <= 0) {
      share.clear();
      break;
    }
    share.emplace_back();
    for (int e = 0; e < experts_; ++e) share.back().push_back(stats_->share(l, e));
  }
  std::vector<int> slots(static_cast<size_t>(layers_));
  for (int l = 0; l < layers_; ++l) slots[static_cast<size_t>(l)] = residency_->slots(l);
  std::vector<std::vector<uint16_t>> warm = offload::warm_start_experts(share, slots);
  for (int l = 0; l < layers_; ++l) {
    std::vector<uint16_t>& w = warm[static_cast<size_t>(l)];
    // No statistics (or a layer full of experts): any experts are as likely as any others.
    if ((share.empty() && o.fill_without_stats) || slots[static_cast<size_t>(l)] == experts_) {
      w.resize(static_cast<size_t>(slots[static_cast<size_t>(l)]));
      std::iota(w.begin(), w.end(), uint16_t{0});
    }
    for (uint16_t e : w) {
      const offload::UploadTicket t = residency_->begin_upload(l, e);
      pending_.push_back({upload(residency_->slot_offset(l) + t.slot, l, e, nullptr), t});
    }
    caches_[static_cast<size_t>(l)]->preload(w);
  }
  drain_uploads();
}

HybridExperts::~HybridExperts() {
  try {
    finish();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: %s\n", e.what());
  }
  try {
    uploader_.reset();  // joins the worker before the events it may wait on go
  } catch (...) {
  }
  for (cudaEvent_t e : layer_done_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(e));
  for (cudaEvent_t e : scratch_free_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(e));
  if (d2h_done_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(d2h_done_));
  if (h2d_done_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(h2d_done_));
}

void HybridExperts::finish() {
  if (finished_) return;
  finished_ = true;
  if (trace_) trace_->finish();
  if (!stats_model_dir_.empty() && stats_->tokens() > 0) {
    const auto path = offload::save_router_stats_for_model(stats_model_dir_, *stats_, cache_dir_);
    (void)path;
  }
}

uint64_t HybridExperts::device_bytes() const {
  const ModelConfig& c = ck_.config();
  return pool_->device_bytes() + y_d_.bytes() + choices_d_.bytes() + slots_d_.bytes() +
         moe_workspace_bytes(hidden_, c.intermediate_size, k_) +
         (gemm_ws_ ? moe_gemm_workspace_bytes(hidden_, c.intermediate_size, k_, max_tokens_, gemm_ws_->n_slots()) : 0);
}

uint64_t HybridExperts::host_bytes() const {
  return x_h_.bytes() + y_h_.bytes() + ids_h_.bytes() + weights_h_.bytes() + choices_h_.bytes() + slots_h_.bytes() +
         mirror_h_.bytes() +
         uploader_->host_bytes() + cpu_->workspace_bytes() + matmul_->bytes() +
         cpu_ids_.size() * sizeof(int32_t) + (routed_.size() + trace_ids_.size()) * sizeof(uint16_t);
}

HybridCounters HybridExperts::counters() const {
  HybridCounters c = counters_;
  if (paging_) c.disk_missing_bytes = paging_->missing_bytes();
  const uint64_t read = offload::process_read_bytes();
  c.disk_read_bytes = read > read_bytes_at_start_ ? read - read_bytes_at_start_ : 0;
  return c;
}

engine::OffloadCounters HybridExperts::offload_counters() const {
  const HybridCounters c = counters();
  engine::OffloadCounters r;
  r.gpu_expert_bytes = c.gpu_weight_bytes;
  r.cpu_expert_bytes = c.cpu_weight_bytes;
  r.pcie_up_bytes = c.pcie_up_bytes;
  r.pcie_down_bytes = c.pcie_down_bytes;
  r.expert_uploads = c.uploads;
  r.disk_read_bytes = c.disk_read_bytes;
  HandoffStats all;
  for (const HandoffStats& h : handoff_) {
    all.count += h.count;
    all.cpu_ms_sum += h.cpu_ms_sum;
    all.total_ms_sum += h.total_ms_sum;
  }
  r.handoff_cpu_ms = all.cpu_ms_mean();
  r.handoff_total_ms = all.total_ms_mean();
  return r;
}

std::string HybridExperts::describe() const {
  const int total = residency_->total_slots();
  std::string s = std::to_string(total) + " of " + std::to_string(layers_ * experts_) + " experts on the GPU (" +
                  hybrid_placement_name(placement_);
  if (placement_ == HybridPlacement::Cache) s += std::string(", ") + offload::policy_name(policy_) + " policy";
  s += ", " + std::to_string(pool_->scratch()) + " prefill scratch slots), the rest on the CPU (" +
       std::to_string(workers_->threads()) + " threads)";
  return s;
}

void HybridExperts::run(const GpuExpertBatch& b) {
  if (b.layer < 0 || b.layer >= layers_)
    throw InputError("hybrid experts: layer " + std::to_string(b.layer) + " of " + std::to_string(layers_));
  if (b.n < 1 || b.n > max_tokens_)
    throw InputError("hybrid experts: " + std::to_string(b.n) + " tokens; this instance takes 1.." +
                     std::to_string(max_tokens_));
  if (!b.x || !b.ids || !b.weights || !b.residual) throw InputError("hybrid experts: a null device pointer");
  collect_uploads();
  if (b.n == 1)
    run_decode(b);
  else
    run_prefill(b);
  after_layer(b.layer, b.n);
}

void HybridExperts::fetch_routing(const GpuExpertBatch& b, bool with_x) {
  const size_t nk = static_cast<size_t>(b.n) * k_;
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(ids_h_.get(), b.ids, nk * sizeof(int32_t), cudaMemcpyDeviceToHost, b.stream));
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(weights_h_.get(), b.weights, nk * sizeof(float), cudaMemcpyDeviceToHost, b.stream));
  uint64_t down = nk * (sizeof(int32_t) + sizeof(float));
  if (with_x) {
    const size_t nx = static_cast<size_t>(b.n * hidden_);
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(x_h_.get(), b.x, nx * sizeof(float), cudaMemcpyDeviceToHost, b.stream));
    down += nx * sizeof(float);
  }
  // The previous hand-off's events precede this copy in the stream: read them before re-recording.
  if (handoff_layer_ >= 0) {
    OSSRUN_CUDA_CHECK(cudaEventSynchronize(h2d_done_));
    float ms = 0;
    OSSRUN_CUDA_CHECK(cudaEventElapsedTime(&ms, d2h_done_, h2d_done_));
    HandoffStats& h = handoff_[static_cast<size_t>(handoff_layer_)];
    h.total_ms_sum += ms;
    h.total_ms_max = std::max(h.total_ms_max, static_cast<double>(ms));
    handoff_layer_ = -1;
  }
  OSSRUN_CUDA_CHECK(cudaEventRecord(d2h_done_, b.stream));
  OSSRUN_CUDA_CHECK(cudaEventSynchronize(d2h_done_));
  counters_.pcie_down_bytes += down;
  for (size_t i = 0; i < nk; ++i)
    if (ids_h_[i] < 0 || ids_h_[i] >= experts_)
      throw InputError("hybrid experts: layer " + std::to_string(b.layer) + " routed to expert " +
                       std::to_string(ids_h_[i]) + " of " + std::to_string(experts_));
  // The stream has drained up to here, so the pinned mirror may be rewritten and copied again.
  flush_mirror(b.stream);
}

void HybridExperts::cpu_experts_into_residual(const GpuExpertBatch& b) {
  const size_t ny = static_cast<size_t>(b.n * hidden_);
  cpu_->run({.layer = b.layer, .n = b.n, .x = x_h_.get(), .ids = cpu_ids_.data(), .weights = weights_h_.get(),
             .out = y_h_.get()});
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(y_d_.get(), y_h_.get(), ny * sizeof(float), cudaMemcpyHostToDevice, b.stream));
  add_f32(b.residual, y_d_.get(), static_cast<int64_t>(ny), b.stream);
  counters_.pcie_up_bytes += ny * sizeof(float);
}

void HybridExperts::run_decode(const GpuExpertBatch& b) {
  fetch_routing(b, /*with_x=*/true);
  const auto t0 = std::chrono::steady_clock::now();
  const int l = b.layer;
  int on_gpu = 0, on_cpu = 0;
  for (int i = 0; i < k_; ++i) {
    const int32_t id = ids_h_[static_cast<size_t>(i)];
    const int slot = residency_->slot_of(l, id);
    choices_h_[static_cast<size_t>(i)] = {slot >= 0 ? slot : kSkippedSlot, weights_h_[static_cast<size_t>(i)]};
    cpu_ids_[static_cast<size_t>(i)] = slot >= 0 ? engine::kSkippedExpert : id;
    (slot >= 0 ? on_gpu : on_cpu) += 1;
  }
  counters_.expert_calls += static_cast<uint64_t>(k_);
  counters_.expert_calls_gpu += static_cast<uint64_t>(on_gpu);
  counters_.gpu_weight_bytes += static_cast<uint64_t>(on_gpu) * slice_bytes_;
  counters_.cpu_weight_bytes += static_cast<uint64_t>(on_cpu) * slice_bytes_;
  if (on_gpu > 0) {
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(choices_d_.get(), choices_h_.get(), static_cast<size_t>(k_) * sizeof(ExpertChoice),
                                      cudaMemcpyHostToDevice, b.stream));
    counters_.pcie_up_bytes += static_cast<uint64_t>(k_) * sizeof(ExpertChoice);
    const ModelConfig& c = ck_.config();
    mxfp4_moe_matvec(slot_table_device(l), choices_d_.get(), k_, b.x, b.residual,
                     {static_cast<int>(hidden_), static_cast<int>(c.intermediate_size), residency_->slots(l)},
                     {static_cast<float>(c.swiglu_alpha), static_cast<float>(c.swiglu_limit)}, *moe_ws_, b.stream);
  }
  OSSRUN_CUDA_CHECK(cudaEventRecord(layer_done_[static_cast<size_t>(l)], b.stream));
  if (on_cpu > 0) {  // concurrently with the GPU kernel above
    if (paging_) {
      for (int i = 0; i < k_; ++i)
        if (cpu_ids_[static_cast<size_t>(i)] >= 0) {
          const auto p = slice_pieces(slices_[static_cast<size_t>(l * experts_ + cpu_ids_[static_cast<size_t>(i)])]);
          const SlotLayout& lay = pool_->layout();
          offload::ByteRange r[SlotLayout::kPieces];
          for (int q = 0; q < SlotLayout::kPieces; ++q) r[q] = {p[static_cast<size_t>(q)], lay.bytes[static_cast<size_t>(q)]};
          paging_->count_missing(r);
        }
    }
    cpu_experts_into_residual(b);
    OSSRUN_CUDA_CHECK(cudaEventRecord(h2d_done_, b.stream));
    HandoffStats& h = handoff_[static_cast<size_t>(l)];
    h.cpu_ms_sum += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++h.count;
    handoff_layer_ = l;
  }
}

}  // namespace ossrun::gpu
