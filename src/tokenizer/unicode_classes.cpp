#include "src/tokenizer/unicode_classes.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>
#include <string>

#include "src/tokenizer/utf8.h"

namespace ossrun {
namespace {

// One anchored, JIT-compiled single-character class.
class ClassMatcher {
 public:
  explicit ClassMatcher(const char* pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error, &offset, nullptr);
    if (!code_) throw std::logic_error(std::string("cannot compile the class ") + pattern);
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  ~ClassMatcher() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  ClassMatcher(const ClassMatcher&) = delete;
  ClassMatcher& operator=(const ClassMatcher&) = delete;

  bool matches(const std::string& one_char) const {
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(one_char.data()), one_char.size(), 0, PCRE2_NO_UTF_CHECK,
                       data_, nullptr) >= 0;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

}  // namespace

bool is_white_space(char32_t c) {
  return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

const UnicodeClasses& UnicodeClasses::instance() {
  static const UnicodeClasses classes;
  return classes;
}

UnicodeClasses::UnicodeClasses() {
  using namespace char_class;
  for (unsigned c = 0; c < 128; ++c) {
    uint8_t f = 0;
    if ((c >= 'A' && c <= 'Z')) f |= kLetter | kUpperish;
    if ((c >= 'a' && c <= 'z')) f |= kLetter | kLowerish;
    if (c >= '0' && c <= '9') f |= kNumber;
    if (is_white_space(c)) f |= kSpace;
    if (c == '\r' || c == '\n') f |= kLineBreak;
    ascii_[c] = f;
  }
}

const uint8_t* UnicodeClasses::fill_block(uint32_t block) const {
  std::lock_guard<std::mutex> lock(fill_mutex_);
  if (const uint8_t* done = blocks_[block].load(std::memory_order_acquire)) return done;
  // The matchers are used only under the mutex.
  static const ClassMatcher letter("\\p{L}"), number("\\p{N}"), upperish("[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"),
      lowerish("[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]");
  auto flags = std::make_unique<uint8_t[]>(kBlockSize);
  std::string one;
  for (uint32_t k = 0; k < kBlockSize; ++k) {
    char32_t c = (block << kBlockBits) | k;
    uint8_t f = 0;
    if (c < 0x80) {
      f = ascii_[c];
    } else if (c < 0xD800 || c > 0xDFFF) {  // surrogates never reach the splitter (input is sanitized)
      one.clear();
      utf8::append(c, one);
      using namespace char_class;
      if (letter.matches(one)) f |= kLetter;
      if (number.matches(one)) f |= kNumber;
      if (upperish.matches(one)) f |= kUpperish;
      if (lowerish.matches(one)) f |= kLowerish;
      if (is_white_space(c)) f |= kSpace;
    }
    flags[k] = f;
  }
  const uint8_t* published = flags.get();
  storage_.push_back(std::move(flags));
  blocks_[block].store(published, std::memory_order_release);
  return published;
}

}  // namespace ossrun
