// Router statistics: how often each (layer, expert) was routed, with exponential decay so that recent
// tokens count more, and when it was last used. The planner sizes per-layer GPU slots from them; the
// cache policies keep their own instances (with their own half-life) to score experts.
//
// Decay is in tokens: a use `half_life` tokens ago counts 1/2, two half-lives ago 1/4. Values decay lazily
// (each entry remembers the step its value refers to), so a token costs O(k) per layer, not O(experts).
// The statistics are saved next to the model (router_stats_io.h) and loaded at start.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace ossrun::offload {

// A value that decays by half every `half_life` steps, kept as (value at step `ref`).
struct DecayedCount {
  double value = 0;
  int64_t ref = 0;

  double at(int64_t step, double half_life) const;
  void add(int64_t step, double half_life, double amount);
};

// The half-life of the statistics saved next to the model: 65536 tokens, a few long conversations, so the
// plan follows the user's workload without forgetting it between sessions.
constexpr double kSavedStatsHalfLifeTokens = 65536;

class RouterStats {
 public:
  static constexpr double kNoDecay = std::numeric_limits<double>::infinity();

  // Throws std::invalid_argument for non-positive sizes or a half-life that is not > 0 (infinity = plain counts).
  RouterStats(int layers, int experts, double half_life_tokens);

  int layers() const { return layers_; }
  int experts() const { return experts_; }
  double half_life() const { return half_life_; }
  // The current step: tokens completed with end_token().
  int64_t tokens() const { return step_; }

  // One token's routing in `layer` at the current step: its k distinct expert ids. Throws std::out_of_range
  // for a bad layer or expert id.
  void record(int layer, std::span<const int> experts);
  // Moves to the next token.
  void end_token() { ++step_; }

  // Decayed number of times `expert` was routed in `layer`, as of the current step.
  double count(int layer, int expert) const;
  // Decayed number of tokens routed through `layer` (the denominator of share()).
  double routed_tokens(int layer) const;
  // Estimated probability that a token routes to `expert` in `layer` (count / routed tokens; sums to k over
  // the experts of a layer). 0 when the layer has seen no token.
  double share(int layer, int expert) const;
  // Step of the last token that used the expert, -1 if never.
  int64_t last_use(int layer, int expert) const { return last_use_[index(layer, expert)]; }

  // For loading saved statistics: restore_step first, then each entry's values as of that step.
  void restore(int layer, int expert, double count, int64_t last_use);
  void restore_routed_tokens(int layer, double tokens);
  void restore_step(int64_t step) { step_ = step; }

 private:
  size_t index(int layer, int expert) const;

  int layers_, experts_;
  double half_life_;
  int64_t step_ = 0;
  std::vector<DecayedCount> counts_;  // (layers, experts)
  std::vector<int64_t> last_use_;     // (layers, experts)
  std::vector<DecayedCount> routed_;  // (layers)
};

}  // namespace ossrun::offload
