// HybridExperts' prefill path (n > 1 tokens): group the batch's choices by expert, let the cost model
// (offload/prefill_cost_model.h) put each expert on the CPU or upload it into a scratch slot for the batch,
// run the resident and uploaded experts on the GPU while the CPU thread pool runs the rest, then add the
// CPU's output into the residual.
//
// GPU experts run through mxfp4_moe_matvec one token at a time (run_group_on_gpu); the grouped GEMM replaces
// that function when it lands, nothing else changes.
#include <algorithm>
#include <climits>

#include "gpu_kernels/cuda_check.cuh"
#include "src/gpu/hybrid_experts.cuh"

namespace ossrun::gpu {

// One expert in one table slot over m tokens of the batch: choices (device, m) hold (slot, weight) per token.
void HybridExperts::run_group_on_gpu(const ExpertSlotMxfp4* table, int n_slots, const ExpertChoice* choices_d,
                                     std::span<const int32_t> tokens, const GpuExpertBatch& b) {
  const ModelConfig& c = ck_.config();
  const MoeShape shape{static_cast<int>(hidden_), static_cast<int>(c.intermediate_size), n_slots};
  const SwigluParams sw{static_cast<float>(c.swiglu_alpha), static_cast<float>(c.swiglu_limit)};
  for (size_t g = 0; g < tokens.size(); ++g)
    mxfp4_moe_matvec(table, choices_d + g, 1, b.x + tokens[g] * hidden_, b.residual + tokens[g] * hidden_, shape, sw,
                     *moe_ws_, b.stream);
}

void HybridExperts::run_prefill(const GpuExpertBatch& b) {
  fetch_routing(b, /*with_x=*/true);
  const int l = b.layer;
  const int64_t nk = b.n * k_;
  const ModelConfig& c = ck_.config();

  // Routing metadata: tokens per expert, and the experts of the batch for the cost model.
  group_count_.assign(static_cast<size_t>(experts_), 0);
  for (int64_t p = 0; p < nk; ++p) ++group_count_[static_cast<size_t>(ids_h_[static_cast<size_t>(p)])];
  batch_experts_.clear();
  for (int e = 0; e < experts_; ++e)
    if (group_count_[static_cast<size_t>(e)] > 0)
      batch_experts_.push_back({e, group_count_[static_cast<size_t>(e)], residency_->slot_of(l, e) >= 0});
  const offload::PrefillAssignment a =
      offload::assign_prefill(batch_experts_, throughput_, pool_->scratch() > 0 ? INT_MAX : 0);
  side_.assign(static_cast<size_t>(experts_), offload::PrefillSide::Cpu);
  upload_order_.clear();
  for (size_t i = 0; i < batch_experts_.size(); ++i) {
    side_[static_cast<size_t>(batch_experts_[i].expert)] = a.side[i];
    if (a.side[i] == offload::PrefillSide::GpuUpload) upload_order_.push_back(batch_experts_[i].expert);
  }

  // Choices: region 0 per token (resident slots, -1 elsewhere); region 1 the uploaded experts' (token, weight)
  // pairs, expert after expert, each pointing at its scratch slot.
  ExpertChoice* per_token = choices_h_.get();
  ExpertChoice* grouped = choices_h_.get() + nk;
  group_tokens_.clear();
  group_start_.assign(upload_order_.size() + 1, 0);
  bool any_resident = false, any_cpu = false;
  for (int64_t p = 0; p < nk; ++p) {
    const int32_t id = ids_h_[static_cast<size_t>(p)];
    const offload::PrefillSide s = side_[static_cast<size_t>(id)];
    const int slot = s == offload::PrefillSide::GpuResident ? residency_->slot_of(l, id) : kSkippedSlot;
    per_token[p] = {slot, weights_h_[static_cast<size_t>(p)]};
    cpu_ids_[static_cast<size_t>(p)] = s == offload::PrefillSide::Cpu ? id : engine::kSkippedExpert;
    any_resident |= slot >= 0;
    any_cpu |= s == offload::PrefillSide::Cpu;
    counters_.gpu_weight_bytes += s != offload::PrefillSide::Cpu ? slice_bytes_ : 0;  // one matvec per token
  }
  for (size_t j = 0; j < upload_order_.size(); ++j) {
    const int e = upload_order_[j];
    const int scratch = static_cast<int>(j % static_cast<size_t>(pool_->scratch()));
    for (int64_t p = 0; p < nk; ++p)
      if (ids_h_[static_cast<size_t>(p)] == e) {
        grouped[group_tokens_.size()] = {scratch, weights_h_[static_cast<size_t>(p)]};
        group_tokens_.push_back(static_cast<int32_t>(p / k_));
      }
    group_start_[j + 1] = static_cast<int64_t>(group_tokens_.size());
  }
  for (const offload::PrefillExpert& e : batch_experts_)
    if (side_[static_cast<size_t>(e.expert)] == offload::PrefillSide::Cpu) counters_.cpu_weight_bytes += slice_bytes_;
  counters_.expert_calls += static_cast<uint64_t>(nk);
  for (int64_t p = 0; p < nk; ++p) counters_.expert_calls_gpu += per_token[p].slot >= 0;
  counters_.expert_calls_gpu += group_tokens_.size();  // served from a scratch slot
  const size_t n_choices = static_cast<size_t>(nk) + group_tokens_.size();
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(choices_d_.get(), choices_h_.get(), n_choices * sizeof(ExpertChoice),
                                    cudaMemcpyHostToDevice, b.stream));
  counters_.pcie_up_bytes += n_choices * sizeof(ExpertChoice);

