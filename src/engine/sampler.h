// Picks the next token from a row of logits: greedy, or sampling with temperature, top-k, top-p and min-p.
//
// The filters apply in the order transformers' logits processors do: temperature, top-k, top-p, min-p; each
// later filter sees the distribution renormalized over what the earlier ones kept. Ties between equal
// logits go to the lower token id. The random stream is std::mt19937_64 from the seed, so the same seed
// and the same logits give the same tokens on every platform. Buffers are sized at construction; sampling
// allocates nothing.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace ossrun::engine {

struct SamplerOptions {
  float temperature = 1.0f;  // 0: greedy (argmax)
  float top_p = 1.0f;        // keep the most likely tokens until their mass reaches top_p; 1: off
  int64_t top_k = 0;         // keep the k most likely tokens; 0: off
  float min_p = 0.0f;        // drop tokens less likely than min_p * (the most likely one's probability); 0: off
  uint64_t seed = 0;
};

// Throws InputError when an option is out of range (temperature < 0, top_p outside (0, 1], top_k < 0,
// min_p outside [0, 1]).
void validate(const SamplerOptions& o);

// The index of the largest logit, the lowest index on ties.
int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  Sampler(int64_t vocab_size, const SamplerOptions& opt);
  // logits: (vocab_size). Throws std::runtime_error when they hold no finite maximum (NaN or all -inf).
  int32_t sample(std::span<const float> logits);

 private:
  // Puts the `m` most likely candidates first, in descending order (candidates_[0..n) are searched).
  void sort_prefix(size_t m, size_t n);

  SamplerOptions opt_;
  std::mt19937_64 rng_;
  std::vector<int32_t> candidates_;  // (vocab) token ids still in the running
  std::vector<float> prob_;          // (vocab) by token id: exp((logit - max) / temperature)
};

}  // namespace ossrun::engine
