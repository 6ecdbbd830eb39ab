// The GPU backend's factory: which placement of the experts the budgets allow, and its construction.
#include <algorithm>

#include "offload/byte_size.h"
#include "offload/host_memory.h"
#include "offload/memory_plan.h"
#include "gpu_kernels/attention_decode.cuh"
#include "gpu_kernels/copy_bandwidth.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "src/gpu/device.h"
#include "src/gpu/gpu_backend.h"
#include "src/gpu/gpu_forward.cuh"
#include "src/gpu/hybrid_experts.cuh"
#include "src/gpu/resident_experts.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

offload::MemoryPlan plan_for(const Checkpoint& ck, const GpuForwardOptions& opt) {
  offload::PlanRequest r;
  r.config = ck.config();
  const DeviceInfo& d = probe();
  r.vram_budget = opt.vram_budget ? opt.vram_budget : offload::default_vram_budget(d.free_bytes, d.total_bytes);
  r.ram_budget = opt.ram_budget ? opt.ram_budget : offload::default_ram_budget(offload::read_host_memory());
  r.context = opt.ctx;
  r.prefill_chunk = opt.max_batch;
  return offload::plan_memory(r);
}

// The shapes the GPU kernels take (gpt-oss-20b and -120b are well inside them).
std::optional<std::string> unsupported_shape(const ModelConfig& c) {
  const int64_t group = c.num_attention_heads / c.num_key_value_heads;
  if (c.head_dim != 16 && c.head_dim != 32 && c.head_dim != 64 && c.head_dim != 128)
    return "the GPU attention takes head_dim 16, 32, 64 or 128, not " + std::to_string(c.head_dim);
  if (group > kAttnMaxGroup)
    return "the GPU attention takes at most " + std::to_string(kAttnMaxGroup) + " query heads per KV head, not " +
           std::to_string(group);
  if (c.hidden_size % 32 || c.intermediate_size % 32 || c.q_dim() % 32)
    return "the GPU kernels need hidden, intermediate and query sizes that are multiples of 32";
  if (c.hidden_size > kMoeMaxK || c.intermediate_size > kMoeMaxK)
    return "the GPU expert kernels take hidden and intermediate sizes up to " + std::to_string(kMoeMaxK);
  return std::nullopt;
}

bool all_experts_fit(const offload::MemoryPlan& plan) {
  return std::all_of(plan.layers.begin(), plan.layers.end(),
                     [&](const offload::LayerPlacement& l) { return l.gpu_slots == plan.experts_per_layer; });
}

}  // namespace

std::optional<std::string> gpu_unavailable_reason(const Checkpoint& ck, const GpuForwardOptions& opt) {
  const DeviceInfo& d = probe();
  if (!d.present) return "no GPU: " + d.reason;
  if (ck.config().expert_format != ExpertFormat::MXFP4)
    return "this checkpoint's experts are bf16; the GPU kernels read MXFP4 experts";
  if (d.compute_major < 8) return "the GPU kernels need compute capability 8.0 or newer; this GPU has " + describe(d);
  if (std::optional<std::string> why = unsupported_shape(ck.config())) return *why;
  try {
    if (plan_for(ck, opt).cpu_only) return "the VRAM budget does not hold the dense part of the model";
  } catch (const InputError& e) {  // a budget too small for the dense part: the message says what would fit
    return e.what();
  }
  return std::nullopt;  // experts that do not all fit go through the hybrid offload
}

std::unique_ptr<engine::Forward> make_gpu_forward(const Checkpoint& ck, const GpuForwardOptions& opt) {
  if (std::optional<std::string> why = gpu_unavailable_reason(ck, opt)) throw InputError("cannot run on the GPU: " + *why);
  Uploader up(opt.on_progress);
  const offload::MemoryPlan plan = plan_for(ck, opt);
  const HybridPlacement placement = parse_hybrid_placement(opt.expert_placement);
  std::unique_ptr<GpuExperts> experts;
  if (all_experts_fit(plan) && placement == HybridPlacement::Cache && opt.trace.empty()) {
    experts = std::make_unique<ResidentExperts>(ck, opt.max_batch, up);
  } else {
    // The hybrid offload: the plan's expert share of the VRAM budget, statistics next to the model.
    HybridOptions h;
    h.placement = placement;
    h.policy = opt.policy;
    h.threads = opt.threads;
    h.max_tokens = opt.max_batch;
    h.vram_budget = plan.gpu.experts;
    h.stats_model_dir = ck.dir();
    h.trace = opt.trace;
    h.ram_budget = plan.host.budget;
    experts = make_hybrid_experts(ck, plan, h);
  }
  return std::make_unique<GpuForward>(ck, opt, up, std::move(experts));
}

double measure_copy_gbps(int reps) {
  const DeviceInfo& d = probe();
  if (!d.present) throw InputError("no GPU bandwidth to measure: " + d.reason);
  cudaStream_t stream = nullptr;
  OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double gbps = measure_copy_bandwidth(size_t{1} << 30, reps, stream).gbps;  // 1 GiB each way
  OSSRUN_CUDA_CHECK(cudaStreamDestroy(stream));
  return gbps;
}

}  // namespace ossrun::gpu
