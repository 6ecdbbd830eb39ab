// Element types that appear in gpt-oss checkpoints, with the safetensors spelling of each.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ossrun {

enum class DType : uint8_t { BF16, F16, F32, F64, U8, I8, I16, I32, I64, U16, U32, U64, BOOL, F8_E4M3, F8_E5M2 };

// Size of one element in bytes.
size_t dtype_size(DType t);
// The safetensors name ("BF16", "U8", ...).
std::string_view dtype_name(DType t);
// Parses a safetensors dtype name; nullopt when the name is unknown.
std::optional<DType> parse_dtype(std::string_view name);

}  // namespace ossrun
