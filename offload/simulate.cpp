#include "offload/simulate.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <memory>
#include <thread>

#include "offload/belady.h"
#include "src/model/error.h"

namespace ossrun::offload {

UploadBudget::UploadBudget(double uploads_per_step) : rate_(uploads_per_step) {
  if (!(uploads_per_step > 0)) throw InputError("the upload budget must be above 0 slices per token (or unlimited)");
  cap_ = std::max(1.0, rate_);
}

int UploadBudget::grant() {
  if (std::isinf(rate_)) return std::numeric_limits<int>::max();
  credit_ = std::min(cap_, credit_ + rate_);
  return static_cast<int>(std::floor(credit_ + 1e-9));
}

CacheCounters SimulationResult::total() const {
  CacheCounters t;
  for (const CacheCounters& c : layers) t += c;
  return t;
}

std::vector<std::vector<double>> trace_frequencies(const Trace& trace) {
  const TraceShape& s = trace.shape();
  std::vector<std::vector<double>> f(s.layers, std::vector<double>(s.experts, 0.0));
  for (int64_t t = 0; t < trace.tokens(); ++t)
    for (int l = 0; l < s.layers; ++l)
      for (uint16_t e : trace.ids(t, l)) f[l][e] += 1;
  if (trace.tokens() > 0)
    for (auto& layer : f)
      for (double& v : layer) v /= static_cast<double>(trace.tokens());
  return f;
}

SimulationResult simulate(const Trace& trace, PolicyKind policy, const SimulationOptions& o) {
  const TraceShape& s = trace.shape();
  if (static_cast<int>(o.slots.size()) != s.layers)
    throw InputError("simulation: " + std::to_string(o.slots.size()) + " slot counts for " + std::to_string(s.layers) + " layers");
  for (int n : o.slots)
    if (n < 0 || n > s.experts)
      throw InputError("simulation: " + std::to_string(n) + " slots in a layer of " + std::to_string(s.experts) + " experts");
  if (!o.prior.empty() && static_cast<int>(o.prior.size()) != s.layers)
    throw InputError("simulation: the prior has " + std::to_string(o.prior.size()) + " layers, the trace " + std::to_string(s.layers));
  for (const auto& p : o.prior)
    if (static_cast<int>(p.size()) != s.experts)
      throw InputError("simulation: the prior has " + std::to_string(p.size()) + " experts per layer, the trace " + std::to_string(s.experts));
  const std::vector<std::vector<double>> prior =
      o.prior.empty() && policy == PolicyKind::Static ? trace_frequencies(trace) : o.prior;

  // The clairvoyant yardstick gets ceil(rate) uploads at every step: the same budget for whole rates; for
  // fractional ones a relaxation of the carried-over credit, so it stays an upper bound.
  const int clairvoyant_budget = std::isinf(o.uploads_per_step) ? std::numeric_limits<int>::max()
                                                                : static_cast<int>(std::ceil(o.uploads_per_step));
  SimulationResult result{policy, std::vector<CacheCounters>(s.layers)};
  auto run_layer = [&](int l) {
    std::unique_ptr<ExpertCache> cache =
        policy == PolicyKind::Belady
            ? make_belady_cache(trace, l, o.slots[l], clairvoyant_budget)
            : make_expert_cache(policy, s.experts, o.slots[l], o.tuning,
                                prior.empty() ? std::span<const double>() : std::span<const double>(prior[l]));
    UploadBudget budget(o.uploads_per_step);
    CacheDecision decision;
    CacheCounters& c = result.layers[l];
    for (int64_t t = 0; t < trace.tokens(); ++t) {
      auto ids = trace.ids(t, l);
      for (uint16_t e : ids) c.hits += cache->resident(e);
      c.requests += static_cast<int64_t>(ids.size());
      cache->step(ids, policy == PolicyKind::Belady ? clairvoyant_budget : budget.grant(), decision);
      budget.spend(static_cast<int>(decision.admitted.size()));
      c.uploads += static_cast<int64_t>(decision.admitted.size());
    }
  };
  // Layers are independent: each worker takes the next layer until none is left.
  [[maybe_unused]] const UploadBudget validated(o.uploads_per_step);  // a bad rate throws before any thread starts
  const int threads = std::max(1, std::min<int>(o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency()), s.layers));
  std::atomic<int> next_layer{0};
  std::vector<std::exception_ptr> errors(threads);
  auto worker = [&](int w) {
    try {
      for (int l = next_layer++; l < s.layers; l = next_layer++) run_layer(l);
    } catch (...) {
      errors[w] = std::current_exception();
      next_layer = s.layers;
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(worker, w);
  worker(0);
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return result;
}

}  // namespace ossrun::offload
