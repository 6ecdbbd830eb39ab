#include "offload/residency.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace ossrun::offload {

Residency::Residency(int experts, std::span<const int> slots_per_layer)
    : experts_(experts), slots_(slots_per_layer.begin(), slots_per_layer.end()) {
  if (experts < 1) throw std::invalid_argument("residency: experts must be >= 1");
  offsets_.reserve(slots_.size());
  for (size_t l = 0; l < slots_.size(); ++l) {
    if (slots_[l] < 0 || slots_[l] > experts)
      throw std::invalid_argument("residency: layer " + std::to_string(l) + " has " + std::to_string(slots_[l]) +
                                  " slots for " + std::to_string(experts) + " experts");
    offsets_.push_back(total_slots_);
    total_slots_ += slots_[l];
  }
  table_.resize(static_cast<size_t>(total_slots_));
  slot_of_.assign(slots_.size() * static_cast<size_t>(experts), -1);
  held_.assign(slot_of_.size(), -1);
}

size_t Residency::index(int layer, int expert) const {
  if (layer < 0 || layer >= layers() || expert < 0 || expert >= experts_)
    throw std::out_of_range("residency: (layer " + std::to_string(layer) + ", expert " + std::to_string(expert) +
                            ") outside (" + std::to_string(layers()) + ", " + std::to_string(experts_) + ")");
  return static_cast<size_t>(layer) * static_cast<size_t>(experts_) + static_cast<size_t>(expert);
}

std::span<const int32_t> Residency::slot_of_expert(int layer) const {
  return {slot_of_.data() + index(layer, 0), static_cast<size_t>(experts_)};
}

int Residency::used(int layer) const {
  const int n = slots(layer);
  int count = 0;
  for (int s = 0; s < n; ++s) count += table_[static_cast<size_t>(offsets_[static_cast<size_t>(layer)] + s)].state != State::Free;
  return count;
}

int Residency::resident(int layer) const {
  const int n = slots(layer);
  int count = 0;
  for (int s = 0; s < n; ++s)
    count += table_[static_cast<size_t>(offsets_[static_cast<size_t>(layer)] + s)].state == State::Resident;
  return count;
}

UploadTicket Residency::begin_upload(int layer, int expert) {
  const size_t i = index(layer, expert);
  if (held_[i] >= 0)
    throw std::logic_error("residency: expert " + std::to_string(expert) + " of layer " + std::to_string(layer) +
                           " already holds a slot");
  for (int s = 0; s < slots(layer); ++s) {
    Slot& sl = slot(layer, s);
    if (sl.state != State::Free) continue;
    sl.state = State::Uploading;
    sl.expert = expert;
    ++sl.generation;
    held_[i] = s;
    ++uploading_;
    return {layer, expert, s, sl.generation};
  }
  throw std::logic_error("residency: layer " + std::to_string(layer) + " has no free slot for expert " +
                         std::to_string(expert));
}

bool Residency::finish_upload(const UploadTicket& t) {
  if (t.slot < 0 || t.slot >= slots(t.layer)) throw std::out_of_range("residency: ticket for a slot outside the layer");
  Slot& sl = slot(t.layer, t.slot);
  if (sl.state != State::Uploading || sl.generation != t.generation || sl.expert != t.expert) return false;
  sl.state = State::Resident;
  slot_of_[index(t.layer, t.expert)] = t.slot;
  --uploading_;
  return true;
}

int Residency::evict(int layer, int expert) {
  const size_t i = index(layer, expert);
  const int s = held_[i];
  if (s < 0)
    throw std::logic_error("residency: evicted expert " + std::to_string(expert) + " of layer " +
                           std::to_string(layer) + " holds no slot");
  Slot& sl = slot(layer, s);
  if (sl.state == State::Uploading) --uploading_;
  sl.state = State::Free;
  sl.expert = -1;
  held_[i] = -1;
  slot_of_[i] = -1;
  return s;
}

std::vector<std::vector<uint16_t>> warm_start_experts(const std::vector<std::vector<double>>& share,
                                                      std::span<const int> slots_per_layer) {
  std::vector<std::vector<uint16_t>> out(slots_per_layer.size());
  if (share.empty()) return out;
  if (share.size() != slots_per_layer.size())
    throw std::invalid_argument("warm start: statistics for " + std::to_string(share.size()) + " layers, plan for " +
                                std::to_string(slots_per_layer.size()));
  for (size_t l = 0; l < share.size(); ++l) {
    const std::vector<double>& s = share[l];
    std::vector<uint16_t> order(s.size());
    std::iota(order.begin(), order.end(), uint16_t{0});
    std::stable_sort(order.begin(), order.end(), [&](uint16_t a, uint16_t b) { return s[a] > s[b]; });
    const size_t n = std::min(order.size(), static_cast<size_t>(std::max(slots_per_layer[l], 0)));
    for (size_t i = 0; i < n && s[order[i]] > 0; ++i) out[l].push_back(order[i]);
  }
  return out;
}

UploadCredit::UploadCredit(double bytes_per_second, uint64_t slice_bytes, double max_slices)
    : max_slices_(max_slices) {
  if (!(bytes_per_second > 0) || slice_bytes == 0 || !(max_slices >= 1) || std::isinf(bytes_per_second))
    throw std::invalid_argument("upload credit: needs a bandwidth > 0, a slice size > 0 and room for one slice");
  slices_per_second_ = bytes_per_second / static_cast<double>(slice_bytes);
}

void UploadCredit::elapse(double seconds) {
  if (!(seconds > 0)) return;
  credit_ = std::min(max_slices_, credit_ + seconds * slices_per_second_);
}

int UploadCredit::available(int cap) const {
  return static_cast<int>(std::min(std::floor(credit_), static_cast<double>(std::max(cap, 0))));
}

void UploadCredit::spend(int slices) {
  if (slices < 0 || slices > available(slices)) throw std::logic_error("upload credit: spent more than available");
  credit_ -= slices;
}

}  // namespace ossrun::offload
