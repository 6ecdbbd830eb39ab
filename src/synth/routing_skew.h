// Skewed expert routing for synthetic checkpoints (`--routing-skew S`).
//
// Real MoE routing is skewed, and expert-cache policies need that skew to exploit. The router bias of each layer
// is set so that, for router inputs that look random (logits W t with unit-norm router rows and t a random
// RMS-normalised vector, i.e. independent N(0, 1) logits per expert), the top-k selection frequency of the
// expert at popularity rank r follows a Zipf law, f_r ~ r^-S (S = 0: uniform). Each layer ranks its experts
// by its own seeded permutation.
#pragma once
#include <cstdint>
#include <vector>

namespace ossrun::synth {

// Skews above this are refused: the calibration of steeper laws does not converge for 128 experts (and
// anything past about 3 already sends almost every token to the same k experts).
constexpr double kMaxRoutingSkew = 6.0;

// The largest selection frequency a target may ask for: an expert cannot be chosen more than once per token,
// and a frequency of exactly 1 would need an infinite bias. Frequencies above it are capped and the excess
// is spread over the other ranks in proportion to r^-S.
double max_selection_frequency(int64_t experts, int64_t k);

// Target selection frequency per popularity rank (rank 0 = most popular); they sum to k. Throws
// std::invalid_argument for a skew outside [0, kMaxRoutingSkew] or k outside [1, experts].
std::vector<double> zipf_selection_targets(int64_t experts, int64_t k, double skew);

// P(expert e is among the top k of g_j + bias_j) for independent g_j ~ N(0, 1), by numerical integration.
std::vector<double> topk_selection_probabilities(const std::vector<double>& bias, int64_t k);

// Biases by popularity rank (mean 0) whose top-k selection probabilities match zipf_selection_targets to a
// relative 1e-4. Throws like zipf_selection_targets.
std::vector<double> calibrate_router_bias(int64_t experts, int64_t k, double skew);

// The experts of `layer` in popularity order: result[r] is the expert with rank r (a seeded permutation).
std::vector<int64_t> expert_ranking(uint64_t seed, int64_t layer, int64_t experts);

}  // namespace ossrun::synth
