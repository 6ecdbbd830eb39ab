// HybridExperts' residency upkeep: uploads in and out of flight, the device mirror of the residency map,
// and what happens after each layer (router statistics, the policy's step within the PCIe credit, the trace,
// page-cache hints).
#include <algorithm>

#include "gpu_kernels/cuda_check.cuh"
#include "src/gpu/hybrid_experts.cuh"

namespace ossrun::gpu {
namespace {

// Uploads queued at once at most: beyond this the policy gets no budget (the link is behind already).
constexpr size_t kMaxUploadsInFlight = 8;
// Page-cache read-ahead: the next layer's most popular experts not on the GPU, this many.
constexpr int kPrefetchExperts = 8;

}  // namespace

uint64_t HybridExperts::upload(int slot_in_table, int layer, int expert, cudaEvent_t after) {
  const ExpertSlice& s = slices_[static_cast<size_t>(layer * experts_ + expert)];
  const auto src = slice_pieces(s);
  const SlotLayout& lay = pool_->layout();
  UploadJob job;
  job.n_pieces = SlotLayout::kPieces;
  job.after = after;
  for (int p = 0; p < SlotLayout::kPieces; ++p)
    job.pieces[static_cast<size_t>(p)] = {src[static_cast<size_t>(p)], lay.bytes[static_cast<size_t>(p)],
                                          pool_->piece(slot_in_table, p)};
  ++counters_.uploads;
  counters_.pcie_up_bytes += slice_bytes_;
  return uploader_->submit(job);
}

void HybridExperts::collect_uploads() {
  const uint64_t done = uploader_->completed();
  while (!pending_.empty() && pending_.front().seq < done) {
    const offload::UploadTicket& t = pending_.front().ticket;
    if (residency_->finish_upload(t)) {
      mirror_dirty_[static_cast<size_t>(t.layer)] = 1;
      if (paging_) {  // its host pages are cold now: the GPU serves it
        const auto p = slice_pieces(slices_[static_cast<size_t>(t.layer * experts_ + t.expert)]);
        offload::ByteRange r[SlotLayout::kPieces];
        for (int q = 0; q < SlotLayout::kPieces; ++q)
          r[q] = {p[static_cast<size_t>(q)], pool_->layout().bytes[static_cast<size_t>(q)]};
        paging_->cold(r);
      }
    }
    pending_.pop_front();
  }
}

void HybridExperts::drain_uploads() {
  if (!pending_.empty()) uploader_->wait(pending_.back().seq);
  collect_uploads();
}

void HybridExperts::flush_mirror(cudaStream_t stream) {
  for (int l = 0; l < layers_; ++l) {
    if (!mirror_dirty_[static_cast<size_t>(l)]) continue;
    mirror_dirty_[static_cast<size_t>(l)] = 0;
    const auto m = residency_->slot_of_expert(l);
    int32_t* h = mirror_h_.get() + static_cast<size_t>(l) * experts_;
    std::copy(m.begin(), m.end(), h);
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(pool_->mirror(l), h, m.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  }
}

void HybridExperts::admit_and_evict(int layer, std::span<const uint16_t> routed, int budget) {
  offload::ExpertCache& cache = *caches_[static_cast<size_t>(layer)];
  offload::CacheDecision d;
  cache.step(routed, budget, d);
  if (d.admitted.empty() && d.evicted.empty()) return;
  credit_->spend(static_cast<int>(d.admitted.size()));
  for (uint16_t e : d.evicted) residency_->evict(layer, e);
  for (uint16_t e : d.admitted) {
    const offload::UploadTicket t = residency_->begin_upload(layer, e);
    // The copy stream waits for the layer's last kernel, which may still read the slot's previous expert.
    pending_.push_back({upload(residency_->slot_offset(layer) + t.slot, layer, e, layer_done_[static_cast<size_t>(layer)]), t});
  }
  mirror_dirty_[static_cast<size_t>(layer)] = 1;
}

void HybridExperts::after_layer(int layer, int64_t n) {
  const auto now = std::chrono::steady_clock::now();
  credit_->elapse(std::chrono::duration<double>(now - last_step_).count());
  last_step_ = now;
  for (int64_t t = 0; t < n; ++t) {
    const int32_t* ids = ids_h_.get() + t * k_;
    stats_->record(layer, std::span<const int>(ids, static_cast<size_t>(k_)));
    for (int i = 0; i < k_; ++i) routed_[static_cast<size_t>(i)] = static_cast<uint16_t>(ids[i]);
    std::copy(routed_.begin(), routed_.end(), trace_ids_.begin() + (t * layers_ + layer) * k_);
    const size_t in_flight = pending_.size();
    const int cap = in_flight >= kMaxUploadsInFlight ? 0 : static_cast<int>(kMaxUploadsInFlight - in_flight);
    admit_and_evict(layer, routed_, credit_->available(cap));
  }
  if (layer == layers_ - 1) {
    for (int64_t t = 0; t < n; ++t) {
      stats_->end_token();
      if (trace_)
        trace_->append_token(std::span<const uint16_t>(trace_ids_.data() + t * layers_ * k_, static_cast<size_t>(layers_ * k_)));
    }
    counters_.tokens += static_cast<uint64_t>(n);
  }
  if (paging_) {  // read ahead the next layer's likely CPU experts
    const int next = (layer + 1) % layers_;
    std::vector<std::pair<double, int>> by_count;
    for (int e = 0; e < experts_; ++e)
      if (residency_->slot_of(next, e) < 0) by_count.push_back({stats_->count(next, e), e});
    const size_t m = std::min(by_count.size(), static_cast<size_t>(kPrefetchExperts));
    std::partial_sort(by_count.begin(), by_count.begin() + static_cast<std::ptrdiff_t>(m), by_count.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; i < m; ++i) {
      const auto p = slice_pieces(slices_[static_cast<size_t>(next * experts_ + by_count[i].second)]);
      offload::ByteRange r[SlotLayout::kPieces];
      for (int q = 0; q < SlotLayout::kPieces; ++q)
        r[q] = {p[static_cast<size_t>(q)], pool_->layout().bytes[static_cast<size_t>(q)]};
      paging_->will_need(r);
    }
  }
}

}  // namespace ossrun::gpu
