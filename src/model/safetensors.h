// One safetensors file, memory-mapped read-only.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end)}, optional "__metadata__"}, then the data section.
// Offsets are relative to the first byte after the header. The header is validated completely when the
// file is opened (like the reference implementation: tensors tile the data section contiguously, in order,
// with no gap or overlap, and each byte range equals dtype size x shape), so every view handed out later
// is in bounds.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "src/model/mapped_file.h"
#include "src/model/tensor_view.h"

namespace ossrun {

struct TensorEntry {
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data section
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Opens and validates; throws InputError naming the file (and tensor) on any defect.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  const std::map<std::string, TensorEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // A view of `name`; throws InputError when the file has no such tensor.
  TensorView view(const std::string& name) const;
  // Offset of the data section from the start of the file (8 + header length).
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return file_.size(); }

  // The largest header we accept, as the reference implementation does (100 MB).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

 private:
  MappedFile file_;
  uint64_t data_offset_ = 0;
  std::map<std::string, TensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ossrun
