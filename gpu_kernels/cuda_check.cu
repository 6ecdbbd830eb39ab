#include <cstdio>

#include "gpu_kernels/cuda_check.cuh"

namespace ossrun::gpu {
namespace {

std::string describe_failure(cudaError_t err, const char* statement, const char* file, int line) {
  return std::string("CUDA error at ") + file + ":" + std::to_string(line) + ": " + statement + " returned " +
         cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

}  // namespace

void check_cuda(cudaError_t err, const char* statement, const char* file, int line) {
  if (err == cudaSuccess) return;
  const std::string msg = describe_failure(err, statement, file, line);
  std::fprintf(stderr, "%s\n", msg.c_str());
  throw CudaError(msg);
}

void check_cuda_noexcept(cudaError_t err, const char* statement, const char* file, int line) noexcept {
  if (err == cudaSuccess) return;
  std::fprintf(stderr, "%s\n", describe_failure(err, statement, file, line).c_str());
}

}  // namespace ossrun::gpu
