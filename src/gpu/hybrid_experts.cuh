// The hybrid offload behind the GPU expert seam (gpu_experts.cuh; architecture.md "Data flow in hybrid
// decode"): a pool of GPU slots per layer holds the resident experts; the others run on the CPU from the
// mmap'd checkpoint, at the same time as the GPU ones.
//
// Decode (n == 1), per layer:
//   1. ids, weights and x go device -> host through pinned memory and an event;
//   2. the host maps each choice to its slot (offload/residency.h); resident choices launch mxfp4_moe_matvec
//      (the others as slot -1) on the compute stream;
//   3. meanwhile the CPU thread pool runs the other choices (CpuExperts, resident ones as id -1);
//   4. the CPU result goes host -> device and is added into the residual after the GPU's;
//   5. router statistics and the layer's policy (ExpertCache) step; admissions are uploaded on the copy
//      stream (pinned_staging.cuh) within the PCIe credit (UploadCredit), evictions applied; a slot is
//      served only once its upload's event completed, and overwritten only after the layer's last kernel.
// Prefill (n > 1): per expert of the batch, the cost model (offload/prefill_cost_model.h) picks the CPU or an
// upload into a scratch slot and the GPU; resident experts run on the GPU.
//
// Memory: every device allocation happens in the constructor and device_bytes() never exceeds the VRAM budget
// (slots are taken away from the fullest layers until the workspaces fit); host_bytes() (pinned staging and
// exchange buffers, the CPU experts' workspaces) never exceeds the RAM budget (else InputError).
#pragma once
#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/mxfp4_moe_gemm.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "offload/expert_cache.h"
#include "offload/expert_paging.h"
#include "offload/memory_plan.h"
#include "offload/prefill_cost_model.h"
#include "offload/residency.h"
#include "offload/router_stats.h"
#include "offload/trace.h"
#include "src/engine/cpu_experts.h"
#include "src/engine/linear.h"
#include "src/engine/parallel.h"
#include "src/gpu/expert_slot_pool.cuh"
#include "src/gpu/gpu_experts.cuh"
#include "src/gpu/pinned_array.cuh"
#include "src/gpu/pinned_staging.cuh"
#include "src/model/checkpoint.h"

namespace ossrun::gpu {

// Where experts go, for the benchmark's comparisons at equal VRAM.
enum class HybridPlacement : uint8_t {
  Cache,         // the plan's per-layer slots, filled and refilled by the policy (the product)
  CpuOnly,       // no expert on the GPU (attention only)
  StaticLayers,  // the first N layers' experts on the CPU, all experts of the other layers on the GPU, N as
                 // small as the budget allows; never changes
};
const char* hybrid_placement_name(HybridPlacement p);  // "cache", "cpu-only", "static-layers"
// Throws InputError naming the known placements.
HybridPlacement parse_hybrid_placement(std::string_view name);

// The GPU kernel of prefill batches: the grouped GEMM (tensor cores, split-bf16: ~1e-5..1e-4 of fp32) or
// mxfp4_moe_matvec per token (fp32, slower; kept as the reference and for tight budgets: no GEMM workspace).
enum class PrefillKernel : uint8_t { Gemm, Matvec };

// Page-cache hints (offload/expert_paging.h): Auto turns them on when MemAvailable is below the experts' bytes.
enum class Paging : uint8_t { Auto, On, Off };

struct HybridOptions {
  HybridPlacement placement = HybridPlacement::Cache;
  std::string policy = "router";  // static, lru, lfu, router (Cache placement)
  int threads = 0;                // CPU expert threads; <= 0: one per core
  int64_t max_tokens = 512;       // the largest n run() takes (the prefill chunk)
  // Bytes of GPU memory this object may hold (slots, scratch, tables, exchange buffers, kernel workspace).
  // 0: the plan's expert slots (plan.gpu.experts).
  uint64_t vram_budget = 0;
  uint64_t ram_budget = 0;        // bytes of host memory it may pin or allocate; 0: no limit
  int scratch_slots = 2;          // prefill upload slots (fewer when the budget is tight)
  PrefillKernel prefill_kernel = PrefillKernel::Gemm;
  // Router statistics: loaded from (and saved next to) this model directory, falling back to the cache dir.
  // Empty: none loaded or saved.
  std::filesystem::path stats_model_dir;
  std::filesystem::path cache_dir;  // empty: ossrun_cache_dir()
  bool fill_without_stats = true;   // no statistics: fill each layer's slots with its first experts
  std::filesystem::path trace;      // non-empty: record every token's routing here (offload/trace.h)
  Paging paging = Paging::Auto;
  // Measured throughputs; nullopt: loaded from <cache>/hybrid_probe/, else probed at start-up and saved there.
  std::optional<offload::HybridThroughput> throughput;
};

// Bytes moved, since construction.
struct HybridCounters {
  uint64_t tokens = 0;             // tokens through the last layer
  uint64_t expert_calls = 0, expert_calls_gpu = 0;
  uint64_t gpu_weight_bytes = 0;   // expert weights read by GPU kernels
  uint64_t cpu_weight_bytes = 0;   // expert weights read by the CPU
  uint64_t pcie_up_bytes = 0;      // host -> device: expert uploads, CPU results, choices
  uint64_t pcie_down_bytes = 0;    // device -> host: ids, weights, activations
  uint64_t uploads = 0;            // expert slices uploaded (admissions, warm start and prefill scratch)
  uint64_t disk_missing_bytes = 0; // CPU-read slice bytes not in the page cache just before (mincore; paging on)
  uint64_t disk_read_bytes = 0;    // /proc/self/io read_bytes since construction (the warm start not counted)
};

// The decode hand-off per layer: D2H ready -> CPU done (host clock) -> H2D done (device clock), in ms.
struct HandoffStats {
  uint64_t count = 0;
  double cpu_ms_sum = 0, total_ms_sum = 0, total_ms_max = 0;
  double cpu_ms_mean() const { return count ? cpu_ms_sum / static_cast<double>(count) : 0; }
  double total_ms_mean() const { return count ? total_ms_sum / static_cast<double>(count) : 0; }
};

class HybridExperts;

// The factory the GPU forward pass calls. Throws InputError for BF16 experts, a budget that cannot hold the
// workspaces, a RAM budget below the host buffers, or an unknown policy.
std::unique_ptr<HybridExperts> make_hybrid_experts(const Checkpoint& ck, const offload::MemoryPlan& plan,
                                                   const HybridOptions& options);

class HybridExperts : public GpuExperts {
 public:
  HybridExperts(const Checkpoint& ck, const offload::MemoryPlan& plan, const HybridOptions& options);
  ~HybridExperts() override;  // finish(), quietly
  HybridExperts(const HybridExperts&) = delete;
  HybridExperts& operator=(const HybridExperts&) = delete;

