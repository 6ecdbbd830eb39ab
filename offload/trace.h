// Routing traces: which k experts every token chose in every layer. The engine writes one with
// `--trace FILE`; `ossrun simulate` replays one through the cache policies.
//
// File format (binary, little-endian), version 1:
//   offset 0   8 bytes  magic "OSSTRACE"
//          8   u32      version (1)
//         12   u32      layers L   (1 .. 4096)
//         16   u32      experts E  (1 .. 65536)
//         20   u32      k          (1 .. min(E, 256))
//         24   u64      tokens T
//         32   T x L x k expert ids, token-major then layer: token 0 layer 0's k ids, token 0 layer 1's, ...
//              u8 each when E <= 256, else u16 LE.
// The ids of one (token, layer) are distinct (top-k), in the router's order. The writer patches T when it
// finishes, so a file whose writer died says so (T disagrees with the file size).
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <vector>

namespace ossrun::offload {

struct TraceShape {
  int layers = 0;
  int experts = 0;
  int k = 0;

  int ids_per_token() const { return layers * k; }
  bool operator==(const TraceShape&) const = default;
};

// Throws InputError naming the bad value.
void validate_trace_shape(const TraceShape& s);

// A trace in memory: ids as (tokens, layers, k).
class Trace {
 public:
  explicit Trace(TraceShape shape);  // validates the shape

  const TraceShape& shape() const { return shape_; }
  int64_t tokens() const { return static_cast<int64_t>(ids_.size()) / shape_.ids_per_token(); }
  // The k ids of (token, layer).
  std::span<const uint16_t> ids(int64_t token, int layer) const {
    return {ids_.data() + (token * shape_.layers + layer) * shape_.k, static_cast<size_t>(shape_.k)};
  }
  // Appends one token: layers x k ids. Throws InputError when the count is wrong, an id is out of range
  // or a layer repeats an id.
  void append_token(std::span<const uint16_t> ids);
  void reserve(int64_t tokens) { ids_.reserve(static_cast<size_t>(tokens) * shape_.ids_per_token()); }
  const std::vector<uint16_t>& raw() const { return ids_; }

 private:
  TraceShape shape_;
  std::vector<uint16_t> ids_;
};

// Streams tokens into a file (the engine's --trace). Throws InputError when the file cannot be written.
class TraceWriter {
 public:
  TraceWriter(const std::filesystem::path& path, TraceShape shape);
  ~TraceWriter();  // finishes quietly if finish() was not called
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Same checks as Trace::append_token.
  void append_token(std::span<const uint16_t> ids);
  // Writes the token count into the header and closes the file.
  void finish();
  int64_t tokens() const { return tokens_; }

 private:
  std::filesystem::path path_;
  TraceShape shape_;
  std::FILE* file_ = nullptr;
  int64_t tokens_ = 0;
  std::vector<uint8_t> buffer_;
};

void write_trace(const std::filesystem::path& path, const Trace& trace);
// Throws InputError naming the file and what is wrong: bad magic or version, a shape out of range, a size
// that disagrees with the header (truncated, trailing bytes, an unfinished writer), an id >= E, a repeated id.
Trace read_trace(const std::filesystem::path& path);

}  // namespace ossrun::offload
