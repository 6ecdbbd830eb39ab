#include "src/gpu/expert_slot_pool.cuh"

#include <string>
#include <vector>

#include "offload/byte_size.h"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

SlotLayout SlotLayout::of(const ExpertSlice& s) {
  if (s.format != ExpertFormat::MXFP4)
    throw InputError("the hybrid offload runs MXFP4 experts on the GPU; this checkpoint's experts are " +
                     std::string(expert_format_name(s.format)));
  SlotLayout l;
  l.bytes = {s.gate_up_blocks.bytes.size(), s.gate_up_scales.bytes.size(), s.gate_up_bias.bytes.size(),
             s.down_blocks.bytes.size(),    s.down_scales.bytes.size(),    s.down_bias.bytes.size()};
  size_t at = 0;
  for (int p = 0; p < kPieces; ++p) {
    l.offset[p] = at;
    at = align_up(at + l.bytes[p]);
  }
  l.stride = at;
  return l;
}

uint64_t SlotLayout::slice_bytes() const {
  uint64_t n = 0;
  for (size_t b : bytes) n += b;
  return n;
}

std::array<const std::byte*, SlotLayout::kPieces> slice_pieces(const ExpertSlice& s) {
  return {s.gate_up_blocks.bytes.data(), s.gate_up_scales.bytes.data(), s.gate_up_bias.bytes.data(),
          s.down_blocks.bytes.data(),    s.down_scales.bytes.data(),    s.down_bias.bytes.data()};
}

uint64_t ExpertSlotPool::bytes_needed(const SlotLayout& layout, int layer_slots, int scratch, int layers,
                                      int experts) {
  const uint64_t slots = static_cast<uint64_t>(layer_slots) + static_cast<uint64_t>(scratch);
  return slots * layout.stride + slots * sizeof(ExpertSlotMxfp4) +
         static_cast<uint64_t>(layers) * static_cast<uint64_t>(experts) * sizeof(int32_t);
}

ExpertSlotPool::ExpertSlotPool(const SlotLayout& layout, int layer_slots, int scratch, int layers, int experts,
                               uint64_t budget)
    : layout_(layout), layer_slots_(layer_slots), scratch_(scratch), experts_(experts) {
  const uint64_t need = bytes_needed(layout, layer_slots, scratch, layers, experts);
  if (need > budget)
    throw InputError("expert slots need " + offload::format_bytes(need) + " of GPU memory (" +
                     std::to_string(layer_slots + scratch) + " slots of " + offload::format_bytes(layout.stride) +
                     "); the budget is " + offload::format_bytes(budget));
  const size_t n = static_cast<size_t>(layer_slots + scratch);
  memory_ = DeviceBuffer<uint8_t>(n * layout.stride);
  std::vector<ExpertSlotMxfp4> table(n);
  for (size_t i = 0; i < n; ++i) {
    uint8_t* base = memory_.get() + i * layout.stride;
    table[i].gate_up_blocks = base + layout.offset[0];
    table[i].gate_up_scales = base + layout.offset[1];
    table[i].gate_up_bias = reinterpret_cast<const uint16_t*>(base + layout.offset[2]);
    table[i].down_blocks = base + layout.offset[3];
    table[i].down_scales = base + layout.offset[4];
    table[i].down_bias = reinterpret_cast<const uint16_t*>(base + layout.offset[5]);
  }
  table_ = DeviceBuffer<ExpertSlotMxfp4>(table);
  mirror_ = DeviceBuffer<int32_t>(std::vector<int32_t>(static_cast<size_t>(layers) * experts, -1));
}

void* ExpertSlotPool::piece(int slot, int p) const {
  return memory_.get() + static_cast<size_t>(slot) * layout_.stride + layout_.offset[static_cast<size_t>(p)];
}

}  // namespace ossrun::gpu
