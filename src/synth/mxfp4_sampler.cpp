#include "src/synth/mxfp4_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "src/model/mxfp4.h"
#include "src/synth/normal.h"

namespace ossrun::synth {
namespace {

constexpr uint32_t kOne = 1u << 16;  // probability 1 on the 16-bit scale
constexpr int kMagnitudes = 8;       // E2M1 magnitudes by code: 0, .5, 1, 1.5, 2, 3, 4, 6
// Rounding boundaries between the magnitudes (in units of the block scale), and the block's range 6.
constexpr double kUpper[kMagnitudes] = {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0};

// Splits 65536 table slots among outcomes in proportion to p (largest remainder), so the table realises the
// probabilities to within 1/65536 each.
std::vector<uint32_t> apportion(const std::vector<double>& p) {
  double total = 0;
  for (double v : p) total += v;
  std::vector<uint32_t> n(p.size());
  std::vector<std::pair<double, size_t>> rest;
  uint32_t used = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double exact = p[i] / total * kOne;
    n[i] = static_cast<uint32_t>(exact);
    used += n[i];
    rest.emplace_back(exact - n[i], i);
  }
  std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  for (size_t r = 0; used < kOne; ++r, ++used) ++n[rest[r % rest.size()].second];
  return n;
}

}  // namespace

Mxfp4Sampler::Mxfp4Sampler(double std) : std_(std) {
  if (!(std > std::ldexp(1.0, -100) && std < std::ldexp(1.0, 100)))
    throw std::invalid_argument("Mxfp4Sampler: std " + std::to_string(std) + " outside (2^-100, 2^100)");
  // P(block exponent <= k) = P(max of 32 |N(0, std^2)| <= 6 * 2^k); keep the exponents the 16-bit table can hit.
  const int centre = static_cast<int>(std::floor(std::log2(std)));
  std::vector<int> ks;
  std::vector<double> probs;
  double prev = 0;
  for (int k = centre - 12; k <= centre + 12; ++k) {
    const double cdf = std::pow(2 * normal_cdf(6 * std::ldexp(1.0, k) / std) - 1, mxfp4::kBlock);
    ks.push_back(k);
    probs.push_back(cdf - prev);
    prev = cdf;
  }
  probs.back() += 1 - prev;
  const std::vector<uint32_t> slots = apportion(probs);
  uint32_t cum = 0;
  for (size_t i = 0; i < ks.size(); ++i) {
    if (slots[i] == 0) continue;
    cum += slots[i];
    exponents_.push_back(ks[i]);
    exponent_cdf_.push_back(cum);
  }

  for (int e : exponents_) {
    // Magnitude probabilities of N(0, std^2) / 2^e on the E2M1 grid, truncated to the block range +-6.
    const double r = std / std::ldexp(1.0, e);
    std::vector<double> nibble_p(16, 0.0);
    double lower = 0;
    for (int m = 0; m < kMagnitudes; ++m) {
      const double p = 2 * (normal_cdf(kUpper[m] / r) - normal_cdf(lower / r));
      lower = kUpper[m];
      if (m == 0) {
        nibble_p[0] = p;  // +0 only: quantize_e2m1 never gives -0
      } else {
        nibble_p[m] = p / 2;
        nibble_p[m | 8] = p / 2;
      }
    }
    const std::vector<uint32_t> slots_per_nibble = apportion(nibble_p);
    std::vector<uint8_t> table;
    table.reserve(kOne);
    for (uint8_t nib = 0; nib < 16; ++nib) table.insert(table.end(), slots_per_nibble[nib], nib);
    codes_.push_back(std::move(table));
    const double p6 = nibble_p[6], p7 = nibble_p[7];
    six_threshold_.push_back(p6 + p7 > 0 ? static_cast<uint32_t>(std::lround(p6 / (p6 + p7) * kOne)) : kOne);
  }
  if (exponents_.front() < -mxfp4::kScaleBias || exponents_.back() > 254 - mxfp4::kScaleBias)
    throw std::invalid_argument("Mxfp4Sampler: std " + std::to_string(std) + " needs scale bytes outside 0..254");
}

double Mxfp4Sampler::exponent_probability(size_t j) const {
  const uint32_t below = j == 0 ? 0 : exponent_cdf_[j - 1];
  return double(exponent_cdf_.at(j) - below) / kOne;
}

void Mxfp4Sampler::scales(const Mxfp4Streams& s, uint64_t first_block, uint64_t n_blocks, uint8_t* out) const {
  for (uint64_t i = 0; i < n_blocks; ++i)
    out[i] = static_cast<uint8_t>(mxfp4::kScaleBias + exponents_[exponent_index(s.scales.at(first_block + i))]);
}

void Mxfp4Sampler::blocks(const Mxfp4Streams& s, uint64_t first_block, uint64_t n_blocks, uint8_t* out) const {
  // The 16 bytes are built in two registers (bytes 2w and 2w+1 from draw w) and stored once.
  const CounterRng scale_rng = s.scales, code_rng = s.codes;
  for (uint64_t i = 0; i < n_blocks; ++i) {
    const uint64_t block = first_block + i;
    const uint64_t scale_draw = scale_rng.at(block);
    const size_t j = exponent_index(scale_draw);
    const uint8_t* table = codes_[j].data();
    uint64_t half[2] = {0, 0};
    for (int w = 0; w < 8; ++w) {
      const uint64_t d = code_rng.at(8 * block + w);
      const uint64_t two_bytes = uint64_t(table[d & 0xffff]) | uint64_t(table[(d >> 16) & 0xffff]) << 4 |
                                 uint64_t(table[(d >> 32) & 0xffff]) << 8 | uint64_t(table[d >> 48]) << 12;
      half[w / 4] |= two_bytes << (16 * (w % 4));
    }
    // A nibble has magnitude 4 or 6 exactly when its bits 1 and 2 are both set.
    if (!(((half[0] & (half[0] >> 1)) | (half[1] & (half[1] >> 1))) & 0x2222222222222222ull)) {
      const unsigned pos = (scale_draw >> 16) & 31;
      const uint64_t magnitude = ((scale_draw >> 21) & 0xffff) < six_threshold_[j] ? 6 : 7;
      const uint64_t nib = magnitude | (((scale_draw >> 37) & 1) << 3);
      const unsigned shift = 4 * (pos % 16);  // element pos is nibble pos of the 32 (little-endian)
      half[pos / 16] = (half[pos / 16] & ~(uint64_t(0xf) << shift)) | nib << shift;
    }
    std::memcpy(out + i * mxfp4::kBlockBytes, half, mxfp4::kBlockBytes);
  }
}

}  // namespace ossrun::synth
