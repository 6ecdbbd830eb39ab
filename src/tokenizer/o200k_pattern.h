// The o200k pre-tokenizer regex (spec §7; identical in o200k_base and o200k_harmony), as tiktoken writes it.
// Its dialect is Rust's regex crate (through fancy-regex): Unicode classes, \s = Unicode White_Space.
#pragma once
#include <string_view>

namespace ossrun {

inline constexpr std::string_view kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n/]*)"
    R"(|\s*[\r\n]+)"
    R"(|\s+(?!\S))"
    R"(|\s+)";

}  // namespace ossrun

namespace ossrun {

// The same regex in PCRE2's dialect. PCRE2's \s (with UCP) is Z plus tab..CR, which lacks U+0085; tiktoken's is
// White_Space, which has it. So \s and \S are spelled out as White_Space classes here.
#define OSSRUN_WHITE_SPACE_CLASS R"(\t\n\x0B\f\r\x20\x85\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})"
inline constexpr std::string_view kO200kPatternPcre2 =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3})"
    R"(| ?[^)" OSSRUN_WHITE_SPACE_CLASS R"(\p{L}\p{N}]+[\r\n/]*)"
    R"(|[)" OSSRUN_WHITE_SPACE_CLASS R"(]*[\r\n]+)"
    R"(|[)" OSSRUN_WHITE_SPACE_CLASS R"(]+(?![^)" OSSRUN_WHITE_SPACE_CLASS R"(]))"
    R"(|[)" OSSRUN_WHITE_SPACE_CLASS R"(]+)";
#undef OSSRUN_WHITE_SPACE_CLASS

}  // namespace ossrun
