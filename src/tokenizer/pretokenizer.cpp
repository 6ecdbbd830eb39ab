#include "src/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>
#include <string>

#include "src/tokenizer/o200k_pattern.h"
#include "src/tokenizer/unicode_classes.h"
#include "src/tokenizer/utf8.h"

namespace ossrun {
namespace {

using namespace char_class;

constexpr size_t kNone = static_cast<size_t>(-1);

// The text with the class of the character at each byte offset. Offsets always sit on character starts.
class Scanner {
 public:
  explicit Scanner(std::string_view text)
      : p_(reinterpret_cast<const unsigned char*>(text.data())), n_(text.size()), classes_(UnicodeClasses::instance()) {}

  size_t size() const { return n_; }
  unsigned char byte(size_t i) const { return p_[i]; }

  // Class flags of the character at i (< size) and its length in bytes.
  uint8_t at(size_t i, size_t& len) const {
    if (p_[i] < 0x80) {
      len = 1;
      return classes_.ascii(p_[i]);
    }
    len = utf8::sequence_length(std::string_view(reinterpret_cast<const char*>(p_), n_), i);
    if (len == 0) len = 1;  // not reached for sanitized input; keeps the scan moving regardless
    return classes_.of(utf8::decode(p_ + i, len));
  }

  // [^\r\n\p{L}\p{N}]
  static bool is_prefix(uint8_t f) { return !(f & (kLineBreak | kLetter | kNumber)); }
  // [^\s\p{L}\p{N}]
  static bool is_punct(uint8_t f) { return !(f & (kSpace | kLetter | kNumber)); }

