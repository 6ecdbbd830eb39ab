// The best possible schedule for one layer of a trace under the cache rules (expert_cache.h) with a fixed
// upload budget per step: the most hits, and among those the fewest uploads. This is the clairvoyant
// yardstick when uploads are limited; with unlimited uploads Belady's MIN with bypass is optimal and much
// cheaper (belady.h). Greedy furthest-next-use is not optimal under a budget: an upload is then a scarce
// resource, best spent on the expert that will collect the most hits while resident, not the one needed
// soonest.
//
// Method: a min-cost flow on a DAG. Each unit of flow is a slot, travelling through time (N units):
//   c_t -> a_t -> c_{t+1}           an idle slot (capacity N, cost 0)
//   a_t -> g_t                      the step's uploads (capacity = budget)
//   g_t -> out(x,t)                 upload x, routed at step t and missed (capacity 1, cost +1)
//   out(x,t) -> in(x,u)             hold x until its next use u: a hit (capacity 1, cost -M)
//   in(x,u) -> out(x,u)             keep it after that hit (capacity 1, cost 0)
//   in(x,u) -> a_u                  evict it after the hit; the slot may take an upload at step u
// with M larger than any number of uploads, so hits come first. Every schedule maps to a flow of the same
// hits and uploads and back; successive shortest paths (Dijkstra with potentials, N augmentations at
// most) find the optimum. Time and memory are linear in tokens x k per augmentation.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "offload/trace.h"

namespace ossrun::offload {

class Schedule {
 public:
  int64_t hits = 0, uploads = 0;
  // What to do at step t, after the step's hits: evict, then admit.
  std::span<const uint16_t> evicted(int64_t t) const { return slice(evicted_, evicted_at_, t); }
  std::span<const uint16_t> admitted(int64_t t) const { return slice(admitted_, admitted_at_, t); }

 private:
  friend Schedule optimal_schedule(const Trace&, int, int, int);
  static std::span<const uint16_t> slice(const std::vector<uint16_t>& ids, const std::vector<int64_t>& at, int64_t t) {
    return {ids.data() + at[t], static_cast<size_t>(at[t + 1] - at[t])};
  }
  std::vector<uint16_t> evicted_, admitted_;
  std::vector<int64_t> evicted_at_, admitted_at_;  // (tokens + 1) offsets
};

// Throws std::invalid_argument for a layer outside the trace, slots outside 0..experts, or a budget < 0.
Schedule optimal_schedule(const Trace& trace, int layer, int slots, int uploads_per_step);

}  // namespace ossrun::offload
