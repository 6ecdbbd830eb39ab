// Synthetic MXFP4 expert weights, drawn directly as codes so that tens of billions of values take seconds.
//
// The target is what mxfp4::quantize_block makes of N(0, std^2) weights (gpt-oss.md §3):
//  - each block's exponent e (scale byte 127 + e) follows exactly the distribution quantize_block gives a
//    block of 32 Gaussian values: P(e <= k) = P(max |x| <= 6 * 2^k) = (2 Phi(6 * 2^k / std) - 1)^32;
//  - given e, the 32 E2M1 codes are drawn independently from N(0, std^2) / 2^e rounded to the E2M1 grid
//    (truncated to the block's range +-6), through a 16-bit lookup table per exponent;
//  - a block with no code of magnitude 4 or 6 gets one (random position, sign and magnitude), so every block
//    is canonical: quantize_block applied to its dequantized values gives back the same 17 bytes. Negative
//    zero (nibble 8) is never produced.
// Draws: block i uses draw i of the weight's "#scales" stream (exponent and the fix-up) and draws 8i..8i+7
// of its "#codes" stream (16 bits per code), so scales and blocks can be generated apart, in any chunks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/synth/rng.h"

namespace ossrun::synth {

// The two random streams of one MXFP4 weight (named after the weight without its _blocks/_scales suffix).
struct Mxfp4Streams {
  Mxfp4Streams(uint64_t seed, const std::string& weight) : scales(seed, weight + "#scales"), codes(seed, weight + "#codes") {}
  CounterRng scales;
  CounterRng codes;
};

class Mxfp4Sampler {
 public:
  // Throws std::invalid_argument unless 2^-100 < std < 2^100 (scale bytes must stay inside 0..254).
  explicit Mxfp4Sampler(double std);

  double std() const { return std_; }

  // Scale bytes of blocks [first_block, first_block + n_blocks).
  void scales(const Mxfp4Streams& s, uint64_t first_block, uint64_t n_blocks, uint8_t* out) const;
  // The packed 16-byte groups of the same blocks (low nibble = element 2b, high nibble = element 2b+1).
  void blocks(const Mxfp4Streams& s, uint64_t first_block, uint64_t n_blocks, uint8_t* out) const;

  // The exponents a block can get, and P(exponent == exponents()[j]) as realised by the 16-bit table.
  const std::vector<int>& exponents() const { return exponents_; }
  double exponent_probability(size_t j) const;

 private:
  size_t exponent_index(uint64_t scale_draw) const {  // the low 16 bits pick the exponent
    const uint32_t u = scale_draw & 0xffff;
    size_t j = 0;
    while (u >= exponent_cdf_[j]) ++j;
    return j;
  }

  double std_;
  std::vector<int> exponents_;             // ascending
  std::vector<uint32_t> exponent_cdf_;     // per exponent: P(index <= j) * 65536
  std::vector<std::vector<uint8_t>> codes_;  // per exponent: 65536 nibbles
  std::vector<uint32_t> six_threshold_;    // per exponent: P(magnitude 6 | magnitude >= 4) * 65536, for the fix-up
};

}  // namespace ossrun::synth
