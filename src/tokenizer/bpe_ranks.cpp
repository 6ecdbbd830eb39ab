#include "src/tokenizer/bpe_ranks.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace ossrun {
namespace {

// Pieces up to this many bytes use the quadratic scan; beyond about 40 bytes the heap is faster (measured).
constexpr size_t kScanMaxBytes = 40;

inline uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint32_t load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The first n <= 8 bytes at p as a little-endian number, zero-padded, without reading past p + n (pieces are
// views into the caller's text). Overlapping loads instead of a byte loop.
inline uint64_t load_partial(const unsigned char* p, size_t n) {
  if (n >= 8) return load64(p);
  if (n >= 4) return load32(p) | (uint64_t(load32(p + n - 4)) << ((n - 4) * 8));
  if (n == 0) return 0;
  return uint64_t(p[0]) | (uint64_t(p[n / 2]) << ((n / 2) * 8)) | (uint64_t(p[n - 1]) << ((n - 1) * 8));
}

inline uint64_t head_of(std::string_view s) {
  return load_partial(reinterpret_cast<const unsigned char*>(s.data()), s.size() < 8 ? s.size() : 8);
}

inline uint64_t hash_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  if (n <= 8) {  // most lookups: one multiply
    uint64_t h = (load_partial(p, n) ^ (uint64_t(n) << 59)) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 31);
  }
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    h = (h ^ load64(p)) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  h = (h ^ load_partial(p, n)) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 29;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

}  // namespace

BpeRanks::BpeRanks(const std::vector<std::string>& tokens) {
  size_t total = 0;
  for (const auto& t : tokens) total += t.size();
  arena_.reserve(total);
  offsets_.reserve(tokens.size() + 1);
  offsets_.push_back(0);
  for (const auto& t : tokens) {
    arena_ += t;
    offsets_.push_back(static_cast<uint32_t>(arena_.size()));
  }
  size_t capacity = 1;
  while (capacity < tokens.size() * 2 + 16) capacity <<= 1;
  slots_.assign(capacity, Slot{0, 0, 0});
  mask_ = capacity - 1;
  for (uint32_t r = 0; r < tokens.size(); ++r) {
    if (tokens[r].empty()) throw std::invalid_argument("BpeRanks: token " + std::to_string(r) + " is empty");
    if (rank(tokens[r]) != kNoRank) throw std::invalid_argument("BpeRanks: token " + std::to_string(r) + " repeats");
    uint64_t i = hash_bytes(tokens[r]) & mask_;
    while (slots_[i].rank_plus1 != 0) i = (i + 1) & mask_;
    slots_[i] = Slot{head_of(tokens[r]), r + 1, static_cast<uint32_t>(tokens[r].size())};
  }
  for (int b = 0; b < 256; ++b) {
    char c = static_cast<char>(b);
    single_byte_[b] = rank(std::string_view(&c, 1));
    if (single_byte_[b] == kNoRank) throw std::invalid_argument("BpeRanks: the byte " + std::to_string(b) + " has no token");
  }
  byte_pair_.assign(256 * 256, kNoRank);
  for (uint32_t r = 0; r < tokens.size(); ++r)
    if (tokens[r].size() == 2)
      byte_pair_[static_cast<unsigned char>(tokens[r][0]) * 256 + static_cast<unsigned char>(tokens[r][1])] = r;
}

uint32_t BpeRanks::rank(std::string_view s) const {
  const uint64_t head = head_of(s);
  for (uint64_t i = hash_bytes(s) & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.rank_plus1 == 0) return kNoRank;
    if (slot.head == head && slot.size == s.size()) {
      uint32_t r = slot.rank_plus1 - 1;
      if (s.size() <= 8 || std::memcmp(arena_.data() + offsets_[r] + 8, s.data() + 8, s.size() - 8) == 0) return r;
    }
  }
}

