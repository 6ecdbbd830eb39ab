#include "src/synth/routing_skew.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>

#include "src/synth/normal.h"
#include "src/synth/rng.h"

namespace ossrun::synth {
namespace {

// Phi on [-kRange, kRange] by linear interpolation in a table (error below 1e-6): the integration below
// evaluates it experts^2 * kGridPoints times per iteration.
class FastNormalCdf {
 public:
  FastNormalCdf() : table_(2 * kRange * kPerUnit + 2) {
    for (size_t i = 0; i < table_.size(); ++i) table_[i] = normal_cdf(double(i) / kPerUnit - kRange);
  }
  double operator()(double x) const {
    const double t = (x + kRange) * kPerUnit;
    if (t <= 0) return 0;
    if (t >= double(table_.size() - 2)) return 1;
    const size_t i = static_cast<size_t>(t);
    const double f = t - double(i);
    return table_[i] + f * (table_[i + 1] - table_[i]);
  }

 private:
  static constexpr int kRange = 10;
  static constexpr int kPerUnit = 256;
  std::vector<double> table_;
};

// Integration grid for the selected expert's own N(0, 1) draw.
constexpr double kGridStep = 1.0 / 16;
constexpr double kGridEnd = 7.5;

void check_args(int64_t experts, int64_t k) {
  if (experts < 1 || k < 1 || k > experts)
    throw std::invalid_argument("routing skew: top-k " + std::to_string(k) + " must lie in [1, " + std::to_string(experts) + "]");
}

}  // namespace

double max_selection_frequency(int64_t experts, int64_t k) { return 0.95 + 0.05 * double(k) / double(experts); }

std::vector<double> zipf_selection_targets(int64_t experts, int64_t k, double skew) {
  check_args(experts, k);
  if (!(skew >= 0 && skew <= kMaxRoutingSkew))
    throw std::invalid_argument("routing skew must lie in [0, " + std::to_string(kMaxRoutingSkew) + "], found " +
                                std::to_string(skew));
  const double cap = max_selection_frequency(experts, k);
  std::vector<double> f(experts, 0.0);
  std::vector<bool> capped(experts, false);
  // Water-filling: share what the capped ranks leave among the others in proportion to r^-S until none exceeds the cap.
  for (;;) {
    double mass = double(k), weight = 0;
    for (int64_t r = 0; r < experts; ++r) {
      if (capped[r]) mass -= cap;
      else weight += std::pow(double(r + 1), -skew);
    }
    bool changed = false;
    for (int64_t r = 0; r < experts; ++r) {
      f[r] = capped[r] ? cap : mass * std::pow(double(r + 1), -skew) / weight;
      if (!capped[r] && f[r] > cap) capped[r] = changed = true;
    }
    if (!changed) return f;
  }
}

std::vector<double> topk_selection_probabilities(const std::vector<double>& bias, int64_t k) {
  const int64_t n = static_cast<int64_t>(bias.size());
  check_args(n, k);
  static const FastNormalCdf cdf;
  std::vector<double> p(n, 0.0);
  std::vector<double> count(k);  // P(m other experts beat the selected one so far), m < k
  for (int64_t e = 0; e < n; ++e) {
    double integral = 0;
    for (double x = -kGridEnd; x <= kGridEnd + 1e-9; x += kGridStep) {
      std::fill(count.begin(), count.end(), 0.0);
      count[0] = 1;
      for (int64_t j = 0; j < n; ++j) {
        if (j == e) continue;
        const double beats = cdf(bias[j] - bias[e] - x);  // P(g_j + b_j > x + b_e)
        for (int64_t m = k - 1; m > 0; --m) count[m] = count[m] * (1 - beats) + count[m - 1] * beats;
        count[0] *= 1 - beats;
      }
      const double selected = std::accumulate(count.begin(), count.end(), 0.0);
      integral += selected * std::exp(-x * x / 2);
    }
    p[e] = integral * kGridStep / std::sqrt(2 * std::numbers::pi);
  }
  return p;
}

std::vector<double> calibrate_router_bias(int64_t experts, int64_t k, double skew) {
  const std::vector<double> target = zipf_selection_targets(experts, k, skew);
  std::vector<double> bias(experts, 0.0);
  if (k == experts || skew == 0) return bias;  // every expert equally likely: no bias needed
  // Newton-like steps on the probit scale: selection frequency behaves roughly like Phi(own bias - threshold).
  for (int iter = 0; iter < 500; ++iter) {
    const std::vector<double> p = topk_selection_probabilities(bias, k);
    double worst = 0;
    for (int64_t e = 0; e < experts; ++e) worst = std::max(worst, std::fabs(p[e] - target[e]) / target[e]);
    if (worst < 1e-4) return bias;
    for (int64_t e = 0; e < experts; ++e) {
      const double pe = std::clamp(p[e], 1e-12, 1 - 1e-12);
      bias[e] += 0.8 * (normal_quantile(target[e]) - normal_quantile(pe));
    }
    const double mean = std::accumulate(bias.begin(), bias.end(), 0.0) / double(experts);
    for (double& b : bias) b -= mean;
  }
  throw std::logic_error("calibrate_router_bias did not converge for " + std::to_string(experts) + " experts, top-" +
                         std::to_string(k) + ", skew " + std::to_string(skew));
}

std::vector<int64_t> expert_ranking(uint64_t seed, int64_t layer, int64_t experts) {
  std::vector<int64_t> order(experts);
  std::iota(order.begin(), order.end(), 0);
  const CounterRng rng(seed, "router-ranking#" + std::to_string(layer));
  for (int64_t i = experts - 1; i > 0; --i) std::swap(order[i], order[rng.at(uint64_t(i)) % uint64_t(i + 1)]);
  return order;
}

}  // namespace ossrun::synth
