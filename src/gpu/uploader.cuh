// Copies host bytes (usually the mmap'd checkpoint) into device memory through two pinned staging buffers
// on its own copy stream: while the DMA of one buffer runs, the CPU fills the other (reading the mmap is the
// slow part when its pages are not in the page cache). Reports progress per stage for a progress bar.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "src/engine/forward.h"

namespace ossrun::gpu {

class Uploader {
 public:
  using ProgressFn = std::function<void(const engine::LoadProgress&)>;
  explicit Uploader(ProgressFn on_progress = {}, size_t chunk_bytes = size_t{32} << 20);
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // Starts a stage of `total` bytes named `what` ("dense weights"); progress counts from 0.
  void begin(std::string what, uint64_t total);
  // Enqueues the copy of `bytes` from src (any host memory) to dst (device). Returns once src has been read
  // into staging: src may be released after the call, dst is complete after finish().
  void upload(void* dst, const void* src, size_t bytes);
  // Waits for every enqueued copy and reports the stage complete.
  void finish();

  uint64_t pinned_bytes() const { return 2 * chunk_bytes_; }

 private:
  ProgressFn on_progress_;
  size_t chunk_bytes_;
  cudaStream_t stream_ = nullptr;
  void* staging_[2] = {nullptr, nullptr};
  cudaEvent_t copied_[2] = {nullptr, nullptr};  // the DMA out of staging_[i] is done
  int next_ = 0;
  std::string what_;
  uint64_t total_ = 0, done_ = 0, reported_ = 0;
};

}  // namespace ossrun::gpu
