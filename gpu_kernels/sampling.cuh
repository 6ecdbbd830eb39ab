// DeviceSampler: picks the next token from a row of logits on the GPU, with the filters and order of
// src/engine/sampler.h: temperature, then top-k, then top-p, then min-p, each later filter seeing the
// distribution renormalized over what the earlier ones kept; temperature 0 is greedy (argmax, ties to the
// lowest id). Ties between equal probabilities go to the lower token id, as on the CPU.
//
// The random number is a counter-based hash of (seed, *step_counter): the same seed and counter give the same
// token, and the kernel increments *step_counter after use, so a CUDA graph that holds the call draws a fresh
// number on every replay. The parameters are copied into the kernel's arguments when the call is captured:
// a graph must be captured again when they change.
//
// How (one launch, a persistent grid with a software grid barrier, all CTAs resident):
//   1. max and argmax of the logits (NaN detection), a partial per CTA, reduced by every CTA;
//   2. p_i = exp((l_i - max) / T) as float (the CPU's value), kept as its bit pattern u_i (monotonic in p_i),
//      with a 64-bit fixed-point mass m_i = round(p_i * 2^s) (s = 63 - bit length of vocab, so the sum cannot
//      overflow); integer sums make every step deterministic whatever the order of the atomics;
//   3. top-k and top-p are thresholds on the order (u desc, id asc): a 3-level radix select (10 bits each)
//      over histograms of count and mass finds the threshold value t and how many of the tokens equal to t
//      (the lowest ids) are kept; min-p is a plain threshold on u;
//   4. one CTA draws r in [0, kept mass) and finds the token by a scan in id order over the per-CTA partial
//      masses, then over the chosen CTA's range.
// Tokens whose probability relative to the most likely one is below 2^-s (2^-45 for the gpt-oss vocabulary)
// get mass 0 and are never drawn; the CPU would draw them with a probability of that order.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_buffer.cuh"

namespace ossrun::gpu {

struct DeviceSamplerParams {
  float temperature;  // 0: greedy (argmax); otherwise finite and > 0
  float top_p;        // (0, 1]; 1: off
  int top_k;          // >= 0; 0: off
  float min_p;        // [0, 1]; 0: off
  uint64_t seed;
};

// Throws InputError when a parameter is out of range (the same rules as src/engine/sampler.h validate).
void validate(const DeviceSamplerParams& p);

// The most CTAs one sampling launch uses (the last step scans one partial per thread of one CTA).
constexpr int kSamplerMaxCtas = 1024;

// Scratch of one sampler, device memory (laid out in sampling.cu).
struct SamplerScratch;

class DeviceSampler {
 public:
  // vocab: logits per row, 1 .. 2^31 - 1. Allocates its scratch (synchronous); sample() allocates nothing.
  // max_ctas: 0 for the default grid (one CTA per 1024 tokens, at most what fits on the device), or a
  // smaller cap (the benchmark compares grid sizes).
  explicit DeviceSampler(int64_t vocab, int max_ctas = 0);
  DeviceSampler(const DeviceSampler&) = delete;
  DeviceSampler& operator=(const DeviceSampler&) = delete;

  int64_t vocab() const { return vocab_; }
  int ctas() const { return ctas_; }

  // logits: (vocab) fp32 on the device. step_counter: one uint64 on the device, read and then incremented by
  // the kernel (on every call, greedy included). token_out: one int32 on the device; -1 when the logits hold a
  // NaN or no finite maximum (the CPU sampler throws there; in greedy mode it also tolerates a NaN after
  // index 0, this one does not). Validates p (InputError) and launches on `stream`; no host sync, no
  // allocation, graph-capturable. One stream at a time per sampler (the scratch is shared by its calls).
  void sample(const float* logits, const DeviceSamplerParams& p, const uint64_t* step_counter, int32_t* token_out,
              cudaStream_t stream);

 private:
  int64_t vocab_;
  int ctas_;
  int mass_shift_;                       // s in m = round(p * 2^s)
  DeviceBuffer<uint32_t> keys_;          // (vocab) bit pattern of each token's probability, written per call
  DeviceBuffer<unsigned char> scratch_;  // one SamplerScratch
};

}  // namespace ossrun::gpu
