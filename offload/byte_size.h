// Byte sizes as people type them on the command line ("6G", "512M", "1.5GiB") and as the plan prints them.
// Suffixes are binary multiples: K = 1024, M = 1024^2, G = 1024^3, T = 1024^4, optionally followed by "B" or
// "iB" ("6G", "6GB" and "6GiB" are the same number); no suffix means bytes. Case does not matter.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ossrun::offload {

// Throws InputError naming `what` (e.g. "--vram") and the text when it is not a size: empty, negative,
// not a number, an unknown suffix, a fraction of a byte, or more than 2^63 bytes.
uint64_t parse_byte_size(std::string_view text, std::string_view what);

// "13.24 MiB", "6.00 GiB", "512 B": three significant decimals at most, binary units.
std::string format_bytes(uint64_t n);

}  // namespace ossrun::offload
