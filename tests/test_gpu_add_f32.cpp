// add_f32 (gpu_kernels/) against the same sum on the host: exact (one fp32 add per element), for lengths
// around the block and grid boundaries; n = 0 leaves y alone; a negative n is refused.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "gpu_kernels/add_f32.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "src/model/error.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;

TEST_CASE("gpu add_f32: y += x exactly for lengths around the block and grid sizes") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  for (int64_t n : {int64_t{1}, int64_t{255}, int64_t{256}, int64_t{257}, int64_t{2880}, int64_t{4096 * 256 + 3}}) {
    CAPTURE(n);
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (float& v : x) v = u(rng);
    for (float& v : y) v = u(rng);
    gpu::DeviceBuffer<float> xd(x), yd(y);
    gpu::add_f32(yd.get(), xd.get(), n, nullptr);
    const std::vector<float> got = yd.download();
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) bad += got[i] != y[i] + x[i];
    CHECK(bad == 0);
  }
  gpu::DeviceBuffer<float> yd(std::vector<float>{1.0f});
  gpu::add_f32(yd.get(), nullptr, 0, nullptr);
  CHECK(yd.download() == std::vector<float>{1.0f});
  CHECK_THROWS_AS(gpu::add_f32(yd.get(), nullptr, -1, nullptr), InputError);
}
