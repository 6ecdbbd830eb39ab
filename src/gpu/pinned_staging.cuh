// Uploads of expert slices from the mmap'd checkpoint to the device, through two pinned staging buffers on a
// copy stream of their own, driven by a host thread of their own: the forward pass submits and goes on; the
// compute stream never waits unless it asks to (order_after, for a slice it is about to read).
//
// The worker takes jobs in FIFO order. For each: the copy stream first waits on the job's `after` event (the
// last kernel that read the destination slot), then every piece is copied in chunks: memcpy from the mmap
// into staging buffer i % 2 (page faults, hence disk reads, happen here, on the worker), cudaMemcpyAsync from
// it on the copy stream, an event when that buffer may be refilled. So the host fills one buffer while the
// link drains the other. The job's completion event follows its last copy.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ossrun::gpu {

struct UploadPiece {
  const std::byte* src = nullptr;  // host (the mmap)
  size_t bytes = 0;
  void* dst = nullptr;  // device
};

struct UploadJob {
  std::array<UploadPiece, 6> pieces{};
  int n_pieces = 0;
  cudaEvent_t after = nullptr;  // optional: recorded on the compute stream; the copies start after it
};

class PinnedUploader {
 public:
  // Two pinned buffers of staging_bytes each (> 0).
  explicit PinnedUploader(size_t staging_bytes);
  ~PinnedUploader();
  PinnedUploader(const PinnedUploader&) = delete;
  PinnedUploader& operator=(const PinnedUploader&) = delete;

  // Queues a job; returns its sequence number (0, 1, 2, ... in submission order). Rethrows a failure of the
  // worker (a CUDA error) here or in the next call.
  uint64_t submit(const UploadJob& job);
  // Jobs completed on the device, as a count: jobs 0 .. completed() - 1 are done. Polls events; never blocks.
  uint64_t completed();
  // Blocks the host until job `seq` completed.
  void wait(uint64_t seq);
  // Makes `stream` wait (on the device) for job `seq`; blocks the host only until the worker has issued
  // that job's copies.
  void order_after(uint64_t seq, cudaStream_t stream);

  uint64_t bytes_uploaded() const;  // by submitted jobs (all of them, once issued)
  size_t host_bytes() const { return 2 * staging_bytes_; }
  cudaStream_t stream() const { return stream_; }

 private:
  struct Issued {
    uint64_t seq;
    cudaEvent_t done;
  };
  void worker();
  void run_job(const UploadJob& job);
  void rethrow_failure();
  cudaEvent_t take_event();

  size_t staging_bytes_;
  std::array<std::byte*, 2> staging_{};
  std::array<cudaEvent_t, 2> staging_free_{};
  int next_buffer_ = 0;
  cudaStream_t stream_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<UploadJob> queue_;       // submitted, not yet issued
  std::deque<Issued> issued_;         // issued, not known complete (FIFO)
  std::vector<cudaEvent_t> spare_;    // completion events for reuse
  uint64_t submitted_ = 0, issued_count_ = 0, completed_ = 0;
  uint64_t bytes_ = 0;
  bool stop_ = false;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace ossrun::gpu
