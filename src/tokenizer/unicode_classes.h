// The character classes the o200k pre-tokenizer regex uses, per code point, as bit flags. ASCII comes from a
// fixed table; other code points are classified by PCRE2's Unicode tables (the same engine as the reference
// splitter), 128 code points at a time on first use, so the hand-written splitter and the PCRE2 regex agree by
// construction. White space is tiktoken's: Rust regex's \s, the Unicode White_Space property.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace ossrun {

namespace char_class {
constexpr uint8_t kLetter = 1;        // \p{L}
constexpr uint8_t kNumber = 2;        // \p{N}
constexpr uint8_t kUpperish = 4;      // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
constexpr uint8_t kLowerish = 8;      // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
constexpr uint8_t kSpace = 16;        // \s: White_Space
constexpr uint8_t kLineBreak = 32;    // [\r\n]
}  // namespace char_class

// White_Space as Rust's regex crate (and so tiktoken) defines \s: 9-13, 0x20, 0x85, 0xA0, 0x1680, 0x2000-0x200A,
// 0x2028, 0x2029, 0x202F, 0x205F, 0x3000.
bool is_white_space(char32_t c);

class UnicodeClasses {
 public:
  static const UnicodeClasses& instance();

  uint8_t ascii(unsigned char c) const { return ascii_[c]; }
  uint8_t of(char32_t c) const {
    if (c < 0x80) return ascii_[c];
    if (c > 0x10FFFF) return 0;
    const uint8_t* block = blocks_[c >> kBlockBits].load(std::memory_order_acquire);
    if (!block) block = fill_block(c >> kBlockBits);
    return block[c & (kBlockSize - 1)];
  }

 private:
  static constexpr int kBlockBits = 7;
  static constexpr uint32_t kBlockSize = 1u << kBlockBits;
  static constexpr uint32_t kBlocks = 0x110000 >> kBlockBits;

  UnicodeClasses();
  const uint8_t* fill_block(uint32_t block) const;

  std::array<uint8_t, 128> ascii_{};
  mutable std::array<std::atomic<const uint8_t*>, kBlocks> blocks_{};
  mutable std::mutex fill_mutex_;
  mutable std::vector<std::unique_ptr<uint8_t[]>> storage_;  // owns the filled blocks
};

}  // namespace ossrun
