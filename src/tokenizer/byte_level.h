// GPT-2's byte-level alphabet (`bytes_to_unicode`): every byte maps to one printable code point, so a token's
// bytes can be stored as a JSON string. Bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF map to themselves; the other
// 68 bytes map to U+0100.. in ascending byte order. HF tokenizer.json vocabularies and merges use this form.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace ossrun {

// The code point byte b maps to.
char32_t byte_level_code_point(unsigned char b);

// Appends the byte-level (UTF-8) form of `bytes` to `out`.
void append_byte_level(std::string_view bytes, std::string& out);

// The bytes a byte-level string stands for; nullopt when it holds a character outside the alphabet or is not
// valid UTF-8.
std::optional<std::string> bytes_from_byte_level(std::string_view text);

}  // namespace ossrun
