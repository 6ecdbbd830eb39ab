#include "src/model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "src/model/error.h"

namespace ossrun {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw InputError(path.string() + ": " + what);
}

uint64_t read_le_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

TensorEntry parse_entry(const std::filesystem::path& path, const std::string& name, const json& j) {
  auto bad = [&](const std::string& what) { fail(path, "tensor '" + name + "': " + what); };
  if (!j.is_object()) bad("header entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!j.contains(key)) bad(std::string("header entry has no \"") + key + "\"");

  const json& jd = j["dtype"];
  if (!jd.is_string()) bad("\"dtype\" is not a string");
  auto dtype = parse_dtype(jd.get<std::string>());
  if (!dtype) bad("unknown dtype \"" + jd.get<std::string>() + "\"");

  TensorEntry e{*dtype, {}, 0, 0};
  const json& js = j["shape"];
  if (!js.is_array()) bad("\"shape\" is not an array");
  uint64_t numel = 1;
  for (const json& d : js) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) bad("\"shape\" has an entry that is not a non-negative integer: " + d.dump());
    uint64_t dim = d.get<uint64_t>();
    if (__builtin_mul_overflow(numel, dim, &numel)) bad("shape " + js.dump() + " overflows");
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, dtype_size(*dtype), &nbytes)) bad("shape " + js.dump() + " overflows");

  const json& jo = j["data_offsets"];
  if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
    bad("\"data_offsets\" is not a pair of non-negative integers: " + jo.dump());
  e.begin = jo[0].get<uint64_t>();
  e.end = jo[1].get<uint64_t>();
  if (e.end < e.begin) bad("data_offsets " + jo.dump() + " end before they begin");
  if (e.end - e.begin != nbytes)
    bad("data_offsets " + jo.dump() + " hold " + std::to_string(e.end - e.begin) + " bytes but " + jd.get<std::string>() +
        " x " + js.dump() + " needs " + std::to_string(nbytes));
  return e;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(path) {
  const auto all = file_.bytes();
  if (all.size() < 8)
    fail(path, "truncated: " + std::to_string(all.size()) + " bytes, fewer than the 8-byte header length");
  const uint64_t header_len = read_le_u64(all.data());
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the " + std::to_string(kMaxHeaderBytes) + "-byte limit");
  if (header_len > all.size() - 8)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(all.size()) + " bytes): truncated or not a safetensors file");
  data_offset_ = 8 + header_len;

  const char* hdr = reinterpret_cast<const char*>(all.data() + 8);
  json j;
  try {
    j = json::parse(hdr, hdr + header_len);
  } catch (const json::parse_error& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(path, "header JSON is not an object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(path, "\"__metadata__\" is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail(path, "\"__metadata__\" value for \"" + m.key() + "\" is not a string");
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries_.emplace(it.key(), parse_entry(path, it.key(), *it));
  }

  // Tensors must tile the data section: sorted by offset, each starting where the previous ended, the last
  // ending at the end of the file. This rejects overlaps, gaps, out-of-order entries and truncated data.
  std::vector<std::pair<const std::string*, const TensorEntry*>> order;
  for (const auto& [name, e] : entries_) order.emplace_back(&name, &e);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second->begin != b.second->begin ? a.second->begin < b.second->begin : a.second->end < b.second->end;
  });
  const uint64_t data_size = all.size() - data_offset_;
  uint64_t expect = 0;
  const std::string* prev = nullptr;
  for (const auto& [name, e] : order) {
    if (e->begin < expect)
      fail(path, "tensor '" + *name + "' at data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                     ") overlaps tensor '" + (prev ? *prev : std::string("?")) + "', which ends at " + std::to_string(expect));
    if (e->begin > expect)
      fail(path, "tensor '" + *name + "' starts at data offset " + std::to_string(e->begin) + " but the previous tensor ends at " +
                     std::to_string(expect) + " (a gap in the data section)");
    if (e->end > data_size)
      fail(path, "tensor '" + *name + "' at data_offsets [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                     ") lies outside the data section (" + std::to_string(data_size) + " bytes): the file is truncated");
    expect = e->end;
    prev = name;
  }
  if (expect != data_size)
    fail(path, "data section has " + std::to_string(data_size) + " bytes but the tensors cover " + std::to_string(expect) +
                   " (trailing bytes)");
}

TensorView SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path(), "no tensor named '" + name + "'");
  const TensorEntry& e = it->second;
  TensorView v;
  v.name = name;
  v.dtype = e.dtype;
  v.shape = e.shape;
  v.bytes = file_.bytes().subspan(data_offset_ + e.begin, e.end - e.begin);
  return v;
}

}  // namespace ossrun
