// mxfp4_moe_gemm (gpu_kernels/) against a float64 reference built on src/model/mxfp4.h: odd batch sizes
// (1, 3, 17, 100, 513), choices of -1 skipped, every token routed to one expert (several tiles of one slot),
// experts with no tokens, many slots with a token or two each, odd H and I (partial weight tiles), the
// gpt-oss-20b shape, n = 1 against mxfp4_moe_matvec, bit-identical repeats, bad slots reported, bad shapes
// refused. Workspace intermediates are NaN-poisoned between launches. Prints the largest error measured.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/mxfp4_moe_gemm.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "src/model/bf16.h"
#include "src/model/error.h"
#include "src/model/mxfp4.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;
using gpu::DeviceBuffer;
using gpu::ExpertSlotMxfp4;

namespace {

// Allowed error relative to the largest |contribution| of the batch: activations and inputs enter the
// tensor cores as bf16 hi + lo (about 2^-16 each), fp32 accumulation.
constexpr double kRtol = 1e-4;

// One expert, dequantized to float (the reference) and in the checkpoint layout (the device copy).
struct HostExpert {
  std::vector<uint8_t> gu_blocks, gu_scales;  // (2I, H/32, 16), (2I, H/32)
  std::vector<uint16_t> gu_bias;              // (2I) bf16
  std::vector<uint8_t> dn_blocks, dn_scales;  // (H, I/32, 16), (H, I/32)
  std::vector<uint16_t> dn_bias;              // (H) bf16
  std::vector<float> gu, dn;                  // dequantized (2I, H), (H, I)
};

// Scales centred so that a K-long dot product of random E2M1 values and inputs in [-1, 1] lands near 4 (the
// SwiGLU clamps at 7 are reached and left alone in about equal measure).
void fill_mxfp4(std::vector<uint8_t>& blocks, std::vector<uint8_t>& scales, std::vector<float>& dense, size_t rows,
                int K, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255), spread(-3, 2);
  blocks.resize(rows * K / 2);
  scales.resize(rows * K / 32);
  dense.resize(rows * K);
  for (uint8_t& b : blocks) b = static_cast<uint8_t>(byte(rng));
  const int centre = 127 - static_cast<int>(std::lround(std::log2(std::sqrt(static_cast<double>(K)) * 1.69 / 4.0)));
  for (uint8_t& s : scales) s = static_cast<uint8_t>(centre + spread(rng));
  for (size_t r = 0; r < rows; ++r)
    mxfp4::dequantize_row(blocks.data() + r * K / 2, scales.data() + r * K / 32, K, dense.data() + r * K);
}

std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<uint16_t> v(n);
  for (uint16_t& b : v) b = float_to_bf16(u(rng));
  return v;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = u(rng);
  return v;
}

HostExpert random_expert(int H, int I, std::mt19937& rng) {
  HostExpert e;
  fill_mxfp4(e.gu_blocks, e.gu_scales, e.gu, 2 * static_cast<size_t>(I), H, rng);
  fill_mxfp4(e.dn_blocks, e.dn_scales, e.dn, H, I, rng);
  e.gu_bias = random_bf16(2 * static_cast<size_t>(I), rng);
  e.dn_bias = random_bf16(H, rng);
  return e;
}

// W2 swiglu(W1 x + b1) + b2 in float64.
std::vector<double> ref_expert(const HostExpert& e, const float* x, int H, int I) {
  const gpu::SwigluParams p;
  std::vector<double> act(I), y(H);
  for (int j = 0; j < I; ++j) {
    double h[2];
    for (int r = 0; r < 2; ++r) {
      const float* w = e.gu.data() + static_cast<size_t>(2 * j + r) * H;
      double s = bf16_to_float(e.gu_bias[2 * j + r]);
      for (int k = 0; k < H; ++k) s += static_cast<double>(w[k]) * x[k];
      h[r] = s;
    }
    const double gate = std::min(h[0], static_cast<double>(p.limit));
    const double up = std::clamp(h[1], -static_cast<double>(p.limit), static_cast<double>(p.limit));
    act[j] = gate / (1.0 + std::exp(-static_cast<double>(p.alpha) * gate)) * (up + 1.0);
  }
  for (int r = 0; r < H; ++r) {
    const float* w = e.dn.data() + static_cast<size_t>(r) * I;
    double s = bf16_to_float(e.dn_bias[r]);
    for (int k = 0; k < I; ++k) s += static_cast<double>(w[k]) * act[k];
    y[r] = s;
  }
  return y;
}

struct DeviceExperts {
  std::vector<DeviceBuffer<uint8_t>> bytes;
  std::vector<DeviceBuffer<uint16_t>> halves;
  std::vector<ExpertSlotMxfp4> host_table;
  DeviceBuffer<ExpertSlotMxfp4> table;

