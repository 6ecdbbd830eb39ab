// The one way CUDA calls are checked: OSSRUN_CUDA_CHECK(call) around every runtime call, and
// OSSRUN_CUDA_CHECK_LAUNCH() right after every kernel launch. A failure prints the statement, the file and
// line, and CUDA's error string to stderr, then throws CudaError carrying the same text.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ossrun::gpu {

class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& what) : std::runtime_error(what) {}
};

// Prints and throws when err is not cudaSuccess.
void check_cuda(cudaError_t err, const char* statement, const char* file, int line);
// For destructors: prints, never throws.
void check_cuda_noexcept(cudaError_t err, const char* statement, const char* file, int line) noexcept;

}  // namespace ossrun::gpu

#define OSSRUN_CUDA_CHECK(call) ::ossrun::gpu::check_cuda((call), #call, __FILE__, __LINE__)
#define OSSRUN_CUDA_CHECK_NOEXCEPT(call) ::ossrun::gpu::check_cuda_noexcept((call), #call, __FILE__, __LINE__)
// A launch reports bad configurations (too many threads, too much shared memory) through cudaGetLastError.
#define OSSRUN_CUDA_CHECK_LAUNCH() ::ossrun::gpu::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
