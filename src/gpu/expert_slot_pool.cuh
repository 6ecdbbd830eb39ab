// Device memory for expert slots: every slot of every layer plus the prefill scratch slots, allocated once
// (one cudaMalloc) when the pool is made, each slot laid out like the checkpoint's MXFP4 ExpertSlice (six
// regions, 256-byte aligned), with the device slot table the MoE kernels read (ExpertSlotMxfp4 per slot)
// and the device mirror of the residency map (slot_of_expert, -1 = not resident).
//
// The slot table never changes after construction: slot i always points at the same memory. What changes is
// which expert's bytes sit there (offload/residency.h) and the mirror.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "src/model/weights.h"

namespace ossrun::gpu {

// Where each of a slice's six tensors goes inside a slot, and how many bytes it has.
struct SlotLayout {
  static constexpr int kPieces = 6;  // gate_up blocks, scales, bias; down blocks, scales, bias
  std::array<size_t, kPieces> offset{};
  std::array<size_t, kPieces> bytes{};
  size_t stride = 0;  // bytes per slot (a multiple of 256)

  // From one MXFP4 slice of the model (all slices have the same sizes). Throws InputError for BF16 experts.
  static SlotLayout of(const ExpertSlice& s);
  uint64_t slice_bytes() const;  // the six pieces' bytes, without padding
};

// The six source byte ranges of a slice, in SlotLayout's order.
std::array<const std::byte*, SlotLayout::kPieces> slice_pieces(const ExpertSlice& s);

class ExpertSlotPool {
 public:
  // total_slots: all layers' slots, then `scratch` more. layers x experts: the size of the mirror.
  // Throws InputError when bytes_needed() exceeds budget (checked before anything is allocated).
  ExpertSlotPool(const SlotLayout& layout, int layer_slots, int scratch, int layers, int experts, uint64_t budget);

  static uint64_t bytes_needed(const SlotLayout& layout, int layer_slots, int scratch, int layers, int experts);
  uint64_t device_bytes() const { return memory_.bytes() + table_.bytes() + mirror_.bytes(); }

  const SlotLayout& layout() const { return layout_; }
  int layer_slots() const { return layer_slots_; }
  int scratch() const { return scratch_; }
  // The table from the first slot of a layer (offset from Residency::slot_offset) or the scratch slots.
  const ExpertSlotMxfp4* table(int first_slot) const { return table_.get() + first_slot; }
  const ExpertSlotMxfp4* scratch_table() const { return table_.get() + layer_slots_; }
  int scratch_index(int s) const { return layer_slots_ + s; }
  // Device address of piece p of slot i (i in the whole table: layers' slots, then scratch).
  void* piece(int slot, int p) const;
  // Device (experts) int32: slot_of_expert of `layer` (local slot within the layer, -1: not resident).
  int32_t* mirror(int layer) const { return mirror_.get() + static_cast<size_t>(layer) * experts_; }

 private:
  SlotLayout layout_;
  int layer_slots_, scratch_, experts_;
  DeviceBuffer<uint8_t> memory_;          // (layer_slots + scratch, stride)
  DeviceBuffer<ExpertSlotMxfp4> table_;   // (layer_slots + scratch)
  DeviceBuffer<int32_t> mirror_;          // (layers, experts)
};

}  // namespace ossrun::gpu
