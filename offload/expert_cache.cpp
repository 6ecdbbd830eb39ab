#include "offload/expert_cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "src/model/error.h"

namespace ossrun::offload {

const char* policy_name(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::Static: return "static";
    case PolicyKind::Lru: return "lru";
    case PolicyKind::Lfu: return "lfu";
    case PolicyKind::Router: return "router";
    case PolicyKind::Belady: return "belady";
  }
  return "?";
}

PolicyKind parse_policy(std::string_view name) {
  for (PolicyKind k : {PolicyKind::Static, PolicyKind::Lru, PolicyKind::Lfu, PolicyKind::Router, PolicyKind::Belady})
    if (name == policy_name(k)) return k;
  throw InputError("unknown policy \"" + std::string(name) + "\"; known: static, lru, lfu, router, belady");
}

PolicyTuning tuning_for(int experts, int k) {
  PolicyTuning t;
  t.router_half_life = t.lfu_half_life = 8.0 * experts / std::max(k, 1);
  return t;
}

ExpertCache::ExpertCache(int experts, int slots) : slots_(slots) {
  if (experts < 1 || experts > 65536) throw std::invalid_argument("expert cache: experts must be 1..65536");
  if (slots < 0 || slots > experts)
    throw std::invalid_argument("expert cache: slots must be 0.." + std::to_string(experts) + ", found " + std::to_string(slots));
  resident_.assign(experts, 0);
  routed_now_.assign(experts, 0);
  residents_.reserve(slots);
}

void ExpertCache::preload(std::span<const uint16_t> experts) {
  for (uint16_t e : experts) {
    if (e >= resident_.size())
      throw std::invalid_argument("expert cache: preloaded expert " + std::to_string(e) + " of " +
                                  std::to_string(resident_.size()));
    if (resident_[e]) throw std::invalid_argument("expert cache: preloaded expert " + std::to_string(e) + " twice");
    if (!has_free_slot()) throw std::invalid_argument("expert cache: more preloaded experts than slots");
    resident_[e] = 1;
    residents_.push_back(e);
  }
}

void ExpertCache::step(std::span<const uint16_t> routed, int upload_budget, CacheDecision& out) {
  out.admitted.clear();
  out.evicted.clear();
  if (upload_budget < 0) throw std::invalid_argument("expert cache: negative upload budget");
  for (uint16_t e : routed) {
    if (e >= resident_.size())
      throw std::out_of_range("expert cache: expert " + std::to_string(e) + " of " + std::to_string(resident_.size()));
  }
  misses_.clear();
  size_t marked = 0;
  for (uint16_t e : routed) {
    if (routed_now_[e]) {
      for (size_t i = 0; i < marked; ++i) routed_now_[routed[i]] = 0;
      throw std::invalid_argument("expert cache: expert " + std::to_string(e) + " routed twice in one step");
    }
    routed_now_[e] = resident_[e] ? kRoutedHit : kRoutedMiss;
    ++marked;
    if (!resident_[e]) misses_.push_back(e);
  }
  admitted_now_ = 0;
  budget_now_ = upload_budget;
  on_step(routed, upload_budget, out);
  for (uint16_t e : routed) routed_now_[e] = 0;
  ++step_;
}

void ExpertCache::admit(uint16_t expert, CacheDecision& out) {
  if (expert >= resident_.size() || routed_now_[expert] != kRoutedMiss || resident_[expert])
    throw std::logic_error("expert cache: admitted expert " + std::to_string(expert) + " is not a routed miss of this step");
  if (!has_free_slot()) throw std::logic_error("expert cache: admitted with no free slot");
  if (admitted_now_ >= budget_now_) throw std::logic_error("expert cache: admitted beyond the upload budget");
  ++admitted_now_;
  resident_[expert] = 1;
  residents_.push_back(expert);
  out.admitted.push_back(expert);
}

void ExpertCache::evict(uint16_t expert, CacheDecision& out) {
  auto it = std::find(residents_.begin(), residents_.end(), expert);
  if (it == residents_.end()) throw std::logic_error("expert cache: evicted expert " + std::to_string(expert) + " is not resident");
  *it = residents_.back();
  residents_.pop_back();
  resident_[expert] = 0;
  out.evicted.push_back(expert);
}

}  // namespace ossrun::offload
