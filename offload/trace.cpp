#include "offload/trace.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <string>

#include "src/model/error.h"

namespace ossrun::offload {
namespace {

constexpr char kMagic[8] = {'O', 'S', 'S', 'T', 'R', 'A', 'C', 'E'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 32;

int id_bytes(const TraceShape& s) { return s.experts <= 256 ? 1 : 2; }

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::array<uint8_t, kHeaderBytes> header_bytes(const TraceShape& s, uint64_t tokens) {
  std::array<uint8_t, kHeaderBytes> h{};
  std::memcpy(h.data(), kMagic, 8);
  put_u32(h.data() + 8, kVersion);
  put_u32(h.data() + 12, static_cast<uint32_t>(s.layers));
  put_u32(h.data() + 16, static_cast<uint32_t>(s.experts));
  put_u32(h.data() + 20, static_cast<uint32_t>(s.k));
  put_u64(h.data() + 24, tokens);
  return h;
}

// Empty when the token's ids are valid, else what is wrong.
std::string check_token(const TraceShape& s, std::span<const uint16_t> ids) {
  if (ids.size() != static_cast<size_t>(s.ids_per_token()))
    return "has " + std::to_string(ids.size()) + " ids, expected layers x k = " + std::to_string(s.ids_per_token());
  for (int l = 0; l < s.layers; ++l) {
    const uint16_t* layer = ids.data() + static_cast<size_t>(l) * s.k;
    for (int i = 0; i < s.k; ++i) {
      if (layer[i] >= s.experts)
        return "layer " + std::to_string(l) + " names expert " + std::to_string(layer[i]) + " but there are " +
               std::to_string(s.experts);
      for (int j = 0; j < i; ++j)
        if (layer[j] == layer[i])
          return "layer " + std::to_string(l) + " names expert " + std::to_string(layer[i]) + " twice";
    }
  }
  return {};
}

void encode(const TraceShape& s, std::span<const uint16_t> ids, std::vector<uint8_t>& out) {
  for (uint16_t id : ids) {
    out.push_back(static_cast<uint8_t>(id));
    if (id_bytes(s) == 2) out.push_back(static_cast<uint8_t>(id >> 8));
  }
}

}  // namespace

void validate_trace_shape(const TraceShape& s) {
  auto bad = [](const std::string& what) { throw InputError("trace shape: " + what); };
  if (s.layers < 1 || s.layers > 4096) bad("layers must be 1..4096, found " + std::to_string(s.layers));
  if (s.experts < 1 || s.experts > 65536) bad("experts must be 1..65536, found " + std::to_string(s.experts));
  if (s.k < 1 || s.k > s.experts || s.k > 256)
    bad("k must be 1..min(experts, 256) = " + std::to_string(std::min(s.experts, 256)) + ", found " + std::to_string(s.k));
}

Trace::Trace(TraceShape shape) : shape_(shape) { validate_trace_shape(shape); }

void Trace::append_token(std::span<const uint16_t> ids) {
  if (std::string why = check_token(shape_, ids); !why.empty())
    throw InputError("trace token " + std::to_string(tokens()) + " " + why);
  ids_.insert(ids_.end(), ids.begin(), ids.end());
}

TraceWriter::TraceWriter(const std::filesystem::path& path, TraceShape shape) : path_(path), shape_(shape) {
  validate_trace_shape(shape);
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) throw InputError(path.string() + ": cannot create the trace file");
  const auto h = header_bytes(shape_, 0);
  if (std::fwrite(h.data(), 1, h.size(), file_) != h.size()) {
    std::fclose(file_);
    file_ = nullptr;
    throw InputError(path.string() + ": cannot write the trace header");
  }
}

TraceWriter::~TraceWriter() {
  if (!file_) return;
  try {
    finish();
  } catch (const InputError&) {
    // A destructor must not throw; the reader will report the unfinished file.
  }
}

void TraceWriter::append_token(std::span<const uint16_t> ids) {
  if (!file_) throw InputError(path_.string() + ": the trace is already finished");
  if (std::string why = check_token(shape_, ids); !why.empty())
    throw InputError(path_.string() + ": token " + std::to_string(tokens_) + " " + why);
  buffer_.clear();
  encode(shape_, ids, buffer_);
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size())
    throw InputError(path_.string() + ": cannot write token " + std::to_string(tokens_) + " (disk full?)");
  ++tokens_;
}

