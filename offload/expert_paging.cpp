#include "offload/expert_paging.h"

#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace ossrun::offload {
namespace {

// The pages that cover [data, data + size): outward for hints that read (a neighbour's edge page read too
// costs nothing), inward for hints that drop (never a neighbour's page).
struct PageSpan {
  uintptr_t begin = 0, end = 0;
};
PageSpan outward(const ByteRange& r, size_t page) {
  const auto a = reinterpret_cast<uintptr_t>(r.data);
  return {a / page * page, (a + r.size + page - 1) / page * page};
}
PageSpan inward(const ByteRange& r, size_t page) {
  const auto a = reinterpret_cast<uintptr_t>(r.data);
  const uintptr_t b = (a + page - 1) / page * page, e = (a + r.size) / page * page;
  return {b, e > b ? e : b};
}

void advise(std::span<const ByteRange> ranges, size_t page, int advice, bool inner) {
  for (const ByteRange& r : ranges) {
    if (r.data == nullptr || r.size == 0) continue;
    const PageSpan p = inner ? inward(r, page) : outward(r, page);
    if (p.end > p.begin) (void)madvise(reinterpret_cast<void*>(p.begin), p.end - p.begin, advice);
  }
}

}  // namespace

uint64_t process_read_bytes() {
  std::ifstream in("/proc/self/io");
  for (std::string key; in >> key;) {
    uint64_t value = 0;
    if (!(in >> value)) break;
    if (key == "read_bytes:") return value;
  }
  return 0;
}

ExpertPaging::ExpertPaging() : read_bytes_at_start_(process_read_bytes()) {
  const long p = sysconf(_SC_PAGESIZE);
  if (p > 0) page_ = static_cast<size_t>(p);
}

void ExpertPaging::will_need(std::span<const ByteRange> ranges) { advise(ranges, page_, MADV_WILLNEED, false); }

void ExpertPaging::cold(std::span<const ByteRange> ranges) {
#ifdef MADV_COLD
  advise(ranges, page_, MADV_COLD, true);
#else
  (void)ranges;
#endif
}

uint64_t ExpertPaging::count_missing(std::span<const ByteRange> ranges) {
  uint64_t missing = 0;
  std::vector<unsigned char>& vec = mincore_;
  for (const ByteRange& r : ranges) {
    if (r.data == nullptr || r.size == 0) continue;
    const PageSpan p = outward(r, page_);
    const size_t pages = (p.end - p.begin) / page_;
    vec.resize(pages);
    if (mincore(reinterpret_cast<void*>(p.begin), p.end - p.begin, vec.data()) != 0) continue;
    for (unsigned char v : vec) missing += (v & 1) ? 0 : page_;
  }
  missing_bytes_ += missing;
  return missing;
}

uint64_t ExpertPaging::disk_read_bytes() const {
  const uint64_t now = process_read_bytes();
  return now > read_bytes_at_start_ ? now - read_bytes_at_start_ : 0;
}

}  // namespace ossrun::offload
