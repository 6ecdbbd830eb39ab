// Replays a routing trace through the expert caches of every layer and counts hits and uploads: the
// offline bench for the policies (`ossrun simulate`), and the same loop the engine runs online.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "offload/expert_cache.h"
#include "offload/trace.h"

namespace ossrun::offload {

// Uploads the engine grants per layer per token, from spare PCIe time. A fractional rate accumulates
// credit (capped at max(1, rate): PCIe time not used is gone); infinity means no limit.
class UploadBudget {
 public:
  explicit UploadBudget(double uploads_per_step);  // throws InputError unless rate > 0 (or infinity)
  // The whole uploads available this step.
  int grant();
  void spend(int uploads) {
    if (uploads > 0 && rate_ < std::numeric_limits<double>::infinity()) credit_ -= uploads;
  }

 private:
  double rate_, cap_, credit_ = 0;
};

struct SimulationOptions {
  std::vector<int> slots;  // per layer
  // Per layer per token. Belady (the clairvoyant yardstick) gets ceil(rate) at every step: the same budget
  // for whole rates; for fractional ones a relaxation of the carried credit, so it stays an upper bound.
  double uploads_per_step = std::numeric_limits<double>::infinity();
  PolicyTuning tuning;
  // Per layer, per expert: probability of routing (RouterStats::share), for static (its ranking) and as the
  // starting scores of lfu/router. Empty: static ranks by the whole trace's frequencies (the best fixed
  // placement there is), the others start from nothing.
  std::vector<std::vector<double>> prior;
  int threads = 0;  // layers replayed in parallel; 0: one per hardware thread
};

struct CacheCounters {
  int64_t hits = 0;
  int64_t requests = 0;  // routed experts (tokens x k)
  int64_t uploads = 0;

  double hit_rate() const { return requests ? static_cast<double>(hits) / requests : 0.0; }
  CacheCounters& operator+=(const CacheCounters& o) {
    hits += o.hits, requests += o.requests, uploads += o.uploads;
    return *this;
  }
};

struct SimulationResult {
  PolicyKind policy;
  std::vector<CacheCounters> layers;
  CacheCounters total() const;
};

// Throws InputError when the options do not fit the trace (slots per layer, a slot count above the
// experts, a prior of the wrong shape).
SimulationResult simulate(const Trace& trace, PolicyKind policy, const SimulationOptions& options);

// Per layer, per expert: the fraction of the trace's tokens that routed to the expert.
std::vector<std::vector<double>> trace_frequencies(const Trace& trace);

}  // namespace ossrun::offload
