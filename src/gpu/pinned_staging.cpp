#include "src/gpu/pinned_staging.cuh"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "gpu_kernels/cuda_check.cuh"

namespace ossrun::gpu {

PinnedUploader::PinnedUploader(size_t staging_bytes) : staging_bytes_(staging_bytes) {
  if (staging_bytes == 0) throw std::invalid_argument("PinnedUploader: staging buffers of 0 bytes");
  OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  for (int i = 0; i < 2; ++i) {
    OSSRUN_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&staging_[i]), staging_bytes, cudaHostAllocDefault));
    OSSRUN_CUDA_CHECK(cudaEventCreateWithFlags(&staging_free_[i], cudaEventDisableTiming));
  }
  thread_ = std::thread([this] { worker(); });
}

PinnedUploader::~PinnedUploader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamSynchronize(stream_));
  for (const Issued& i : issued_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(i.done));
  for (cudaEvent_t e : spare_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(e));
  for (int i = 0; i < 2; ++i) {
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(staging_free_[i]));
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaFreeHost(staging_[i]));
  }
  OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(stream_));
}

void PinnedUploader::rethrow_failure() {
  if (failure_) std::rethrow_exception(failure_);
}

uint64_t PinnedUploader::submit(const UploadJob& job) {
  std::lock_guard lock(mu_);
  rethrow_failure();
  queue_.push_back(job);
  cv_.notify_all();
  return submitted_++;
}

// Called with mu_ held.
cudaEvent_t PinnedUploader::take_event() {
  if (!spare_.empty()) {
    cudaEvent_t e = spare_.back();
    spare_.pop_back();
    return e;
  }
  cudaEvent_t e;
  OSSRUN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

void PinnedUploader::worker() {
  for (;;) {
    UploadJob job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = queue_.front();
    }
    try {
      run_job(job);
      std::lock_guard lock(mu_);
      const cudaEvent_t done = take_event();
      OSSRUN_CUDA_CHECK(cudaEventRecord(done, stream_));
      issued_.push_back({issued_count_++, done});
      queue_.pop_front();
    } catch (...) {
      std::lock_guard lock(mu_);
      failure_ = std::current_exception();
      stop_ = true;
    }
    cv_.notify_all();
  }
}

void PinnedUploader::run_job(const UploadJob& job) {
  if (job.after) OSSRUN_CUDA_CHECK(cudaStreamWaitEvent(stream_, job.after, 0));
  uint64_t bytes = 0;
  for (int p = 0; p < job.n_pieces; ++p) {
    const UploadPiece& piece = job.pieces[static_cast<size_t>(p)];
    for (size_t at = 0; at < piece.bytes; at += staging_bytes_) {
      const size_t n = std::min(staging_bytes_, piece.bytes - at);
      const int b = next_buffer_;
      next_buffer_ ^= 1;
      OSSRUN_CUDA_CHECK(cudaEventSynchronize(staging_free_[b]));  // its previous copy has left the buffer
      std::memcpy(staging_[b], piece.src + at, n);
      OSSRUN_CUDA_CHECK(cudaMemcpyAsync(static_cast<std::byte*>(piece.dst) + at, staging_[b], n,
                                        cudaMemcpyHostToDevice, stream_));
      OSSRUN_CUDA_CHECK(cudaEventRecord(staging_free_[b], stream_));
    }
    bytes += piece.bytes;
  }
  std::lock_guard lock(mu_);
  bytes_ += bytes;
}

uint64_t PinnedUploader::completed() {
  std::lock_guard lock(mu_);
  rethrow_failure();
  while (!issued_.empty()) {
    const cudaError_t q = cudaEventQuery(issued_.front().done);
    if (q == cudaErrorNotReady) break;
    OSSRUN_CUDA_CHECK(q);
    spare_.push_back(issued_.front().done);
    issued_.pop_front();
    ++completed_;
  }
  return completed_;
}

void PinnedUploader::wait(uint64_t seq) {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return failure_ || issued_count_ > seq; });
    rethrow_failure();
    if (seq < completed_) return;
    for (const Issued& i : issued_)
      if (i.seq == seq) OSSRUN_CUDA_CHECK(cudaEventSynchronize(i.done));
  }
  completed();
}

void PinnedUploader::order_after(uint64_t seq, cudaStream_t stream) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return failure_ || issued_count_ > seq; });
  rethrow_failure();
  for (const Issued& i : issued_)
    if (i.seq == seq) OSSRUN_CUDA_CHECK(cudaStreamWaitEvent(stream, i.done, 0));
  // Not found: already completed, nothing to wait for.
}

uint64_t PinnedUploader::bytes_uploaded() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace ossrun::gpu