 private:
  const unsigned char* p_;
  size_t n_;
  const UnicodeClasses& classes_;
};

// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ from j: the end, or kNone.
size_t upper_star_lower_plus(const Scanner& s, size_t j) {
  size_t k = j, len = 0, last_lower_end = kNone;
  uint8_t f = 0;
  while (k < s.size() && ((f = s.at(k, len)) & kUpperish)) {
    k += len;
    if (f & kLowerish) last_lower_end = k;
  }
  if (k < s.size() && (f & kLowerish)) {  // the greedy upper run stopped at a lower-case letter: take the run
    while (k < s.size() && (s.at(k, len) & kLowerish)) k += len;
    return k;
  }
  // Backtrack the upper run to its last character that is also lower-ish; the lower run is that one character.
  return last_lower_end;
}

// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* from j: the end, or kNone.
size_t upper_plus_lower_star(const Scanner& s, size_t j) {
  size_t k = j, len = 0;
  while (k < s.size() && (s.at(k, len) & kUpperish)) k += len;
  if (k == j) return kNone;
  while (k < s.size() && (s.at(k, len) & kLowerish)) k += len;
  return k;
}

bool ascii_is(unsigned char c, char lower) { return c == static_cast<unsigned char>(lower) || c == static_cast<unsigned char>(lower - 32); }

// (?i:'s|'t|'re|'ve|'m|'ll|'d)? at e: the end after it (e when absent). Case-insensitive 's' also matches
// U+017F LATIN SMALL LETTER LONG S (C5 BF), as Unicode simple case folding has it.
size_t contraction(const Scanner& s, size_t e) {
  if (e + 1 >= s.size() || s.byte(e) != '\'') return e;
  unsigned char c = s.byte(e + 1);
  if (ascii_is(c, 's') || ascii_is(c, 't') || ascii_is(c, 'm') || ascii_is(c, 'd')) return e + 2;
  if (c == 0xC5 && e + 2 < s.size() && s.byte(e + 2) == 0xBF) return e + 3;
  if (e + 2 < s.size()) {
    unsigned char c2 = s.byte(e + 2);
    if ((ascii_is(c, 'r') || ascii_is(c, 'v')) && ascii_is(c2, 'e')) return e + 3;
    if (ascii_is(c, 'l') && ascii_is(c2, 'l')) return e + 3;
  }
  return e;
}

// The common case, ASCII letters with an optional ASCII prefix character, decided from bytes alone: the end of
// the piece (contraction included), or kNone when a non-ASCII character could change the outcome (then the
// general matcher below decides).
size_t ascii_word(std::string_view text, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  auto upper = [](unsigned char c) { return c >= 'A' && c <= 'Z'; };
  auto lower = [](unsigned char c) { return c >= 'a' && c <= 'z'; };
  size_t j = i;
  if (!upper(p[i]) && !lower(p[i])) {
    // A prefix: [^\r\n\p{L}\p{N}] in ASCII, followed by an ASCII letter.
    unsigned char c = p[i];
    if (c >= 0x80 || c == '\r' || c == '\n' || (c >= '0' && c <= '9')) return kNone;
    if (i + 1 >= n || !(upper(p[i + 1]) || lower(p[i + 1]))) return kNone;
    j = i + 1;
  }
  size_t k = j;
  while (k < n && upper(p[k])) ++k;
  size_t m = k;
  while (m < n && lower(p[m])) ++m;
  // Alternative 1 (upper* lower+) when a lower-case run follows, else alternative 2 (upper+ lower*); either
  // way the piece ends at m. ASCII upper-case letters are not lower-ish, so no backtracking applies.
  if (m < n && p[m] >= 0x80) return kNone;  // a non-ASCII letter or mark might continue the run
  return contraction(Scanner(text), m);
}

}  // namespace

size_t next_o200k_piece(std::string_view text, size_t i) {
  if (size_t e = ascii_word(text, i); e != kNone) return e;
  const Scanner s(text);
  const size_t n = s.size();
  size_t len0 = 0;
  const uint8_t f0 = s.at(i, len0);
  const bool prefix = Scanner::is_prefix(f0);

  // 1: [^\r\n\p{L}\p{N}]?  upper* lower+  contraction?   2: [^\r\n\p{L}\p{N}]?  upper+ lower*  contraction?
  if (prefix || (f0 & (kUpperish | kLowerish))) {
    size_t e = kNone;
    if (prefix) e = upper_star_lower_plus(s, i + len0);
    if (e == kNone) e = upper_star_lower_plus(s, i);
    if (e == kNone && prefix) e = upper_plus_lower_star(s, i + len0);
    if (e == kNone) e = upper_plus_lower_star(s, i);
    if (e != kNone) return contraction(s, e);
  }
  // 3: \p{N}{1,3}
  if (f0 & kNumber) {
    size_t e = i + len0, len = 0;
    for (int count = 1; count < 3 && e < n && (s.at(e, len) & kNumber); ++count) e += len;
    return e;
  }
  // 4: ' '?[^\s\p{L}\p{N}]+[\r\n/]*
  {
    size_t j = kNone, len = 0;
    if (s.byte(i) == ' ' && i + 1 < n && Scanner::is_punct(s.at(i + 1, len))) j = i + 1;
    else if (Scanner::is_punct(f0)) j = i;
    if (j != kNone) {
      while (j < n && Scanner::is_punct(s.at(j, len))) j += len;
      while (j < n && (s.byte(j) == '\r' || s.byte(j) == '\n' || s.byte(j) == '/')) ++j;
      return j;
    }
  }
  // Only white space is left: f0 has kSpace.
  size_t k = i, len = 0, last_start = i, last_break_end = kNone;
  uint8_t f = 0;
  while (k < n && ((f = s.at(k, len)) & kSpace)) {
    last_start = k;
    k += len;
    if (f & kLineBreak) last_break_end = k;
  }
  // 5: \s*[\r\n]+ : the white space up to and including its last line break.
  if (last_break_end != kNone) return last_break_end;
  // 6: \s+(?!\S) : all of it at the end of the text, else all but its last character (when that leaves one).
  if (k == n) return n;
  if (last_start > i) return last_start;
  // 7: \s+
  return k;
}

struct O200kRegex::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_data* data = nullptr;
};

O200kRegex::O200kRegex() : impl_(new Impl) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kO200kPatternPcre2.data()), kO200kPatternPcre2.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error, &offset, nullptr);
  if (!impl_->code) {
    delete impl_;
    throw std::logic_error("PCRE2 cannot compile the o200k pattern (error " + std::to_string(error) + " at offset " +
                           std::to_string(offset) + ")");
  }
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
  impl_->data = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
}

O200kRegex::~O200kRegex() {
  pcre2_match_data_free(impl_->data);
  pcre2_code_free(impl_->code);
  delete impl_;
}

size_t O200kRegex::next_piece(std::string_view text, size_t pos) const {
  // Anchored at compile time (JIT does not take PCRE2_ANCHORED at match time). Every character starts some
  // alternative, so anchored matching at each piece's end splits exactly as the unanchored findall does.
  int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, PCRE2_NO_UTF_CHECK,
                       impl_->data, nullptr);
  if (rc < 0) throw std::logic_error("the o200k pattern matched nothing at offset " + std::to_string(pos));
  return pcre2_get_ovector_pointer(impl_->data)[1];
}

}  // namespace ossrun
