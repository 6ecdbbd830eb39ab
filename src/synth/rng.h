// Counter-based random numbers for the synthetic checkpoint writer.
//
// Every random draw is a pure function of (seed, stream name, counter): draw i of a stream is wyrand's output
// for state key + (i+1)*increment (one 64x64->128-bit multiply; wyrand passes BigCrush and PractRand), so any
// chunk of any tensor can be generated on its own, in any order, by any thread, and the bytes never depend on
// how the work was split. Stream keys come from splitmix64's mixer over the seed and the stream name.
#pragma once
#include <cstdint>
#include <string_view>

namespace ossrun::synth {

// splitmix64's output function (Stafford's mix13): a bijection of 64-bit words with full avalanche.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

class CounterRng {
 public:
  // The stream named `name` under `seed` (names are tensor names, plus a "#tag" for auxiliary streams).
  CounterRng(uint64_t seed, std::string_view name) : key_(mix64(fnv1a64(name) ^ mix64(seed + 0x9e3779b97f4a7c15ull))) {}

  // Draw number i of the stream.
  uint64_t at(uint64_t i) const {
    const uint64_t s = key_ + (i + 1) * 0xa0761d6478bd642full;
    const unsigned __int128 m = static_cast<unsigned __int128>(s) * (s ^ 0xe7037ed1a0b428dbull);
    return static_cast<uint64_t>(m) ^ static_cast<uint64_t>(m >> 64);
  }

 private:
  uint64_t key_;
};

}  // namespace ossrun::synth
