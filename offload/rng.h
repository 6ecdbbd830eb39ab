// A small, fast, seedable random generator whose output is the same on every platform and standard
// library (std::uniform_*_distribution is not), so seeded traces and tests reproduce exactly.
#pragma once
#include <cstdint>

namespace ossrun::offload {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }
  // Uniform in [0, n) for n >= 1 (the modulo bias is below 2^-40 for the n used here).
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

}  // namespace ossrun::offload