void TraceWriter::finish() {
  if (!file_) return;
  std::FILE* f = file_;
  file_ = nullptr;
  const auto h = header_bytes(shape_, static_cast<uint64_t>(tokens_));
  const bool ok = std::fseek(f, 0, SEEK_SET) == 0 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  if (std::fclose(f) != 0 || !ok) throw InputError(path_.string() + ": cannot finish the trace file (disk full?)");
}

void write_trace(const std::filesystem::path& path, const Trace& trace) {
  TraceWriter w(path, trace.shape());
  const size_t n = static_cast<size_t>(trace.shape().ids_per_token());
  for (int64_t t = 0; t < trace.tokens(); ++t) w.append_token(std::span(trace.raw().data() + t * n, n));
  w.finish();
}

Trace read_trace(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(name + ": cannot open the trace file");
  std::array<uint8_t, kHeaderBytes> h{};
  in.read(reinterpret_cast<char*>(h.data()), h.size());
  if (static_cast<size_t>(in.gcount()) < kHeaderBytes || std::memcmp(h.data(), kMagic, 8) != 0)
    throw InputError(name + ": not an ossrun trace (no \"OSSTRACE\" header)");
  if (get_u32(h.data() + 8) != kVersion)
    throw InputError(name + ": trace version " + std::to_string(get_u32(h.data() + 8)) + ", this ossrun reads version " +
                     std::to_string(kVersion));
  const uint32_t layers = get_u32(h.data() + 12), experts = get_u32(h.data() + 16), k = get_u32(h.data() + 20);
  const uint64_t tokens = get_u64(h.data() + 24);
  // Checked as u32 before the narrowing so that huge values cannot wrap into range.
  if (layers > 4096 || experts > 65536 || k > 256)
    throw InputError(name + ": trace header has an impossible shape (" + std::to_string(layers) + " layers, " +
                     std::to_string(experts) + " experts, k " + std::to_string(k) + ")");
  const TraceShape shape{static_cast<int>(layers), static_cast<int>(experts), static_cast<int>(k)};
  try {
    validate_trace_shape(shape);
  } catch (const InputError& e) {
    throw InputError(name + ": " + e.what());
  }

  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec) throw InputError(name + ": cannot read the file size: " + ec.message());
  const uint64_t token_bytes = static_cast<uint64_t>(shape.ids_per_token()) * id_bytes(shape);
  const uint64_t data_bytes = file_bytes - kHeaderBytes;
  if (tokens > data_bytes / token_bytes || data_bytes != tokens * token_bytes) {
    std::string why = "the header says " + std::to_string(tokens) + " tokens of " + std::to_string(token_bytes) +
                      " bytes but " + std::to_string(data_bytes) + " bytes follow";
    if (tokens == 0) why += " (the writer did not finish; " + std::to_string(data_bytes / token_bytes) + " whole tokens are there)";
    else if (data_bytes < tokens * token_bytes) why += " (truncated)";
    throw InputError(name + ": " + why);
  }

  Trace trace(shape);
  trace.reserve(static_cast<int64_t>(tokens));
  std::vector<uint8_t> raw(token_bytes);
  std::vector<uint16_t> ids(static_cast<size_t>(shape.ids_per_token()));
  for (uint64_t t = 0; t < tokens; ++t) {
    in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    if (static_cast<size_t>(in.gcount()) != raw.size()) throw InputError(name + ": read error at token " + std::to_string(t));
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = id_bytes(shape) == 1 ? raw[i] : static_cast<uint16_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
    if (std::string why = check_token(shape, ids); !why.empty())
      throw InputError(name + ": token " + std::to_string(t) + " " + why);
    trace.append_token(ids);
  }
  return trace;
}

}  // namespace ossrun::offload
