#include "src/tokenizer/bpe_ranks.h"

#include <algorithm>
#include <cstring>
#include <queue>
#include <stdexcept>

namespace ossrun {
namespace {

// Pieces up to this many bytes use the quadratic scan, which is faster than a heap at these sizes.
constexpr size_t kScanMaxBytes = 96;

inline uint64_t load_partial(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

inline uint64_t hash_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    h = (h ^ load_partial(p, 8)) * 0xFF51AFD7ED558CCDull;
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
  slots_.assign(capacity, Slot{0, 0});
  mask_ = capacity - 1;
  for (uint32_t r = 0; r < tokens.size(); ++r) {
    uint64_t h = hash_bytes(tokens[r]);
    uint64_t i = h & mask_;
    while (slots_[i].rank_plus1 != 0) {
      if (bytes(slots_[i].rank_plus1 - 1) == tokens[r]) throw std::invalid_argument("BpeRanks: a token repeats");
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{static_cast<uint32_t>(h >> 32), r + 1};
  }
  for (int b = 0; b < 256; ++b) {
    char c = static_cast<char>(b);
    single_byte_[b] = rank(std::string_view(&c, 1));
    if (single_byte_[b] == kNoRank) throw std::invalid_argument("BpeRanks: a single byte has no token");
  }
}

uint32_t BpeRanks::rank(std::string_view s) const {
  uint64_t h = hash_bytes(s);
  uint32_t tag = static_cast<uint32_t>(h >> 32);
  for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.rank_plus1 == 0) return kNoRank;
    if (slot.tag == tag) {
      uint32_t r = slot.rank_plus1 - 1;
      uint32_t len = offsets_[r + 1] - offsets_[r];
      if (len == s.size() && std::memcmp(arena_.data() + offsets_[r], s.data(), len) == 0) return r;
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
// leftmost lowest-ranked pair and recomputes the two pair ranks it touched.
void BpeRanks::merge_by_scan(std::string_view piece, std::vector<TokenId>& out) const {
  struct Part {
    uint32_t start;
    uint32_t rank;
  };
  const size_t n = piece.size();
  Part stack_parts[kScanMaxBytes + 2];
  std::vector<Part> heap_parts;
  Part* parts = stack_parts;
  if (n + 1 > kScanMaxBytes + 2) {
    heap_parts.resize(n + 1);
    parts = heap_parts.data();
  }
  size_t count = n + 1;  // parts 0..n-1 plus the end sentinel
  for (size_t i = 0; i + 1 < n; ++i) parts[i] = {static_cast<uint32_t>(i), rank(piece.substr(i, 2))};
  parts[n - 1] = {static_cast<uint32_t>(n - 1), kNoRank};
  parts[n] = {static_cast<uint32_t>(n), kNoRank};
  // Rank of merging part i with part i+1, given that part i+2 exists.
  auto pair_rank = [&](size_t i) -> uint32_t {
    if (i + 2 >= count) return kNoRank;
    return rank(piece.substr(parts[i].start, parts[i + 2].start - parts[i].start));
  };
  while (true) {
    uint32_t best = kNoRank;
    size_t at = 0;
    for (size_t i = 0; i + 1 < count; ++i) {
      if (parts[i].rank < best) {
        best = parts[i].rank;
        at = i;
      }
    }
    if (best == kNoRank) break;
    // Remove part at+1, then recompute the pairs (at-1, at) and (at, at+1).
    std::memmove(parts + at + 1, parts + at + 2, (count - at - 2) * sizeof(Part));
    --count;
    parts[at].rank = pair_rank(at);
    if (at > 0) parts[at - 1].rank = pair_rank(at - 1);
  }
  for (size_t i = 0; i + 1 < count; ++i)
    out.push_back(rank(piece.substr(parts[i].start, parts[i + 1].start - parts[i].start)));
}

// The same merges in O(n log n): parts in a linked list, candidate pairs in a min-heap keyed by (rank, start),
// stale entries recognised by a per-part version.
void BpeRanks::merge_by_heap(std::string_view piece, std::vector<TokenId>& out) const {
  const uint32_t n = static_cast<uint32_t>(piece.size());
  // Part i starts at byte i initially; next/prev link the live parts; part n is the end sentinel.
  std::vector<uint32_t> next(n + 1), prev(n + 1), version(n + 1, 0);
  for (uint32_t i = 0; i <= n; ++i) {
    next[i] = i + 1;
    prev[i] = i == 0 ? 0 : i - 1;
  }
  struct Candidate {
    uint32_t rank, start, version;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : start > o.start; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  // Rank of merging the part at `start` with the part after it.
  auto pair_rank = [&](uint32_t start) -> uint32_t {
    uint32_t mid = next[start];
    if (mid >= n) return kNoRank;
    uint32_t end = next[mid];
    return rank(piece.substr(start, end - start));
  };
  for (uint32_t i = 0; i + 1 < n; ++i) {
    uint32_t r = pair_rank(i);
    if (r != kNoRank) heap.push({r, i, 0});
  }
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    if (c.version != version[c.start]) continue;  // part gone or its pair changed since
    uint32_t gone = next[c.start];
    next[c.start] = next[gone];
    prev[next[gone]] = c.start;
    version[gone] = UINT32_MAX;  // no live candidate refers to it any more
    uint32_t r = pair_rank(c.start);
    ++version[c.start];
    if (r != kNoRank) heap.push({r, c.start, version[c.start]});
    if (c.start > 0) {
      uint32_t p = prev[c.start];
      uint32_t pr = pair_rank(p);
      ++version[p];
      if (pr != kNoRank) heap.push({pr, p, version[p]});
    }
  }
  for (uint32_t i = 0; i < n; i = next[i]) out.push_back(rank(piece.substr(i, next[i] - i)));
}

}  // namespace ossrun
