#include "offload/router_stats.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ossrun::offload {

double DecayedCount::at(int64_t step, double half_life) const {
  if (value == 0 || step == ref || std::isinf(half_life)) return value;
  return value * std::exp2(-static_cast<double>(step - ref) / half_life);
}

void DecayedCount::add(int64_t step, double half_life, double amount) {
  value = at(step, half_life) + amount;
  ref = step;
}

RouterStats::RouterStats(int layers, int experts, double half_life_tokens)
    : layers_(layers), experts_(experts), half_life_(half_life_tokens) {
  if (layers <= 0 || experts <= 0)
    throw std::invalid_argument("router statistics need at least one layer and one expert");
  if (!(half_life_tokens > 0)) throw std::invalid_argument("router statistics half-life must be above 0 tokens");
  counts_.resize(static_cast<size_t>(layers) * experts);
  last_use_.assign(counts_.size(), -1);
  routed_.resize(layers);
}

size_t RouterStats::index(int layer, int expert) const {
  if (layer < 0 || layer >= layers_ || expert < 0 || expert >= experts_)
    throw std::out_of_range("router statistics: (layer " + std::to_string(layer) + ", expert " +
                            std::to_string(expert) + ") is outside " + std::to_string(layers_) + " x " +
                            std::to_string(experts_));
  return static_cast<size_t>(layer) * experts_ + expert;
}

void RouterStats::record(int layer, std::span<const int> experts) {
  for (int e : experts) {
    const size_t i = index(layer, e);
    counts_[i].add(step_, half_life_, 1.0);
    last_use_[i] = step_;
  }
  routed_[layer].add(step_, half_life_, 1.0);
}

double RouterStats::count(int layer, int expert) const { return counts_[index(layer, expert)].at(step_, half_life_); }

double RouterStats::routed_tokens(int layer) const {
  index(layer, 0);
  return routed_[layer].at(step_, half_life_);
}

double RouterStats::share(int layer, int expert) const {
  const double n = routed_tokens(layer);
  return n > 0 ? count(layer, expert) / n : 0.0;
}

void RouterStats::restore(int layer, int expert, double count, int64_t last_use) {
  const size_t i = index(layer, expert);
  counts_[i] = DecayedCount{count, step_};
  last_use_[i] = last_use;
}

void RouterStats::restore_routed_tokens(int layer, double tokens) {
  index(layer, 0);
  routed_[layer] = DecayedCount{tokens, step_};
}

}  // namespace ossrun::offload
