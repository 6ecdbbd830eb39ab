// Synthetic routing traces for tests and benchmarks, shaped like real MoE routing: skewed per-layer
// popularity that drifts slowly, with bursts where a few experts run hot for a stretch of tokens (real
// routing follows the topic of the conversation).
//
// Per layer, the expert at popularity rank r (1-based) has base weight r^-skew (Zipf); which expert holds
// which rank is a seeded permutation, different per layer. Each token then:
//  - drift: with probability `drift`, two experts at adjacent ranks swap places (a slow random walk);
//  - bursts: the trace is cut into segments of geometric length (mean `segment_tokens`); at each segment
//    start, `burst_experts` uniformly chosen experts per layer get their weight multiplied by `burst_boost`
//    until the segment ends;
//  - routing: k distinct experts drawn by weight without replacement (as top-k of a noisy router would).
// The same parameters and seed give the same trace on every machine.
//
// The generator also scores the popularity oracle: a cache that, at every token, holds the `oracle_slots`
// experts of highest current weight (free uploads). Tokens are drawn independently given the weights, so
// no online policy can expect more hits; only a clairvoyant one (Belady) can, by knowing the draws. The
// gap between the two is what routing randomness costs, not what a policy leaves on the table.
#pragma once
#include <cstdint>

#include "offload/trace.h"

namespace ossrun::offload {

struct SyntheticTraceParams {
  TraceShape shape{24, 32, 4};
  int64_t tokens = 20000;
  double skew = 1.0;              // Zipf exponent S (0 = uniform)
  uint64_t seed = 1;
  double drift = 0.02;            // per layer per token: probability of one adjacent-rank swap
  double segment_tokens = 256;    // mean burst segment length (>= 1)
  int burst_experts = 2;          // experts boosted per layer and segment (0 = no bursts)
  double burst_boost = 8;         // their weight factor
  int oracle_slots = 0;           // slots per layer of the popularity oracle (0: not scored)
};

struct SyntheticTrace {
  Trace trace;
  double oracle_hit_rate = 0;  // of the popularity oracle with oracle_slots per layer
};

// Throws InputError for out-of-range parameters (negative skew, tokens < 1, probabilities outside [0, 1], ...).
SyntheticTrace generate_synthetic_trace_scored(const SyntheticTraceParams& p);
inline Trace generate_synthetic_trace(const SyntheticTraceParams& p) { return generate_synthetic_trace_scored(p).trace; }

}  // namespace ossrun::offload