  explicit DeviceExperts(const std::vector<HostExpert>& experts) {
    for (const HostExpert& e : experts) {
      auto put8 = [&](const std::vector<uint8_t>& v) { return bytes.emplace_back(v).get(); };
      auto put16 = [&](const std::vector<uint16_t>& v) { return halves.emplace_back(v).get(); };
      host_table.push_back({put8(e.gu_blocks), put8(e.gu_scales), put16(e.gu_bias), put8(e.dn_blocks),
                            put8(e.dn_scales), put16(e.dn_bias)});
    }
    table = DeviceBuffer<ExpertSlotMxfp4>(host_table);
  }
};

struct Batch {
  int n, k;
  std::vector<int32_t> slots;  // (n, k)
  std::vector<float> weights;  // (n, k)
  std::vector<float> x;        // (n, H)
  std::vector<float> out;      // (n, H) initial
};

Batch random_batch(int n, int k, int n_slots, int H, double skip_probability, std::mt19937& rng) {
  Batch b{n, k, std::vector<int32_t>(static_cast<size_t>(n) * k), std::vector<float>(static_cast<size_t>(n) * k),
          random_floats(static_cast<size_t>(n) * H, rng), random_floats(static_cast<size_t>(n) * H, rng)};
  std::uniform_int_distribution<int> slot(0, n_slots - 1);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::uniform_real_distribution<float> weight(0.05f, 1.0f);
  for (size_t i = 0; i < b.slots.size(); ++i) {
    b.slots[i] = coin(rng) < skip_probability ? -1 : slot(rng);
    b.weights[i] = weight(rng);
  }
  return b;
}

std::vector<float> run_gpu(const DeviceExperts& dev, int n_slots, const Batch& b, int H, int I,
                           gpu::MoeGemmWorkspace& ws, gpu::MoeGemmTile tile = gpu::MoeGemmTile::Auto) {
  DeviceBuffer<int32_t> slots_d(b.slots);
  DeviceBuffer<float> weights_d(b.weights), x_d(b.x), out_d(b.out);
  gpu::mxfp4_moe_gemm(dev.table.get(), n_slots, slots_d.get(), weights_d.get(), b.n, b.k, x_d.get(), out_d.get(),
                      {H, I, n_slots}, {}, ws, nullptr, tile);
  OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
  return out_d.download();
}

// out_init + sum over valid choices of weight * expert(x), in float64; `scale` gets max |contribution|.
std::vector<double> reference(const std::vector<HostExpert>& experts, const Batch& b, int H, int I, double& scale) {
  std::vector<double> want(b.out.begin(), b.out.end());
  scale = 1.0;  // out_init is within [-1, 1]
  for (int t = 0; t < b.n; ++t) {
    std::vector<double> contribution(H, 0.0);
    for (int c = 0; c < b.k; ++c) {
      const int s = b.slots[t * b.k + c];
      if (s < 0 || s >= static_cast<int>(experts.size())) continue;
      const std::vector<double> y = ref_expert(experts[s], b.x.data() + static_cast<size_t>(t) * H, H, I);
      for (int r = 0; r < H; ++r) contribution[r] += b.weights[t * b.k + c] * y[r];
    }
    for (int r = 0; r < H; ++r) want[static_cast<size_t>(t) * H + r] += contribution[r];
    scale = std::max(scale, test::max_abs(contribution));
  }
  return want;
}

double worst_error(const std::vector<float>& got, const std::vector<double>& want, double scale) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]) / scale);
  return worst;
}

// Runs the batch with each tile shape twice (the second time after poisoning the workspace's intermediates by a
// run on NaN inputs) and checks every result against the reference.
void check_batch(const std::vector<HostExpert>& experts, const DeviceExperts& dev, int n_slots, const Batch& b, int H,
                 int I, gpu::MoeGemmWorkspace& ws, double& worst) {
  CAPTURE(b.n);
  CAPTURE(b.k);
  double scale = 0;
  const std::vector<double> want = reference(experts, b, H, I, scale);
  Batch poison = b;
  std::fill(poison.x.begin(), poison.x.end(), std::nanf(""));
  for (int32_t& s : poison.slots) s = s < 0 ? 0 : s;  // every choice live: NaN everywhere in the workspace
  for (gpu::MoeGemmTile tile : {gpu::MoeGemmTile::Auto, gpu::MoeGemmTile::N64, gpu::MoeGemmTile::N128}) {
    CAPTURE(gpu::moe_gemm_tile_name(tile));
    std::vector<float> got = run_gpu(dev, n_slots, b, H, I, ws, tile);
    test::check_close("out", got, want, scale, kRtol);
    worst = std::max(worst, worst_error(got, want, scale));
    run_gpu(dev, n_slots, poison, H, I, ws, tile);
    got = run_gpu(dev, n_slots, b, H, I, ws, tile);
    test::check_close("out after a NaN batch", got, want, scale, kRtol);
  }
  ws.check_errors();
}

}  // namespace

