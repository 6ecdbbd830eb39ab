// Page-cache hints for expert slices behind the mmap, for machines whose RAM is smaller than the model: ask
// the kernel to read ahead the experts the next layer will likely need (madvise WILLNEED) and to reclaim
// first the pages of experts that live on the GPU or are cold (madvise COLD), and count what had to come
// from disk: pages of a slice not in memory just before it is read (mincore), and this process's
// read_bytes in /proc/self/io (what the kernel actually read from storage for us, readahead included).
//
// Works on byte ranges (a slice's tensors), so it knows nothing of layers or policies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ossrun::offload {

struct ByteRange {
  const std::byte* data = nullptr;
  size_t size = 0;
};

class ExpertPaging {
 public:
  ExpertPaging();

  // Hints; errors (EINVAL on a kernel without MADV_COLD) are ignored: they are only hints.
  void will_need(std::span<const ByteRange> ranges);
  void cold(std::span<const ByteRange> ranges);
  // Bytes of the ranges' pages not resident in memory now (mincore); counts them as read from disk, on the
  // assumption that the caller reads the ranges next.
  uint64_t count_missing(std::span<const ByteRange> ranges);

  uint64_t missing_bytes() const { return missing_bytes_; }  // sum of count_missing()
  // read_bytes of /proc/self/io since construction; 0 where the file is not readable.
  uint64_t disk_read_bytes() const;

 private:
  size_t page_ = 4096;
  uint64_t missing_bytes_ = 0;
  uint64_t read_bytes_at_start_ = 0;
  std::vector<unsigned char> mincore_;  // one byte per page of the range being checked
};

// read_bytes from /proc/self/io, or 0 where unavailable.
uint64_t process_read_bytes();

}  // namespace ossrun::offload
