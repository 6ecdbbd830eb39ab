#include "offload/belady.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "offload/optimal_schedule.h"

namespace ossrun::offload {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

class BeladyCache final : public ExpertCache {
 public:
  BeladyCache(const Trace& trace, int layer, int slots)
      : ExpertCache(trace.shape().experts, slots), trace_(trace), layer_(layer), next_use_(trace.shape().experts, kNever) {
    if (layer < 0 || layer >= trace.shape().layers) throw std::invalid_argument("belady: layer " + std::to_string(layer) + " is outside the trace");
    // next_[t * k + i]: the step at which ids(t, layer)[i] is routed again.
    const int k = trace.shape().k;
    next_.assign(static_cast<size_t>(trace.tokens()) * k, kNever);
    std::vector<int64_t> seen(trace.shape().experts, kNever);
    for (int64_t t = trace.tokens() - 1; t >= 0; --t) {
      auto ids = trace.ids(t, layer);
      for (int i = 0; i < k; ++i) {
        next_[static_cast<size_t>(t) * k + i] = seen[ids[i]];
        seen[ids[i]] = t;
      }
    }
  }
  PolicyKind kind() const override { return PolicyKind::Belady; }

 private:
  void on_step(std::span<const uint16_t> routed, int budget, CacheDecision& out) override {
    const int64_t t = now();
    const int k = trace_.shape().k;
    if (t >= trace_.tokens() || !std::equal(routed.begin(), routed.end(), trace_.ids(t, layer_).begin(), trace_.ids(t, layer_).end()))
      throw std::logic_error("belady: step " + std::to_string(t) + " is not the trace's token for layer " + std::to_string(layer_));
    for (int i = 0; i < k; ++i) next_use_[routed[i]] = next_[static_cast<size_t>(t) * k + i];

    candidates_.clear();
    for (uint16_t e : misses())
      if (next_use_[e] != kNever) candidates_.push_back(e);
    std::sort(candidates_.begin(), candidates_.end(), [&](uint16_t a, uint16_t b) { return next_use_[a] < next_use_[b]; });
    for (uint16_t e : candidates_) {
      if (budget <= 0) break;
      if (!has_free_slot()) {
        int victim = -1;
        for (uint16_t r : residents()) {
          if (std::find(out.admitted.begin(), out.admitted.end(), r) != out.admitted.end()) continue;
          if (victim < 0 || next_use_[r] > next_use_[victim]) victim = r;
        }
        if (victim < 0 || next_use_[victim] <= next_use_[e]) break;  // later candidates are needed later still
        evict(static_cast<uint16_t>(victim), out);
      }
      admit(e, out);
      --budget;
    }
  }

  const Trace& trace_;
  int layer_;
  std::vector<int64_t> next_;      // (tokens, k)
  std::vector<int64_t> next_use_;  // (E) next step each expert is routed, as known at the current step
  std::vector<uint16_t> candidates_;
};

// Replays a precomputed optimal schedule; the base class checks it against the rules as it goes.
class ScheduledCache final : public ExpertCache {
 public:
  ScheduledCache(const Trace& trace, int layer, int slots, int uploads_per_step)
      : ExpertCache(trace.shape().experts, slots), schedule_(optimal_schedule(trace, layer, slots, uploads_per_step)),
        tokens_(trace.tokens()) {}
  PolicyKind kind() const override { return PolicyKind::Belady; }

 private:
  void on_step(std::span<const uint16_t>, int, CacheDecision& out) override {
    if (now() >= tokens_) throw std::logic_error("belady: more steps than the trace has tokens");
    for (uint16_t e : schedule_.evicted(now())) evict(e, out);
    for (uint16_t e : schedule_.admitted(now())) admit(e, out);
  }
  Schedule schedule_;
  int64_t tokens_;
};

}  // namespace

std::unique_ptr<ExpertCache> make_belady_cache(const Trace& trace, int layer, int slots, int uploads_per_step) {
  if (uploads_per_step >= trace.shape().k) return std::make_unique<BeladyCache>(trace, layer, slots);
  return std::make_unique<ScheduledCache>(trace, layer, slots, uploads_per_step);
}

}  // namespace ossrun::offload
