// The hybrid offload's bookkeeping of GPU expert slots, apart from any device: which (layer, expert) sits in
// which slot, which uploads are in flight, and the PCIe credit that paces admissions. The engine
// (src/gpu/hybrid_experts) drives it and mirrors slot_of_expert() to the device.
//
// A slot is Free, Uploading (reserved for an expert whose bytes are on their way: not served yet) or
// Resident (served). The rules that keep the GPU from reading half-written or recycled memory:
//  - an expert is served (slot_of() >= 0) only after finish_upload() for its ticket, which the engine calls
//    once the upload's event completed;
//  - evict() frees the slot at once in the bookkeeping; the engine orders the next upload into that slot
//    after the last kernel that read it (the copy stream waits on the layer's event), and uploads run in
//    FIFO order on one copy stream, so a cancelled upload's bytes are overwritten, never served;
//  - a ticket carries the slot's generation: finishing a cancelled upload (evicted while in flight) does
//    nothing.
// So the experts that are Uploading or Resident are exactly the policy's residents (ExpertCache).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace ossrun::offload {

struct UploadTicket {
  int layer = 0, expert = 0, slot = 0;
  uint64_t generation = 0;
};

class Residency {
 public:
  // slots_per_layer: (L) slots of each layer (MemoryPlan::layers[l].gpu_slots). Throws std::invalid_argument
  // for experts < 1 or a layer with a negative count or more slots than experts.
  Residency(int experts, std::span<const int> slots_per_layer);

  int layers() const { return static_cast<int>(slots_.size()); }
  int experts() const { return experts_; }
  int slots(int layer) const { return slots_.at(static_cast<size_t>(layer)); }
  int total_slots() const { return total_slots_; }
  // First slot of `layer` in a table of all layers' slots, layer by layer.
  int slot_offset(int layer) const { return offsets_.at(static_cast<size_t>(layer)); }

  // The slot serving `expert` now, or -1 (not resident, or its upload not finished).
  int slot_of(int layer, int expert) const { return slot_of_[index(layer, expert)]; }
  // (E) slot_of() for every expert of the layer: what the device mirror holds.
  std::span<const int32_t> slot_of_expert(int layer) const;
  // True while the expert holds a slot (Uploading or Resident).
  bool holds_slot(int layer, int expert) const { return held_[index(layer, expert)] >= 0; }
  int used(int layer) const;      // slots Uploading or Resident
  int resident(int layer) const;  // slots Resident
  int uploading() const { return uploading_; }

  // Reserves a free slot for the expert. Throws std::logic_error when the expert already holds a slot or the
  // layer has none free (a policy that admits past its slots).
  UploadTicket begin_upload(int layer, int expert);
  // The upload of `t` completed: the expert becomes served. Returns false (and changes nothing) when the
  // ticket was cancelled by an eviction.
  bool finish_upload(const UploadTicket& t);
  // Frees the expert's slot (Uploading or Resident); returns the slot. Throws std::logic_error when the
  // expert holds none.
  int evict(int layer, int expert);

 private:
  size_t index(int layer, int expert) const;
  enum class State : uint8_t { Free, Uploading, Resident };
  struct Slot {
    State state = State::Free;
    int expert = -1;
    uint64_t generation = 0;
  };
  Slot& slot(int layer, int s) { return table_[static_cast<size_t>(offsets_[static_cast<size_t>(layer)] + s)]; }

  int experts_;
  int total_slots_ = 0;
  int uploading_ = 0;
  std::vector<int> slots_;       // (L)
  std::vector<int> offsets_;     // (L)
  std::vector<Slot> table_;      // (total slots)
  std::vector<int32_t> slot_of_; // (L, E) served slot or -1
  std::vector<int32_t> held_;    // (L, E) held slot (Uploading or Resident) or -1
};

// The warm start: per layer, the `slots` experts with the largest share in saved router statistics (ties to
// the lower id); experts with no evidence (share 0) are not placed. share: (L, E). Empty share: none.
std::vector<std::vector<uint16_t>> warm_start_experts(const std::vector<std::vector<double>>& share,
                                                      std::span<const int> slots_per_layer);

// PCIe credit for admissions (expert_cache.h: "at most upload_budget admissions per step, granted from
// measured spare PCIe time"). Every second the engine spends computing, the link could have moved
// bandwidth x seconds bytes; the credit accumulates in slices (capped, so a long idle spell does not turn
// into a burst that delays the next token) and each admission spends one slice.
class UploadCredit {
 public:
  // Throws std::invalid_argument unless bandwidth > 0, slice_bytes > 0 and max_slices >= 1.
  UploadCredit(double bytes_per_second, uint64_t slice_bytes, double max_slices);
  void elapse(double seconds);  // negative or NaN times are ignored
  // Whole slices available now, at most `cap`.
  int available(int cap) const;
  // Throws std::logic_error when spending more than available.
  void spend(int slices);
  double slices() const { return credit_; }

 private:
  double slices_per_second_;
  double max_slices_;
  double credit_ = 0;
};

}  // namespace ossrun::offload
