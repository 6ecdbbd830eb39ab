// A read-only memory map of a whole file. The mapping lives as long as the object; views into it are
// plain spans. Moving is allowed, copying is not.
#pragma once
#include <cstddef>
#include <filesystem>
#include <span>

namespace ossrun {

class MappedFile {
 public:
  // Maps `path` read-only. Throws InputError naming the file when it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ossrun
