#include "src/gpu/uploader.cuh"

#include <algorithm>
#include <cstring>

#include "gpu_kernels/cuda_check.cuh"

namespace ossrun::gpu {

Uploader::Uploader(ProgressFn on_progress, size_t chunk_bytes)
    : on_progress_(std::move(on_progress)), chunk_bytes_(chunk_bytes) {
  OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  for (int i = 0; i < 2; ++i) {
    OSSRUN_CUDA_CHECK(cudaMallocHost(&staging_[i], chunk_bytes_));
    OSSRUN_CUDA_CHECK(cudaEventCreateWithFlags(&copied_[i], cudaEventDisableTiming));
    OSSRUN_CUDA_CHECK(cudaEventRecord(copied_[i], stream_));
  }
}

Uploader::~Uploader() {
  OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamSynchronize(stream_));
  for (int i = 0; i < 2; ++i) {
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(copied_[i]));
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaFreeHost(staging_[i]));
  }
  OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(stream_));
}

void Uploader::begin(std::string what, uint64_t total) {
  what_ = std::move(what);
  total_ = total;
  done_ = reported_ = 0;
  if (on_progress_) on_progress_({what_, 0, total_});
}

void Uploader::upload(void* dst, const void* src, size_t bytes) {
  auto* d = static_cast<std::byte*>(dst);
  const auto* s = static_cast<const std::byte*>(src);
  for (size_t at = 0; at < bytes;) {
    const size_t n = std::min(chunk_bytes_, bytes - at);
    // Wait until the DMA that last read this staging buffer is done, refill it, and queue its copy.
    OSSRUN_CUDA_CHECK(cudaEventSynchronize(copied_[next_]));
    std::memcpy(staging_[next_], s + at, n);
    OSSRUN_CUDA_CHECK(cudaMemcpyAsync(d + at, staging_[next_], n, cudaMemcpyHostToDevice, stream_));
    OSSRUN_CUDA_CHECK(cudaEventRecord(copied_[next_], stream_));
    next_ ^= 1;
    at += n;
    done_ += n;
    // Report about every 1% (and never more often than a chunk).
    if (on_progress_ && (done_ - reported_) * 100 >= total_) {
      on_progress_({what_, done_, total_});
      reported_ = done_;
    }
  }
}

void Uploader::finish() {
  OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (on_progress_) on_progress_({what_, total_, total_});
}

}  // namespace ossrun::gpu
