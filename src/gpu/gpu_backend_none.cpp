// A build without CUDA: the GPU backend is never available.
#include "src/gpu/gpu_backend.h"

#include "src/model/error.h"

namespace ossrun::gpu {

std::optional<std::string> gpu_unavailable_reason(const Checkpoint&, const GpuForwardOptions&) {
  return "this ossrun was built without CUDA";
}

std::unique_ptr<engine::Forward> make_gpu_forward(const Checkpoint&, const GpuForwardOptions&) {
  throw InputError("the GPU backend is not available: this ossrun was built without CUDA");
}

double measure_copy_gbps(int) { throw InputError("no GPU bandwidth to measure: this ossrun was built without CUDA"); }

}  // namespace ossrun::gpu