void BpeRanks::encode_piece(std::string_view piece, std::vector<TokenId>& out) const {
  if (piece.size() == 1) {
    out.push_back(single_byte_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  uint32_t whole = rank(piece);
  if (whole != kNoRank) {
    out.push_back(whole);
    return;
  }
  if (piece.size() <= kScanMaxBytes) {
    merge_by_scan(piece, out);
  } else {
    merge_by_heap(piece, out);
  }
}

// tiktoken's loop: parts[i] = (start of part i, rank of merging part i with part i+1); each step merges the
// leftmost lowest-ranked pair and recomputes the two pair ranks it touched. Each part also carries its own
// token, so the result needs no further lookups.
void BpeRanks::merge_by_scan(std::string_view piece, std::vector<TokenId>& out) const {
  struct Part {
    uint32_t start;
    uint32_t pair_rank;  // rank of this part merged with the next one
    uint32_t token;      // this part's own token
  };
  const size_t n = piece.size();
  const auto* bytes = reinterpret_cast<const unsigned char*>(piece.data());
  Part stack_parts[kScanMaxBytes + 1];
  std::vector<Part> heap_parts;
  Part* parts = stack_parts;
  if (n + 1 > kScanMaxBytes + 1) {
    heap_parts.resize(n + 1);
    parts = heap_parts.data();
  }
  size_t count = n + 1;  // parts 0..n-1 plus the end sentinel
  for (size_t i = 0; i + 1 < n; ++i)
    parts[i] = {static_cast<uint32_t>(i), byte_pair_[bytes[i] * 256 + bytes[i + 1]], single_byte_[bytes[i]]};
  parts[n - 1] = {static_cast<uint32_t>(n - 1), kNoRank, single_byte_[bytes[n - 1]]};
  parts[n] = {static_cast<uint32_t>(n), kNoRank, kNoRank};
  // Rank of merging part i with part i+1 (kNoRank when part i+1 is the sentinel).
  auto pair_rank = [&](size_t i) -> uint32_t {
    if (i + 2 >= count) return kNoRank;
    return rank(piece.substr(parts[i].start, parts[i + 2].start - parts[i].start));
  };
  while (true) {
    uint32_t best = kNoRank;
    size_t at = 0;
    for (size_t i = 0; i + 1 < count; ++i) {
      if (parts[i].pair_rank < best) {
        best = parts[i].pair_rank;
        at = i;
      }
    }
    if (best == kNoRank) break;
    // Part `at` absorbs part at+1; then the pairs (at-1, at) and (at, at+1) change.
    parts[at].token = best;
    std::memmove(parts + at + 1, parts + at + 2, (count - at - 2) * sizeof(Part));
    --count;
    parts[at].pair_rank = pair_rank(at);
    if (at > 0) parts[at - 1].pair_rank = pair_rank(at - 1);
  }
  for (size_t i = 0; i + 1 < count; ++i) out.push_back(parts[i].token);
}

// The same merges in O(n log n): parts in a linked list, candidate pairs in a min-heap of (rank << 32 | start).
// A popped candidate is current when its part's pair still has that rank: a part's pair only changes by growing,
// and a longer byte string is a different token, so an equal rank means the same pair.
void BpeRanks::merge_by_heap(std::string_view piece, std::vector<TokenId>& out) const {
  const uint32_t n = static_cast<uint32_t>(piece.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(piece.data());
  // Part i starts at byte i initially; next/prev link the live parts; part n is the end sentinel.
  std::vector<uint32_t> next(n + 1), prev(n + 1), pair(n + 1, kNoRank), token(n);
  for (uint32_t i = 0; i <= n; ++i) {
    next[i] = i + 1;
    prev[i] = i == 0 ? 0 : i - 1;
  }
  std::vector<uint64_t> heap;
  heap.reserve(n);
  auto push = [&](uint32_t rank, uint32_t start) {
    heap.push_back(uint64_t(rank) << 32 | start);
    std::push_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
  };
  // Recomputes the rank of merging the part at `start` with the part after it, and queues it.
  auto update = [&](uint32_t start) {
    uint32_t mid = next[start];
    pair[start] = mid >= n ? kNoRank : rank(piece.substr(start, next[mid] - start));
    if (pair[start] != kNoRank) push(pair[start], start);
  };
  for (uint32_t i = 0; i < n; ++i) token[i] = single_byte_[bytes[i]];
  for (uint32_t i = 0; i + 1 < n; ++i) {
    pair[i] = byte_pair_[bytes[i] * 256 + bytes[i + 1]];
    if (pair[i] != kNoRank) heap.push_back(uint64_t(pair[i]) << 32 | i);
  }
  std::make_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    const uint64_t top = heap.back();
    heap.pop_back();
    const uint32_t r = static_cast<uint32_t>(top >> 32), start = static_cast<uint32_t>(top);
    if (pair[start] != r) continue;  // stale: the part is gone or its pair grew
    uint32_t gone = next[start];
    next[start] = next[gone];
    prev[next[gone]] = start;
    pair[gone] = kNoRank;
    token[start] = r;
    update(start);
    if (start > 0) update(prev[start]);
  }
  for (uint32_t i = 0; i < n; i = next[i]) out.push_back(token[i]);
}

}  // namespace ossrun
