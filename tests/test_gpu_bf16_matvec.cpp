// bf16_matvec (gpu_kernels/) against a float64 scalar reference: random bf16 weights, odd row counts and
// K values (down to one 16-byte chunk per row, up to the largest K), with and without bias, more rows than
// resident warps; y is poisoned before each launch so an unwritten row fails.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gpu_kernels/bf16_matvec.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "src/model/bf16.h"
#include "src/model/error.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;
using gpu::DeviceBuffer;

TEST_CASE("gpu bf16_matvec: matches the float64 reference") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  struct Case {
    int64_t rows;
    int K;
    bool bias;
  };
  const Case cases[] = {{1, 8, true},       {7, 8, false},       {33, 296, true},   {513, 2880, true},
                        {4096, 2880, true}, {2881, 4096, false}, {100, 12288, true}, {3, 65536, false},
                        {50000, 64, true}};
  for (const Case& c : cases) {
    CAPTURE(c.rows);
    CAPTURE(c.K);
    CAPTURE(c.bias);
    std::vector<uint16_t> W(c.rows * c.K), bias(c.bias ? c.rows : 0);
    std::vector<float> x(c.K);
    for (uint16_t& w : W) w = float_to_bf16(u(rng));
    for (uint16_t& b : bias) b = float_to_bf16(u(rng));
    for (float& v : x) v = u(rng);
    std::vector<double> want(c.rows);
    for (int64_t r = 0; r < c.rows; ++r) {
      double s = c.bias ? bf16_to_float(bias[r]) : 0.0;
      for (int k = 0; k < c.K; ++k) s += static_cast<double>(bf16_to_float(W[r * c.K + k])) * x[k];
      want[r] = s;
    }
    DeviceBuffer<uint16_t> W_d(W), bias_d(bias);
    DeviceBuffer<float> x_d(x), y_d(c.rows);
    OSSRUN_CUDA_CHECK(cudaMemset(y_d.get(), 0xff, y_d.bytes()));  // NaN
    gpu::bf16_matvec(W_d.get(), c.bias ? bias_d.get() : nullptr, x_d.get(), y_d.get(), c.rows, c.K, nullptr);
    test::check_close("y", y_d.download(), want, std::max(test::max_abs(want), 1.0), 2e-5);
  }
}

TEST_CASE("gpu bf16_matvec: sizes and alignments the kernel cannot take are rejected before any launch") {
  // Checked before any device access: these run without a GPU too.
  const auto* W = reinterpret_cast<const uint16_t*>(uintptr_t{0x1000});
  const auto* x = reinterpret_cast<const float*>(uintptr_t{0x2000});
  auto* y = reinterpret_cast<float*>(uintptr_t{0x3000});
  CHECK_THROWS_AS(gpu::bf16_matvec(W, nullptr, x, y, 4, 12, nullptr), InputError);  // K not a multiple of 8
  CHECK_THROWS_AS(gpu::bf16_matvec(W, nullptr, x, y, 4, 0, nullptr), InputError);
  CHECK_THROWS_AS(gpu::bf16_matvec(W, nullptr, x, y, 4, gpu::kBf16MatvecMaxK + 8, nullptr), InputError);
  CHECK_THROWS_AS(gpu::bf16_matvec(W + 1, nullptr, x, y, 4, 8, nullptr), InputError);  // W misaligned
  CHECK_THROWS_AS(gpu::bf16_matvec(W, nullptr, x + 1, y, 4, 8, nullptr), InputError);  // x misaligned
  CHECK_THROWS_AS(gpu::bf16_matvec(W, nullptr, x, y, -1, 8, nullptr), InputError);
}