  void run(const GpuExpertBatch& b) override;
  bool graph_capturable() const override { return false; }  // decode synchronizes with the host per layer
  std::string describe() const override;
  uint64_t device_bytes() const override;
  uint64_t host_bytes() const override;
  uint64_t expert_calls() const override { return counters_.expert_calls; }
  uint64_t expert_calls_gpu() const override { return counters_.expert_calls_gpu; }

  HybridCounters counters() const;
  engine::OffloadCounters offload_counters() const override;  // counters() and the hand-off means
  const std::vector<HandoffStats>& handoff() const { return handoff_; }  // (L)
  const offload::HybridThroughput& throughput() const { return throughput_; }
  uint64_t vram_budget() const { return vram_budget_; }
  uint64_t ram_budget() const { return ram_budget_; }  // 0: none given
  int slots(int layer) const { return residency_->slots(layer); }
  int resident(int layer) const { return residency_->resident(layer); }  // slots holding a finished upload
  int scratch_slots() const { return pool_->scratch(); }
  // Device (E) int32 for `layer`: slot within the layer's table, -1 when not resident (refreshed at the start
  // of each run(), in stream order), and the layer's slot table: for a router on the GPU.
  const int32_t* slot_of_expert_device(int layer) const { return pool_->mirror(layer); }
  const ExpertSlotMxfp4* slot_table_device(int layer) const { return pool_->table(residency_->slot_offset(layer)); }
  // Waits for every upload in flight and makes the finished ones resident (start-up, tests, benchmarks).
  void drain_uploads();
  // Saves the router statistics (when a model directory was given) and closes the trace. Idempotent.
  void finish();

 private:
  // Construction (hybrid_experts.cpp).
  std::vector<int> choose_slots(const offload::MemoryPlan& plan, const HybridOptions& o, int& scratch) const;
  void make_policies(const HybridOptions& o);
  void warm_start(const HybridOptions& o);
  // Residency upkeep (hybrid_residency.cpp).
  void collect_uploads();           // finished uploads become resident
  void flush_mirror(cudaStream_t stream);
  uint64_t upload(int slot_in_table, int layer, int expert, cudaEvent_t after);
  void admit_and_evict(int layer, std::span<const uint16_t> routed, int budget);
  void after_layer(int layer, int64_t n);  // statistics, policies, trace, paging
  offload::HybridThroughput load_or_probe_throughput();  // hybrid_probe.cpp
  // The two paths.
  void run_decode(const GpuExpertBatch& b);   // hybrid_experts.cpp
  void run_prefill(const GpuExpertBatch& b);  // hybrid_prefill.cpp
  void fetch_routing(const GpuExpertBatch& b, bool with_x);  // D2H of ids, weights (and x) + sync
  void cpu_experts_into_residual(const GpuExpertBatch& b);   // runs cpu_ids_ on the CPU, H2D, add
  // The batch's choices whose slot (choice_slots (n, k): host, pinned; device copy slots_d) is not -1, from
  // the table of n_slots slots, added into the residual: one grouped GEMM, or one matvec per token.
  void run_batch_on_gpu(const ExpertSlotMxfp4* table, int n_slots, const int32_t* slots_h, const int32_t* slots_d,
                        const GpuExpertBatch& b);

