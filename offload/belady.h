// The clairvoyant optimum for one layer of a trace: the yardstick the online policies are measured
// against. It plays by the same rules (expert_cache.h: demand uploads, the same slots, an empty start, the
// same upload budget per step) but knows the whole future:
//  - when a step's budget covers every miss (b >= k, or unlimited), Belady's MIN with bypass: a miss is
//    admitted only if it is routed again, soonest-needed first, replacing the resident needed furthest in
//    the future if that one is needed later than the candidate. Optimal, and cheap.
//  - with b < k uploads per step, furthest-next-use is no longer optimal (an upload is scarce, best spent
//    on the expert that collects the most hits while resident), so the cache replays the exact optimum
//    computed by min-cost flow (optimal_schedule.h): the most hits, and among those the fewest uploads.
// Both are checked against exhaustive search on small cases (tests/test_simulate_belady.cpp).
#pragma once
#include <memory>

#include "offload/expert_cache.h"
#include "offload/trace.h"

namespace ossrun::offload {

// `uploads_per_step`: the budget every step grants (INT_MAX: unlimited). The trace must outlive the cache,
// and step() must be fed that layer's tokens in order, each with at least that budget (std::logic_error
// otherwise).
std::unique_ptr<ExpertCache> make_belady_cache(const Trace& trace, int layer, int slots, int uploads_per_step);

}  // namespace ossrun::offload
