// The standard normal distribution: CDF, quantile function, and the 65536-entry quantile table the writer
// turns 16 random bits into Gaussian values with (inverse-transform sampling at 16-bit resolution).
#pragma once
#include <array>
#include <cstdint>

namespace ossrun::synth {

// P(Z <= x) for Z ~ N(0, 1).
double normal_cdf(double x);

// The x with normal_cdf(x) == p, for 0 < p < 1 (Acklam's rational approximation refined by one Halley step:
// relative error below 1e-15). Throws std::domain_error outside (0, 1).
double normal_quantile(double p);

constexpr int kQuantileBits = 16;
constexpr int kQuantiles = 1 << kQuantileBits;

// Entry i is normal_quantile((i + 0.5) / 65536): a uniform 16-bit index drawn through this table gives
// N(0, 1) truncated at about +-4.3 sigma, symmetric (entry i == -entry 65535-i) with mean exactly 0.
const std::array<float, kQuantiles>& standard_normal_quantiles();

}  // namespace ossrun::synth
