// The online policies: static-by-frequency, LRU, LFU with decay, and the default router-statistics policy.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "offload/expert_cache.h"

namespace ossrun::offload {
namespace {

// Per-expert counts that halve every `half_life` steps, kept inflated by 2^((t - origin)/h) so that an
// update is one add and comparing two experts at the same step needs no exponentials; the origin moves
// before the inflation can overflow.
class DecayedScores {
 public:
  DecayedScores(int experts, double half_life) : raw_(experts, 0.0), half_life_(half_life) {}

  // Seeds each expert with the steady-state count of a token stream that routes to it with probability
  // prior[e]: the sum over past tokens of prior * 2^(-age/h).
  void seed(std::span<const double> prior) {
    const double steady = 1.0 / (1.0 - std::exp2(-1.0 / half_life_));
    for (size_t e = 0; e < raw_.size() && e < prior.size(); ++e) raw_[e] = prior[e] * steady;
  }
  void add(int64_t step, uint16_t expert) {
    double exponent = static_cast<double>(step - origin_) / half_life_;
    if (exponent > 512) {
      const double scale = std::exp2(-exponent);
      for (double& v : raw_) v *= scale;
      origin_ = step;
      exponent = 0;
    }
    raw_[expert] += std::exp2(exponent);
  }
  // Comparable across experts at any one step (not across steps).
  double relative(uint16_t expert) const { return raw_[expert]; }

 private:
  std::vector<double> raw_;
  double half_life_;
  int64_t origin_ = 0;
};

// The resident with the smallest key (ties: the lowest id, for reproducibility), leaving out experts
// admitted in this step (evicting one would waste its upload). -1 when there is none.
template <class Key>
int weakest(const std::vector<uint16_t>& residents, const CacheDecision& step_so_far, Key key) {
  int best = -1;
  for (uint16_t e : residents) {
    if (std::find(step_so_far.admitted.begin(), step_so_far.admitted.end(), e) != step_so_far.admitted.end()) continue;
    if (best < 0 || key(e) < key(best) || (key(e) == key(best) && e < best)) best = e;
  }
  return best;
}

// Static by frequency: the `slots` experts with the highest prior are the only ones ever admitted (each on
// its first miss), and never evicted. What a runner with a fixed placement from profiling achieves.
class StaticCache final : public ExpertCache {
 public:
  StaticCache(int experts, int slots, std::span<const double> prior) : ExpertCache(experts, slots), allowed_(experts, 0) {
    if (static_cast<int>(prior.size()) != experts)
      throw std::invalid_argument("static policy: needs a prior (router statistics) for each of the " +
                                  std::to_string(experts) + " experts");
    std::vector<int> order(experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prior[a] > prior[b]; });
    for (int i = 0; i < slots; ++i) allowed_[order[i]] = 1;
  }
  PolicyKind kind() const override { return PolicyKind::Static; }

 private:
  void on_step(std::span<const uint16_t>, int budget, CacheDecision& out) override {
    for (uint16_t e : misses())
      if (allowed_[e] && budget-- > 0) admit(e, out);
  }
  std::vector<uint8_t> allowed_;
};

// Least recently used: every miss is admitted (budget permitting), evicting the resident used longest ago.
class LruCache final : public ExpertCache {
 public:
  LruCache(int experts, int slots) : ExpertCache(experts, slots), last_use_(experts, -1) {}
  PolicyKind kind() const override { return PolicyKind::Lru; }

 private:
  void on_step(std::span<const uint16_t> routed, int budget, CacheDecision& out) override {
    for (uint16_t e : routed) last_use_[e] = now();
    for (uint16_t e : misses()) {
      if (budget-- <= 0) break;
      if (!has_free_slot()) {
        const int victim = weakest(residents(), out, [&](uint16_t r) { return last_use_[r]; });
        if (victim < 0) break;
        evict(static_cast<uint16_t>(victim), out);
      }
      admit(e, out);
    }
  }
  std::vector<int64_t> last_use_;
};

// Decayed-frequency scoring shared by LFU and the router policy: misses are taken in order of score.
class FrequencyCache : public ExpertCache {
 public:
  FrequencyCache(int experts, int slots, double half_life, std::span<const double> prior)
      : ExpertCache(experts, slots), scores_(experts, half_life) {
    if (!(half_life > 0) || std::isinf(half_life)) throw std::invalid_argument("frequency policy: half-life must be finite and > 0");
    scores_.seed(prior);
  }

 protected:
  // True when `candidate` may replace `victim` (the weakest resident).
  virtual bool replaces(double candidate, double victim) const = 0;

 private:
  void on_step(std::span<const uint16_t> routed, int budget, CacheDecision& out) override {
    for (uint16_t e : routed) scores_.add(now(), e);
    candidates_ = misses();
    std::stable_sort(candidates_.begin(), candidates_.end(),
                     [&](uint16_t a, uint16_t b) { return scores_.relative(a) > scores_.relative(b); });
    for (uint16_t e : candidates_) {
      if (budget <= 0) break;
      if (!has_free_slot()) {
        const int victim = weakest(residents(), out, [&](uint16_t r) { return scores_.relative(r); });
        if (victim < 0 || !replaces(scores_.relative(e), scores_.relative(static_cast<uint16_t>(victim))))
          break;  // the candidates that follow score lower still
        evict(static_cast<uint16_t>(victim), out);
      }
      admit(e, out);
      --budget;
    }
  }
  DecayedScores scores_;
  std::vector<uint16_t> candidates_;
};

// LFU with decay: a miss always replaces the least frequently used resident.
class LfuCache final : public FrequencyCache {
 public:
  using FrequencyCache::FrequencyCache;
  PolicyKind kind() const override { return PolicyKind::Lfu; }

 private:
  bool replaces(double, double) const override { return true; }
};

// The default: decayed router frequency with hysteresis. A miss replaces the weakest resident only when
// its score beats the weakest's by the margin; uploads come out of the budget the engine grants from spare
// PCIe time, the highest-scoring misses first.
class RouterCache final : public FrequencyCache {
 public:
  RouterCache(int experts, int slots, const PolicyTuning& t, std::span<const double> prior)
      : FrequencyCache(experts, slots, t.router_half_life, prior), margin_(t.router_margin) {
    if (!(margin_ >= 0) || std::isinf(margin_)) throw std::invalid_argument("router policy: margin must be finite and >= 0");
  }
  PolicyKind kind() const override { return PolicyKind::Router; }

 private:
  bool replaces(double candidate, double victim) const override { return candidate > victim * (1 + margin_); }
  double margin_;
};

}  // namespace

std::unique_ptr<ExpertCache> make_expert_cache(PolicyKind kind, int experts, int slots, const PolicyTuning& tuning,
                                               std::span<const double> prior) {
  if (!prior.empty() && static_cast<int>(prior.size()) != experts)
    throw std::invalid_argument("policy prior has " + std::to_string(prior.size()) + " entries for " + std::to_string(experts) + " experts");
  switch (kind) {
    case PolicyKind::Static: return std::make_unique<StaticCache>(experts, slots, prior);
    case PolicyKind::Lru: return std::make_unique<LruCache>(experts, slots);
    case PolicyKind::Lfu: return std::make_unique<LfuCache>(experts, slots, tuning.lfu_half_life, prior);
    case PolicyKind::Router: return std::make_unique<RouterCache>(experts, slots, tuning, prior);
    case PolicyKind::Belady: break;
  }
  throw std::invalid_argument("Belady's policy needs the future of the trace: use make_belady_cache (belady.h)");
}

}  // namespace ossrun::offload
