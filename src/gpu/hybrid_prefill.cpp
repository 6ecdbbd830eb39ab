// HybridExperts' prefill path (n > 1 tokens): group the batch's choices by expert, let the cost model
// (offload/prefill_cost_model.h) put each expert on the CPU or upload it into a scratch slot for the batch,
// run the resident and uploaded experts on the GPU while the CPU thread pool runs the rest, then add the
// CPU's output into the residual.
//
// The GPU runs the batch in slot arrays (n, k) whose entries are -1 for choices it does not serve: one for the
// resident experts (the layer's slot table), then one per wave of S uploaded experts (the S scratch slots;
// wave w+1's uploads wait on the copy stream for wave w's kernels). Each array is one grouped GEMM
// (mxfp4_moe_gemm) or one matvec per token (PrefillKernel::Matvec).
#include <algorithm>
#include <climits>

#include "gpu_kernels/cuda_check.cuh"
#include "src/gpu/hybrid_experts.cuh"

namespace ossrun::gpu {

void HybridExperts::run_batch_on_gpu(const ExpertSlotMxfp4* table, int n_slots, const int32_t* slots_h,
                                     const int32_t* slots_d, const GpuExpertBatch& b) {
  const ModelConfig& c = ck_.config();
  const MoeShape shape{static_cast<int>(hidden_), static_cast<int>(c.intermediate_size), n_slots};
  const SwigluParams sw{static_cast<float>(c.swiglu_alpha), static_cast<float>(c.swiglu_limit)};
  if (gemm_ws_) {
    mxfp4_moe_gemm(table, n_slots, slots_d, b.weights, b.n, k_, b.x, b.residual, shape, sw, *gemm_ws_, b.stream);
    return;
  }
  // The matvec takes (slot, weight) pairs: choices_d_ mirrors slots_d region by region.
  const ptrdiff_t region = slots_d - slots_d_.get();
  for (int64_t t = 0; t < b.n; ++t) {
    const int32_t* row = slots_h + t * k_;
    if (std::all_of(row, row + k_, [](int32_t s) { return s < 0; })) continue;
    mxfp4_moe_matvec(table, choices_d_.get() + region + t * k_, k_, b.x + t * hidden_, b.residual + t * hidden_, shape,
                     sw, *moe_ws_, b.stream);
  }
}

void HybridExperts::run_prefill(const GpuExpertBatch& b) {
  fetch_routing(b, /*with_x=*/true);
  const int l = b.layer;
  const int64_t nk = b.n * k_;
  const size_t MK = static_cast<size_t>(max_tokens_ * k_);  // stride between slot arrays

  // Routing metadata: tokens per expert, and the experts of the batch for the cost model.
  group_count_.assign(static_cast<size_t>(experts_), 0);
  for (int64_t p = 0; p < nk; ++p) ++group_count_[static_cast<size_t>(ids_h_[static_cast<size_t>(p)])];
  batch_experts_.clear();
  for (int e = 0; e < experts_; ++e)
    if (group_count_[static_cast<size_t>(e)] > 0)
      batch_experts_.push_back({e, group_count_[static_cast<size_t>(e)], residency_->slot_of(l, e) >= 0});
  const size_t S = static_cast<size_t>(pool_->scratch());
  const offload::PrefillAssignment a = offload::assign_prefill(batch_experts_, throughput_, S > 0 ? INT_MAX : 0);
  side_.assign(static_cast<size_t>(experts_), offload::PrefillSide::Cpu);
  upload_order_.clear();
  upload_index_.assign(static_cast<size_t>(experts_), -1);
  for (size_t i = 0; i < batch_experts_.size(); ++i) {
    const int e = batch_experts_[i].expert;
    side_[static_cast<size_t>(e)] = a.side[i];
    if (a.side[i] == offload::PrefillSide::GpuUpload) {
      upload_index_[static_cast<size_t>(e)] = static_cast<int>(upload_order_.size());
      upload_order_.push_back(e);
    }
  }
  const size_t waves = S > 0 ? (upload_order_.size() + S - 1) / S : 0;

  // Slot arrays: region 0 the residents, region 1 + w wave w's scratch slots; the CPU's share in cpu_ids_.
  bool any_resident = false, any_cpu = false;
  for (int64_t p = 0; p < nk; ++p) {
    const int32_t id = ids_h_[static_cast<size_t>(p)];
    const offload::PrefillSide s = side_[static_cast<size_t>(id)];
    const int slot = s == offload::PrefillSide::GpuResident ? residency_->slot_of(l, id) : kSkippedSlot;
    slots_h_[static_cast<size_t>(p)] = slot;
    cpu_ids_[static_cast<size_t>(p)] = s == offload::PrefillSide::Cpu ? id : engine::kSkippedExpert;
    any_resident |= slot >= 0;
    any_cpu |= s == offload::PrefillSide::Cpu;
    if (s != offload::PrefillSide::Cpu) ++counters_.expert_calls_gpu;
  }
  for (size_t w = 0; w < waves; ++w)
    for (int64_t p = 0; p < nk; ++p) {
      const int j = upload_index_[static_cast<size_t>(ids_h_[static_cast<size_t>(p)])];
      const bool in_wave = j >= 0 && static_cast<size_t>(j) / S == w;
      slots_h_[(1 + w) * MK + static_cast<size_t>(p)] = in_wave ? static_cast<int32_t>(static_cast<size_t>(j) % S) : kSkippedSlot;
    }
  const size_t used = waves * MK + static_cast<size_t>(nk);  // regions 0 .. waves, the last one partly
  OSSRUN_CUDA_CHECK(cudaMemcpyAsync(slots_d_.get(), slots_h_.get(), used * sizeof(int32_t), cudaMemcpyHostToDevice, b.stream));
  counters_.pcie_up_bytes += used * sizeof(int32_t);
  if (!gemm_ws_) {  // the matvec reads (slot, weight) pairs
    for (size_t r = 0; r <= waves; ++r)
      for (int64_t p = 0; p < nk; ++p)
        choices_h_[r * MK + static_cast<size_t>(p)] = {slots_h_[r * MK + static_cast<size_t>(p)],
                                                       weights_h_[static_cast<size_t>(p)]};
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(choices_d_.get(), choices_h_.get(), used * sizeof(ExpertChoice),
                                      cudaMemcpyHostToDevice, b.stream));
    counters_.pcie_up_bytes += used * sizeof(ExpertChoice);
  }
  counters_.expert_calls += static_cast<uint64_t>(nk);
  for (const offload::PrefillExpert& e : batch_experts_) {
    if (side_[static_cast<size_t>(e.expert)] == offload::PrefillSide::Cpu)
      counters_.cpu_weight_bytes += slice_bytes_;  // read once per batch (dequantized tiles or matvec tiles)
    else
      counters_.gpu_weight_bytes += gemm_ws_ ? slice_bytes_ : slice_bytes_ * static_cast<uint64_t>(e.tokens);
  }

