// An owning page-locked host allocation (cudaHostAlloc/cudaFreeHost): the host side of asynchronous copies.
// Move-only; the contents start uninitialized.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "gpu_kernels/cuda_check.cuh"

namespace ossrun::gpu {

template <typename T>
class PinnedArray {
 public:
  PinnedArray() = default;
  explicit PinnedArray(size_t count) : count_(count) {
    if (count_ > 0) OSSRUN_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&ptr_), count_ * sizeof(T), cudaHostAllocDefault));
  }
  ~PinnedArray() {
    if (ptr_) OSSRUN_CUDA_CHECK_NOEXCEPT(cudaFreeHost(ptr_));
  }
  PinnedArray(PinnedArray&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  PinnedArray& operator=(PinnedArray&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  PinnedArray(const PinnedArray&) = delete;
  PinnedArray& operator=(const PinnedArray&) = delete;

  T* get() const { return ptr_; }
  T& operator[](size_t i) const { return ptr_[i]; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace ossrun::gpu