  // GPU, resident experts: every token's resident choices in one launch per token.
  if (any_resident) {
    const MoeShape shape{static_cast<int>(hidden_), static_cast<int>(c.intermediate_size), residency_->slots(l)};
    const SwigluParams sw{static_cast<float>(c.swiglu_alpha), static_cast<float>(c.swiglu_limit)};
    for (int64_t t = 0; t < b.n; ++t)
      mxfp4_moe_matvec(slot_table_device(l), choices_d_.get() + t * k_, k_, b.x + t * hidden_,
                       b.residual + t * hidden_, shape, sw, *moe_ws_, b.stream);
  }
  OSSRUN_CUDA_CHECK(cudaEventRecord(layer_done_[static_cast<size_t>(l)], b.stream));

  // Uploaded experts: scratch slot j % S holds expert j; its upload waits for the kernels of expert j - S.
  const size_t S = static_cast<size_t>(pool_->scratch());
  std::vector<uint64_t>& seq = upload_seq_;
  seq.assign(upload_order_.size(), 0);
  auto submit = [&](size_t j) {
    const size_t s = j % S;
    seq[j] = upload(pool_->scratch_index(static_cast<int>(s)), l, upload_order_[j], scratch_free_[s]);
  };
  auto launch = [&](size_t j) {
    uploader_->order_after(seq[j], b.stream);
    const auto g0 = group_start_[j], g1 = group_start_[j + 1];
    run_group_on_gpu(pool_->scratch_table(), static_cast<int>(S), choices_d_.get() + nk + g0,
                     std::span<const int32_t>(group_tokens_.data() + g0, static_cast<size_t>(g1 - g0)), b);
    OSSRUN_CUDA_CHECK(cudaEventRecord(scratch_free_[j % S], b.stream));
    if (j + S < upload_order_.size()) submit(j + S);
  };
  const size_t first = std::min(S, upload_order_.size());
  for (size_t j = 0; j < first; ++j) submit(j);
  for (size_t j = 0; j < first; ++j) launch(j);  // the GPU has work while the CPU runs its share
  if (any_cpu) cpu_experts_into_residual(b);
  for (size_t j = first; j < upload_order_.size(); ++j) launch(j);
}

}  // namespace ossrun::gpu