  // GPU, resident experts.
  if (any_resident) run_batch_on_gpu(slot_table_device(l), residency_->slots(l), slots_h_.get(), slots_d_.get(), b);
  OSSRUN_CUDA_CHECK(cudaEventRecord(layer_done_[static_cast<size_t>(l)], b.stream));

  // Uploaded experts, wave by wave: expert j in scratch slot j % S; its upload waits for the kernels that read
  // that slot in the previous wave.
  std::vector<uint64_t>& seq = upload_seq_;
  seq.assign(upload_order_.size(), 0);
  auto submit_wave = [&](size_t w) {
    for (size_t j = w * S; j < std::min((w + 1) * S, upload_order_.size()); ++j)
      seq[j] = upload(pool_->scratch_index(static_cast<int>(j % S)), l, upload_order_[j], scratch_free_[j % S]);
  };
  auto launch_wave = [&](size_t w) {
    const size_t j1 = std::min((w + 1) * S, upload_order_.size());
    for (size_t j = w * S; j < j1; ++j) uploader_->order_after(seq[j], b.stream);
    run_batch_on_gpu(pool_->scratch_table(), static_cast<int>(S), slots_h_.get() + (1 + w) * MK,
                     slots_d_.get() + (1 + w) * MK, b);
    for (size_t j = w * S; j < j1; ++j) OSSRUN_CUDA_CHECK(cudaEventRecord(scratch_free_[j % S], b.stream));
    if (w + 1 < waves) submit_wave(w + 1);
  };
  if (waves > 0) {
    submit_wave(0);
    launch_wave(0);  // the GPU has work while the CPU runs its share
  }
  if (any_cpu) cpu_experts_into_residual(b);
  for (size_t w = 1; w < waves; ++w) launch_wave(w);
}

}  // namespace ossrun::gpu
