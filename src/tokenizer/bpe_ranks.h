// Byte-pair encoding over tiktoken ranks: the mergeable tokens with their ranks (rank = token id), a hash table
// from bytes to rank, and the merge loop that turns one pre-tokenized piece into ids (spec §7):
//   1. a piece that is itself a token is that token (HF's ignore_merges);
//   2. otherwise start from single bytes and repeatedly merge the adjacent pair whose concatenation has the
//      lowest rank (the leftmost one on ties) until no adjacent pair is a token.
// Short pieces use tiktoken's quadratic scan; long ones a heap, so 1 MB without a split stays fast.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ossrun {

using TokenId = uint32_t;

class BpeRanks {
 public:
  static constexpr uint32_t kNoRank = UINT32_MAX;

  // tokens[r] holds the bytes of rank r. Every token must be non-empty and distinct, every single byte a token
  // (checked by the callers that read files, which name the file).
  explicit BpeRanks(const std::vector<std::string>& tokens);

  size_t size() const { return offsets_.size() - 1; }
  std::string_view bytes(uint32_t rank) const {
    return std::string_view(arena_.data() + offsets_[rank], offsets_[rank + 1] - offsets_[rank]);
  }
  // kNoRank when `bytes` is not a token.
  uint32_t rank(std::string_view bytes) const;

  // Appends the ids of one piece.
  void encode_piece(std::string_view piece, std::vector<TokenId>& out) const;

  // The two merge loops, exposed so tests can hold them to each other; encode_piece picks one by length.
  void merge_by_scan(std::string_view piece, std::vector<TokenId>& out) const;
  void merge_by_heap(std::string_view piece, std::vector<TokenId>& out) const;

 private:
  // A token's first 8 bytes live in its slot, so looking up a short token (most are) touches one cache line.
  struct Slot {
    uint64_t head;        // the token's first 8 bytes, zero-padded
    uint32_t rank_plus1;  // 0: empty
    uint32_t size;        // the token's length in bytes
  };

  std::string arena_;              // every token's bytes, by rank
  std::vector<uint32_t> offsets_;  // (size + 1): token r is arena_[offsets_[r], offsets_[r+1])
  std::vector<Slot> slots_;        // open addressing, linear probing, power-of-two size
  uint64_t mask_ = 0;
  uint32_t single_byte_[256];      // rank of each single byte
  std::vector<uint32_t> byte_pair_;  // (256 * 256): rank of each two-byte string, kNoRank when not a token
};

}  // namespace ossrun