TEST_CASE("gpu mxfp4_moe_gemm: odd n, skipped choices, odd H and I, vs float64") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(5);
  double worst = 0;
  struct Shape {
    int H, I, n_slots;
  };
  for (const Shape& s : {Shape{96, 160, 6}, Shape{2080, 1056, 3}}) {
    CAPTURE(s.H);
    CAPTURE(s.I);
    std::vector<HostExpert> experts;
    for (int e = 0; e < s.n_slots; ++e) experts.push_back(random_expert(s.H, s.I, rng));
    const DeviceExperts dev(experts);
    const int max_n = s.H > 1000 ? 17 : 513;
    gpu::MoeGemmWorkspace ws(max_n, 4, s.n_slots, s.H, s.I);
    for (int n : {1, 3, 17, 100, 513}) {
      if (n > max_n) continue;
      for (int k : {1, 4})
        check_batch(experts, dev, s.n_slots, random_batch(n, k, s.n_slots, s.H, 0.2, rng), s.H, s.I, ws, worst);
    }
  }
  MESSAGE("largest error: " << worst << " of max |contribution|");
}

TEST_CASE("gpu mxfp4_moe_gemm: every token on one expert, idle experts, many slots") {
  if (!test::gpu_or_skip()) return;
  constexpr int H = 64, I = 96;
  std::mt19937 rng(6);
  double worst = 0;
  std::vector<HostExpert> experts;
  for (int e = 0; e < 300; ++e) experts.push_back(random_expert(H, I, rng));
  const DeviceExperts dev(experts);
  {  // 300 tokens all on slot 3 (five tiles of one slot), the other choice on slots 0-4 of 40: most idle
    gpu::MoeGemmWorkspace ws(300, 2, 40, H, I);
    Batch b = random_batch(300, 2, 5, H, 0.0, rng);
    for (int t = 0; t < b.n; ++t) b.slots[t * 2] = 3;
    check_batch(experts, dev, 40, b, H, I, ws, worst);
  }
  {  // 100 tokens x 4 choices over 300 slots: about one token per slot
    gpu::MoeGemmWorkspace ws(100, 4, 300, H, I);
    check_batch(experts, dev, 300, random_batch(100, 4, 300, H, 0.1, rng), H, I, ws, worst);
  }
  {  // every choice skipped: out unchanged
    gpu::MoeGemmWorkspace ws(7, 4, 3, H, I);
    check_batch(experts, dev, 3, random_batch(7, 4, 3, H, 1.0, rng), H, I, ws, worst);
  }
  MESSAGE("largest error: " << worst << " of max |contribution|");
}

TEST_CASE("gpu mxfp4_moe_gemm: gpt-oss-20b shape vs float64, n = 1 vs mxfp4_moe_matvec, repeats bit-identical") {
  if (!test::gpu_or_skip()) return;
  constexpr int H = 2880, I = 2880, kSlots = 8, k = 4;
  std::mt19937 rng(7);
  std::vector<HostExpert> experts;
  for (int e = 0; e < kSlots; ++e) experts.push_back(random_expert(H, I, rng));
  const DeviceExperts dev(experts);
  gpu::MoeGemmWorkspace ws(17, k, kSlots, H, I);
  double worst = 0;
  const Batch b = random_batch(17, k, kSlots, H, 0.1, rng);
  check_batch(experts, dev, kSlots, b, H, I, ws, worst);
  MESSAGE("largest error at H = I = 2880: " << worst << " of max |contribution|");

  const std::vector<float> first = run_gpu(dev, kSlots, b, H, I, ws);
  const std::vector<float> again = run_gpu(dev, kSlots, b, H, I, ws);
  CHECK(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)) == 0);

  // One token: the GEMM path against the one-token kernel (fp32 x, fp32 activations).
  Batch one = random_batch(1, k, kSlots, H, 0.0, rng);
  std::vector<gpu::ExpertChoice> choices;
  for (int c = 0; c < k; ++c) choices.push_back({one.slots[c], one.weights[c]});
  DeviceBuffer<gpu::ExpertChoice> choices_d(choices);
  DeviceBuffer<float> x_d(one.x), out_d(one.out);
  gpu::MoeWorkspace mv_ws(H, I, k);
  gpu::mxfp4_moe_matvec(dev.table.get(), choices_d.get(), k, x_d.get(), out_d.get(), {H, I, kSlots}, {}, mv_ws,
                        nullptr);
  OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> matvec = out_d.download();
  const std::vector<float> gemm = run_gpu(dev, kSlots, one, H, I, ws);
  double scale = 0;
  const std::vector<double> want = reference(experts, one, H, I, scale);
  test::check_close("gemm vs matvec", gemm, std::vector<double>(matvec.begin(), matvec.end()), scale, kRtol);
  MESSAGE("n = 1: gemm vs matvec " << worst_error(gemm, std::vector<double>(matvec.begin(), matvec.end()), scale)
                                   << ", gemm vs float64 " << worst_error(gemm, want, scale) << ", matvec vs float64 "
                                   << worst_error(matvec, want, scale) << " of max |contribution|");
}

