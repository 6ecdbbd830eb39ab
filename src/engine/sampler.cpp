#include "src/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "src/model/error.h"

namespace ossrun::engine {

void validate(const SamplerOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw InputError("temperature must be a finite number >= 0, found " + std::to_string(o.temperature));
  if (!(o.top_p > 0 && o.top_p <= 1)) throw InputError("top-p must be in (0, 1], found " + std::to_string(o.top_p));
  if (o.top_k < 0) throw InputError("top-k must be >= 0 (0 turns it off), found " + std::to_string(o.top_k));
  if (!(o.min_p >= 0 && o.min_p <= 1)) throw InputError("min-p must be in [0, 1], found " + std::to_string(o.min_p));
}

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  return best;
}

Sampler::Sampler(int64_t vocab_size, const SamplerOptions& opt)
    : opt_(opt), rng_(opt.seed), candidates_(static_cast<size_t>(vocab_size)), prob_(static_cast<size_t>(vocab_size)) {
  validate(opt);
}

void Sampler::sort_prefix(size_t m, size_t n) {
  auto more_likely = [&](int32_t a, int32_t b) { return prob_[a] > prob_[b] || (prob_[a] == prob_[b] && a < b); };
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(std::min(m, n)),
                    candidates_.begin() + static_cast<ptrdiff_t>(n), more_likely);
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.size() != prob_.size())
    throw std::logic_error("sampler built for " + std::to_string(prob_.size()) + " logits, given " + std::to_string(logits.size()));
  const int32_t top = argmax(logits);
  if (!std::isfinite(logits[top])) throw std::runtime_error("the logits hold no finite maximum (NaN or all -inf)");
  if (opt_.temperature == 0) return top;

  // Temperature: p_i proportional to exp((l_i - max) / T).
  const float max = logits[top];
  for (size_t i = 0; i < logits.size(); ++i) prob_[i] = std::exp((logits[i] - max) / opt_.temperature);
  std::iota(candidates_.begin(), candidates_.end(), 0);
  size_t n = candidates_.size();

  // Top-k: the k most likely, in order.
  bool sorted = false;
  if (opt_.top_k > 0 && static_cast<size_t>(opt_.top_k) < n) {
    sort_prefix(static_cast<size_t>(opt_.top_k), n);
    n = static_cast<size_t>(opt_.top_k);
    sorted = true;
  }
  // Top-p: the smallest most-likely prefix whose mass reaches top_p of what is left. Sorting grows in
  // steps, since the prefix is usually short and the vocabulary long.
  if (opt_.top_p < 1) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += prob_[candidates_[i]];
    const double target = opt_.top_p * total;
    double mass = 0;
    size_t kept = 0, sorted_up_to = sorted ? n : 0;
    for (size_t step = 256; kept < n; step *= 16) {
      if (sorted_up_to < n) {
        sort_prefix(std::min(step, n), n);
        sorted_up_to = std::min(step, n);
      }
      while (kept < sorted_up_to && mass < target) mass += prob_[candidates_[kept++]];
      if (mass >= target) break;
    }
    n = std::max<size_t>(kept, 1);
  }
  // Min-p: drop what is less likely than min_p times the most likely (which always stays).
  if (opt_.min_p > 0) {
    const float floor = opt_.min_p * prob_[top];  // prob_[top] == 1
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i)
      if (prob_[candidates_[i]] >= floor) candidates_[kept++] = candidates_[i];
    n = kept;
  }

  double total = 0;
  for (size_t i = 0; i < n; ++i) total += prob_[candidates_[i]];
  const double r = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;  // uniform in [0, total)
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += prob_[candidates_[i]];
    if (r < acc) return candidates_[i];
  }
  return candidates_[n - 1];  // r within rounding of total
}

}  // namespace ossrun::engine
