// Which expert slices of one layer are resident on the GPU: a fixed number of slots, and a policy that
// decides, token by token, which routed experts to upload and which residents to evict.
//
// The rules every policy (and the clairvoyant optimum, belady.h) plays by, so hit rates compare fairly:
//  - a step is one token in one layer: the router's k distinct expert ids;
//  - hits are the routed experts resident *before* the step (the engine dispatches before uploading);
//  - uploads are on demand: only experts routed in this step and not resident may be admitted (their
//    slices are what the engine would upload next, in spare PCIe time);
//  - at most `upload_budget` admissions per step (the caller grants it from measured spare PCIe time);
//  - residents never exceed the slots; every cache starts empty (the engine may preload() a warm start).
// The engine asks resident() to dispatch, then calls step() and applies the decision on its copy stream.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace ossrun::offload {

struct CacheDecision {
  std::vector<uint16_t> admitted;  // upload these (each takes a slot freed by `evicted` or a free one)
  std::vector<uint16_t> evicted;   // drop these first
};

enum class PolicyKind : uint8_t { Static, Lru, Lfu, Router, Belady };
const char* policy_name(PolicyKind kind);  // "static", "lru", "lfu", "router", "belady"
// Throws InputError naming the known policies.
PolicyKind parse_policy(std::string_view name);

// Knobs of the online policies (counts decay in tokens of this layer).
// Knobs of the online policies (counts decay in tokens of this layer). The right half-life grows with how
// rarely an expert is routed: averaging over a fixed number of uses per expert, not of tokens, balances
// noise against following shifts in routing. tuning_for() sets it to 8 uses of an average expert
// (8 x experts / k tokens: 64 for gpt-oss-20b, 256 for 120b), the best on synthetic traces of both shapes
// (offload/README.md); to be re-checked on recorded gpt-oss traces.
struct PolicyTuning {
  double lfu_half_life = 64;  // LFU scores like the router policy: it is the router without hysteresis
  double router_half_life = 64;
  // Hysteresis: a candidate replaces the weakest resident only if its score exceeds the weakest's by this
  // fraction, so two experts of nearly equal popularity do not take turns in one slot.
  double router_margin = 0.25;
};
PolicyTuning tuning_for(int experts, int k);

class ExpertCache {
 public:
  ExpertCache(int experts, int slots);  // throws std::invalid_argument unless 0 <= slots <= experts
  virtual ~ExpertCache() = default;
  ExpertCache(const ExpertCache&) = delete;
  ExpertCache& operator=(const ExpertCache&) = delete;

  virtual PolicyKind kind() const = 0;
  int experts() const { return static_cast<int>(resident_.size()); }
  int slots() const { return slots_; }
  int used() const { return static_cast<int>(residents_.size()); }
  bool resident(int expert) const { return resident_.at(static_cast<size_t>(expert)) != 0; }
  const std::vector<uint16_t>& residents() const { return residents_; }

  // Makes `experts` resident before the first step, without a step: the engine's warm start (the slots filled
  // from saved router statistics at start-up). Throws std::invalid_argument for an id out of range, a repeat,
  // an expert already resident or more experts than free slots.
  void preload(std::span<const uint16_t> experts);

  // One step (see the rules above); `out` is cleared, then receives what the policy did.
  // Throws std::out_of_range for an id >= experts and std::invalid_argument for a repeated id or a
  // negative budget.
  void step(std::span<const uint16_t> routed, int upload_budget, CacheDecision& out);

 protected:
  // Steps completed before the current one (the current step's index while on_step runs).
  int64_t now() const { return step_; }
  // The policy: update its state with `routed`, then admit()/evict(). `budget` admissions at most.
  virtual void on_step(std::span<const uint16_t> routed, int budget, CacheDecision& out) = 0;
  // Throws std::logic_error (a policy bug) when the expert is not a routed miss of this step, no slot is
  // free, or the budget is spent.
  void admit(uint16_t expert, CacheDecision& out);
  // Throws std::logic_error when the expert is not resident.
  void evict(uint16_t expert, CacheDecision& out);
  bool has_free_slot() const { return used() < slots_; }
  // Routed experts that were not resident at the start of this step, in router order.
  const std::vector<uint16_t>& misses() const { return misses_; }

 private:
  int slots_;
  int64_t step_ = 0;
  std::vector<uint8_t> resident_;    // (E) 1 when in a slot
  std::vector<uint16_t> residents_;  // the resident ids, unordered
  std::vector<uint16_t> misses_;
  enum : uint8_t { kNotRouted = 0, kRoutedHit = 1, kRoutedMiss = 2 };
  std::vector<uint8_t> routed_now_;  // (E) how each expert was routed in the current step
  int admitted_now_ = 0, budget_now_ = 0;
};

// An online policy for one layer. `prior`: per expert, the probability that a token routes to it, from
// saved router statistics (RouterStats::share); empty when there are none. `static` needs it (it ranks by
// it); lfu and router start their scores from it; lru ignores it. Belady needs the future: see belady.h.
// Throws std::invalid_argument for a bad size or tuning, and for static without a prior.
std::unique_ptr<ExpertCache> make_expert_cache(PolicyKind kind, int experts, int slots, const PolicyTuning& tuning,
                                               std::span<const double> prior);

}  // namespace ossrun::offload
