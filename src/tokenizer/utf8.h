// UTF-8 helpers for the tokenizer: decoding one code point, validation, and the input policy for invalid bytes.
//
// Invalid UTF-8 policy (encode): every maximal ill-formed subpart is replaced by U+FFFD before tokenizing, the
// "substitution of maximal subparts" practice of Unicode §3.9 that WHATWG's TextDecoder (and node's
// Buffer.toString) follow. Text that reaches the peer as a JavaScript string decoded from the same bytes
// therefore tokenizes byte-exactly the same. Surrogate code points (ED A0..ED BF ..) and overlong forms are
// ill-formed.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace ossrun::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// Length of the well-formed sequence that starts at s[i], or 0 when s[i] does not start one (then
// `ill_formed_length` says how many bytes to replace).
size_t sequence_length(std::string_view s, size_t i);

// Length of the maximal ill-formed subpart at s[i] (at least 1), for an s[i] where sequence_length is 0.
size_t ill_formed_length(std::string_view s, size_t i);

// Decodes the well-formed sequence of `len` bytes at p.
char32_t decode(const unsigned char* p, size_t len);

// True when every byte sequence in s is well-formed.
bool is_valid(std::string_view s);

// s with every maximal ill-formed subpart replaced by U+FFFD (EF BF BD); s itself when valid.
std::string sanitize(std::string_view s);

// Appends the UTF-8 form of code point c.
void append(char32_t c, std::string& out);

// Number of bytes at the end of s that form an incomplete, still completable sequence (0..3): what a streaming
// decoder must hold back until more bytes arrive.
size_t incomplete_tail_length(std::string_view s);

}  // namespace ossrun::utf8