TEST_CASE("gpu mxfp4_moe_gemm: a bad slot or a misaligned slice is reported and contributes nothing") {
  if (!test::gpu_or_skip()) return;
  constexpr int H = 64, I = 96;
  std::mt19937 rng(8);
  std::vector<HostExpert> experts = {random_expert(H, I, rng), random_expert(H, I, rng)};
  const DeviceExperts dev(experts);
  gpu::MoeGemmWorkspace ws(3, 2, 2, H, I);
  Batch b = random_batch(3, 2, 2, H, 0.0, rng);
  b.slots = {1, 7, -5, 0, 1, 1};  // 7 and -5 are outside the table of 2
  Batch valid = b;
  valid.slots = {1, -1, -1, 0, 1, 1};
  double scale = 0;
  const std::vector<double> want = reference(experts, valid, H, I, scale);
  test::check_close("out", run_gpu(dev, 2, b, H, I, ws), want, scale, kRtol);
  CHECK_THROWS_AS(ws.check_errors(), InputError);
  ws.check_errors();  // the flag was cleared

  std::vector<ExpertSlotMxfp4> table = dev.host_table;
  table[0].down_scales += 1;
  DeviceBuffer<ExpertSlotMxfp4> bad_table(table);
  DeviceBuffer<int32_t> slots_d(std::vector<int32_t>{0, -1, -1, -1, -1, -1});
  DeviceBuffer<float> weights_d(b.weights), x_d(b.x), out_d(b.out);
  gpu::mxfp4_moe_gemm(bad_table.get(), 2, slots_d.get(), weights_d.get(), 3, 2, x_d.get(), out_d.get(), {H, I, 2}, {},
                      ws, nullptr);
  CHECK_THROWS_AS(ws.check_errors(), InputError);
  CHECK(out_d.download() == b.out);
}

TEST_CASE("gpu mxfp4_moe_gemm: shapes the workspace or kernels cannot take are refused") {
  CHECK_THROWS_AS(gpu::MoeGemmWorkspace(4, 4, 8, 48, 64), InputError);    // H not a multiple of 32
  CHECK_THROWS_AS(gpu::MoeGemmWorkspace(4, 4, 8, 64, 4128), InputError);  // I above kMoeMaxK
  CHECK_THROWS_AS(gpu::MoeGemmWorkspace(4, 0, 8, 64, 64), InputError);
  CHECK_THROWS_AS(gpu::MoeGemmWorkspace(0, 4, 8, 64, 64), InputError);
  CHECK_THROWS_AS(gpu::MoeGemmWorkspace(4, 4, 0, 64, 64), InputError);
  CHECK_THROWS_AS(gpu::MoeGemmWorkspace(1 << 20, 16, 8, 64, 64), InputError);  // more tiles than one launch
  if (!test::gpu_or_skip()) return;
  gpu::MoeGemmWorkspace ws(4, 2, 3, 64, 64);
  DeviceBuffer<float> x(4 * 64), out(4 * 64), w(8);
  DeviceBuffer<int32_t> s(8);
  auto call = [&](int n_slots, int n, int k, const float* xp, gpu::MoeShape shape) {
    gpu::mxfp4_moe_gemm(nullptr, n_slots, s.get(), w.get(), n, k, xp, out.get(), shape, {}, ws, nullptr);
  };
  CHECK_THROWS_AS(call(3, 5, 2, x.get(), {64, 64, 3}), InputError);      // n above max_n
  CHECK_THROWS_AS(call(3, 4, 3, x.get(), {64, 64, 3}), InputError);      // k above the workspace's
  CHECK_THROWS_AS(call(4, 4, 2, x.get(), {64, 64, 4}), InputError);      // more slots than the workspace's
  CHECK_THROWS_AS(call(3, 4, 2, x.get(), {64, 64, 2}), InputError);      // shape.n_slots disagrees
  CHECK_THROWS_AS(call(3, 4, 2, x.get(), {64, 96, 3}), InputError);      // another I
  CHECK_THROWS_AS(call(3, 4, 2, x.get() + 1, {64, 64, 3}), InputError);  // x misaligned
  call(3, 0, 2, x.get(), {64, 64, 3});                                   // n = 0: nothing to do
}