  const Checkpoint& ck_;
  int layers_ = 0, experts_ = 0, k_ = 0;
  int64_t hidden_ = 0, max_tokens_ = 0;
  uint64_t slice_bytes_ = 0;
  uint64_t vram_budget_ = 0, ram_budget_ = 0;
  HybridPlacement placement_;
  offload::PolicyKind policy_ = offload::PolicyKind::Router;
  std::filesystem::path stats_model_dir_, cache_dir_;
  offload::HybridThroughput throughput_;
  std::vector<ExpertSlice> slices_;  // (L, E) views into the checkpoint

  std::unique_ptr<offload::Residency> residency_;
  std::vector<std::unique_ptr<offload::ExpertCache>> caches_;  // (L)
  std::unique_ptr<offload::RouterStats> stats_;                 // saved next to the model
  std::unique_ptr<offload::UploadCredit> credit_;
  std::unique_ptr<offload::TraceWriter> trace_;
  std::unique_ptr<offload::ExpertPaging> paging_;  // null when paging is off
  std::chrono::steady_clock::time_point last_step_;

  std::unique_ptr<engine::Workers> workers_;
  std::unique_ptr<engine::SplitMatmul> matmul_;
  std::unique_ptr<engine::CpuExperts> cpu_;
  uint64_t cpu_workspace_bytes_ = 0;

  std::unique_ptr<ExpertSlotPool> pool_;
  std::unique_ptr<PinnedUploader> uploader_;
  std::unique_ptr<MoeWorkspace> moe_ws_;
  std::unique_ptr<MoeGemmWorkspace> gemm_ws_;  // null with PrefillKernel::Matvec or max_tokens 1
  PrefillKernel prefill_kernel_ = PrefillKernel::Gemm;
  struct Pending {
    uint64_t seq;
    offload::UploadTicket ticket;
  };
  std::deque<Pending> pending_;       // uploads in flight, in submission order
  std::vector<uint8_t> mirror_dirty_; // (L)
  std::vector<cudaEvent_t> layer_done_;  // (L) after the layer's last kernel that read its slots
  std::vector<cudaEvent_t> scratch_free_;  // (scratch) after the last kernel that read the scratch slot
  cudaEvent_t d2h_done_ = nullptr, h2d_done_ = nullptr;  // timing events of the decode hand-off
  int handoff_layer_ = -1;  // layer whose hand-off events await reading, -1 none

  // Pinned exchange buffers (host) and their device counterparts.
  PinnedArray<float> x_h_;             // (max_tokens, H) the inputs, for the CPU
  PinnedArray<float> y_h_;             // (max_tokens, H) the CPU experts' output
  PinnedArray<int32_t> ids_h_;         // (max_tokens, k)
  PinnedArray<float> weights_h_;       // (max_tokens, k)
  PinnedArray<ExpertChoice> choices_h_;  // (max_tokens, k): (slot, weight) per choice, for the matvec
  PinnedArray<int32_t> slots_h_;       // (1 + E, max_tokens, k): prefill slot per choice (-1 skip): residents,
                                       // then one array per wave of scratch uploads
  PinnedArray<int32_t> mirror_h_;      // (L, E) staging of the device mirror
  DeviceBuffer<float> y_d_;            // (max_tokens, H)
  DeviceBuffer<ExpertChoice> choices_d_;  // (max_tokens, k)
  DeviceBuffer<int32_t> slots_d_;         // (1 + E, max_tokens, k)
  std::vector<int32_t> cpu_ids_;       // (max_tokens, k) the CPU's share: ids, -1 where the GPU serves
  std::vector<uint16_t> routed_;       // (k) one token's ids for the policy
  std::vector<uint16_t> trace_ids_;    // (max_tokens, L, k) the batch's routing, appended after the last layer
  // Prefill scratch (hybrid_prefill.cpp), kept to avoid allocating per batch.
  std::vector<int64_t> group_count_;                  // (E) tokens of the batch per expert
  std::vector<offload::PrefillExpert> batch_experts_; // experts with tokens, for the cost model
  std::vector<offload::PrefillSide> side_;            // (E) where each runs
  std::vector<int> upload_order_;                     // experts uploaded for the batch, in order
  std::vector<int> upload_index_;                     // (E) position in upload_order_, -1 when not uploaded
  std::vector<uint64_t> upload_seq_;                  // (uploads) uploader sequence numbers

  HybridCounters counters_;
  std::vector<HandoffStats> handoff_;
  bool finished_ = false;
  uint64_t read_bytes_at_start_ = 0;  // /proc/self/io read_bytes after construction
};

}  // namespace ossrun::gpu
