// mxfp4_moe_matvec (gpu_kernels/) against a float64 scalar reference built on src/model/mxfp4.h: random
// experts in the checkpoint's slice layout, odd sizes (every blocks-per-lane count 1..4, rows that leave lanes
// idle), k = 1 to 6, repeated slots, both decode tables, both combine modes; the SwiGLU intermediate is checked
// as well as the output, under every MoeTuning (v2, the default with programmatic dependent launch, ticket
// chunks). Also: bit-identical repeats (deterministic combine), a chain of launches on one stream (each input
// the previous output) equal bit for bit across tunings, skipped slots (-1) silent, bad slots reported, bad
// shapes rejected.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "src/model/bf16.h"
#include "src/model/error.h"
#include "src/model/mxfp4.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;
using gpu::DeviceBuffer;
using gpu::ExpertChoice;
using gpu::ExpertSlotMxfp4;
using gpu::MoeCombine;
using gpu::MoeTuning;
using gpu::Mxfp4Lut;
using test::check_close;
using test::max_abs;

namespace {

constexpr double kRtol = 2e-5;  // fp32 accumulation over up to 4096 terms lands near 1e-6

// One expert in the checkpoint's per-expert layout.
struct HostExpert {
  std::vector<uint8_t> gu_blocks;   // (2I, H/32, 16)
  std::vector<uint8_t> gu_scales;   // (2I, H/32)
  std::vector<uint16_t> gu_bias;    // (2I) bf16
  std::vector<uint8_t> dn_blocks;   // (H, I/32, 16)
  std::vector<uint8_t> dn_scales;   // (H, I/32)
  std::vector<uint16_t> dn_bias;    // (H) bf16
};

// A scale byte around which a K-long dot product of random E2M1 values and inputs in [-1, 1] lands near 4.
int centre_scale(int K) {
  return 127 - static_cast<int>(std::lround(std::log2(std::sqrt(static_cast<double>(K)) * 1.69 / 4.0)));
}

void fill_mxfp4(std::vector<uint8_t>& blocks, std::vector<uint8_t>& scales, size_t rows, int K, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255), spread(-3, 2);
  blocks.resize(rows * K / 2);
  scales.resize(rows * K / 32);
  for (uint8_t& b : blocks) b = static_cast<uint8_t>(byte(rng));
  const int centre = centre_scale(K);
  for (uint8_t& s : scales) s = static_cast<uint8_t>(centre + spread(rng));
}

std::vector<uint16_t> random_bf16(size_t n, float amp, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-amp, amp);
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
  fill_mxfp4(e.gu_blocks, e.gu_scales, 2 * static_cast<size_t>(I), H, rng);
  fill_mxfp4(e.dn_blocks, e.dn_scales, H, I, rng);
  e.gu_bias = random_bf16(2 * static_cast<size_t>(I), 1.0f, rng);
  e.dn_bias = random_bf16(H, 1.0f, rng);
  return e;
}

// y = W x + bias in float64, W dequantized row by row with mxfp4::dequantize_row.
template <typename Vec>
std::vector<double> ref_matvec(const std::vector<uint8_t>& blocks, const std::vector<uint8_t>& scales,
                               const std::vector<uint16_t>& bias, const Vec& x, size_t rows, int K) {
  std::vector<float> w(K);
  std::vector<double> y(rows);
  for (size_t r = 0; r < rows; ++r) {
    mxfp4::dequantize_row(blocks.data() + r * K / 2, scales.data() + r * K / 32, K, w.data());
    double s = bf16_to_float(bias[r]);
    for (int k = 0; k < K; ++k) s += static_cast<double>(w[k]) * static_cast<double>(x[k]);
    y[r] = s;
  }
  return y;
}

struct ClampCounts {
  int gate = 0, up = 0, free = 0;  // gates above the limit, ups beyond +-limit, pairs with neither
};

// The reference SwiGLU activations of one expert (I values) for input x.
std::vector<double> ref_activations(const HostExpert& e, const std::vector<float>& x, int H, int I,
                                    const gpu::SwigluParams& p, ClampCounts* counts) {
  const std::vector<double> h = ref_matvec(e.gu_blocks, e.gu_scales, e.gu_bias, x, 2 * static_cast<size_t>(I), H);
  const double alpha = p.alpha, limit = p.limit;
  std::vector<double> a(I);
  for (int j = 0; j < I; ++j) {
    const double gate = std::min(h[2 * j], limit);
    const double up = std::clamp(h[2 * j + 1], -limit, limit);
    a[j] = gate / (1.0 + std::exp(-alpha * gate)) * (up + 1.0);
    if (counts) {
      counts->gate += h[2 * j] > limit;
      counts->up += std::fabs(h[2 * j + 1]) > limit;
      counts->free += h[2 * j] <= limit && std::fabs(h[2 * j + 1]) <= limit;
    }
  }
  return a;
}

// The experts on the device, one allocation per tensor per expert (as the expert cache will place them).
struct DeviceExperts {
  std::vector<DeviceBuffer<uint8_t>> bytes;
  std::vector<DeviceBuffer<uint16_t>> halves;
  DeviceBuffer<ExpertSlotMxfp4> table;

  explicit DeviceExperts(const std::vector<HostExpert>& experts) {
    std::vector<ExpertSlotMxfp4> slots;
    for (const HostExpert& e : experts) {
      auto put8 = [&](const std::vector<uint8_t>& v) { return bytes.emplace_back(v).get(); };
      auto put16 = [&](const std::vector<uint16_t>& v) { return halves.emplace_back(v).get(); };
      ExpertSlotMxfp4 s{};
      s.gate_up_blocks = put8(e.gu_blocks);
      s.gate_up_scales = put8(e.gu_scales);
      s.gate_up_bias = put16(e.gu_bias);
      s.down_blocks = put8(e.dn_blocks);
      s.down_scales = put8(e.dn_scales);
      s.down_bias = put16(e.dn_bias);
      slots.push_back(s);
    }
    table = DeviceBuffer<ExpertSlotMxfp4>(slots);
  }
};

std::vector<ExpertChoice> softmax_choices(const std::vector<int>& slots, std::mt19937& rng) {
  std::normal_distribution<float> logit(0.0f, 1.0f);
  std::vector<ExpertChoice> c;
  float sum = 0;
  for (int s : slots) {
    c.push_back({s, std::exp(logit(rng))});
    sum += c.back().weight;
  }
  for (ExpertChoice& ch : c) ch.weight /= sum;
  return c;
}

// The tunings every correctness check runs: v2, the default, each switch off, and ticket chunks of 1 and 3
// steps with other prefetch settings.
const std::vector<MoeTuning> kTunings = {gpu::kMoeTuningV2,
                                         MoeTuning{},
                                         MoeTuning{true, true, false, 0, true, 3},
                                         MoeTuning{true, false, true, 0, true, 4},
                                         MoeTuning{false, true, true, 0, true, 2},
                                         MoeTuning{true, true, true, 1, true, 2},
                                         MoeTuning{true, true, true, 3, false, 5}};

class TestStream {
 public:
  TestStream() { OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~TestStream() { OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(s_)); }
  TestStream(const TestStream&) = delete;
  TestStream& operator=(const TestStream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_{};
};

struct Result {
  std::vector<float> out;
  std::vector<float> act;  // (k, I)
};

// Runs the kernel once on out_init (on a stream of its own, so that programmatic launch is used where the
// device has it), with the workspace's activations poisoned (NaN) beforehand.
Result run_gpu(const DeviceExperts& dev, int n_slots, const std::vector<ExpertChoice>& choices,
               const std::vector<float>& x, const std::vector<float>& out_init, int H, int I, MoeCombine combine,
               Mxfp4Lut lut, gpu::MoeWorkspace& ws, const MoeTuning& tuning = MoeTuning{}) {
  DeviceBuffer<ExpertChoice> choices_d(choices);
  DeviceBuffer<float> x_d(x), out_d(out_init);
  const int k = static_cast<int>(choices.size());
  TestStream stream;
  OSSRUN_CUDA_CHECK(cudaMemsetAsync(const_cast<float*>(ws.activations()), 0xff,
                                    sizeof(float) * ws.max_choices() * I, stream.get()));
  gpu::mxfp4_moe_matvec(dev.table.get(), choices_d.get(), k, x_d.get(), out_d.get(), {H, I, n_slots}, {}, ws,
                        stream.get(), combine, lut, tuning);
  OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  Result r{out_d.download(), std::vector<float>(static_cast<size_t>(k) * I)};
  OSSRUN_CUDA_CHECK(cudaMemcpy(r.act.data(), ws.activations(), r.act.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return r;
}

// Compares one launch with the reference: each choice's activations, then the accumulated output.
void check_against_reference(const std::vector<HostExpert>& experts, const DeviceExperts& dev,
                             const std::vector<ExpertChoice>& choices, int H, int I, std::mt19937& rng,
                             ClampCounts* counts = nullptr) {
  const std::vector<float> x = random_floats(H, rng), out_init = random_floats(H, rng);
  std::vector<double> contribution(H, 0.0);
  std::vector<std::vector<double>> acts;
  for (const ExpertChoice& c : choices) {
    const HostExpert& e = experts[c.slot];
    acts.push_back(ref_activations(e, x, H, I, {}, counts));
    const std::vector<double> y = ref_matvec(e.dn_blocks, e.dn_scales, e.dn_bias, acts.back(), H, I);
    for (int r = 0; r < H; ++r) contribution[r] += static_cast<double>(c.weight) * y[r];
  }
  std::vector<double> want(H);
  for (int r = 0; r < H; ++r) want[r] = out_init[r] + contribution[r];
  const double scale = std::max(max_abs(contribution), 1.0);  // out_init is within [-1, 1]

  const int n_slots = static_cast<int>(experts.size());
  gpu::MoeWorkspace ws(H, I, 8);
  for (size_t t = 0; t < kTunings.size(); ++t) {
    for (Mxfp4Lut lut : {Mxfp4Lut::F32x2, Mxfp4Lut::Bf16x2}) {
      for (MoeCombine combine : {MoeCombine::Deterministic, MoeCombine::Atomic}) {
        CAPTURE(t);
        CAPTURE(gpu::mxfp4_lut_name(lut));
        CAPTURE(gpu::moe_combine_name(combine));
        const Result got = run_gpu(dev, n_slots, choices, x, out_init, H, I, combine, lut, ws, kTunings[t]);
        for (size_t c = 0; c < choices.size(); ++c) {
          CAPTURE(c);
          const std::vector<float> act(got.act.begin() + c * I, got.act.begin() + (c + 1) * I);
          check_close("activation", act, acts[c], std::max(max_abs(acts[c]), 1.0), kRtol);
        }
        check_close("out", got.out, want, scale, kRtol);
        ws.check_errors();
      }
    }
  }
}

}  // namespace

TEST_CASE("gpu mxfp4_moe_matvec: odd sizes, k = 1..6, repeated slots, both tables and combines") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(20240601);
  struct Case {
    int H, I, n_slots;
    std::vector<std::vector<int>> choice_lists;
  };
  const std::vector<Case> cases = {
      {96, 160, 6, {{3}, {0, 5, 2, 1}, {2, 2, 4}, {5, 4, 3, 2, 1, 0}}},
      {32, 4096, 2, {{1, 0}}},      // gate_up 1 block per row; down 4 blocks per lane
      {4096, 32, 2, {{0, 1, 1}}},   // gate_up 4 blocks per lane; down 1 block per row
      {2080, 1056, 3, {{1, 1, 0}}},  // 65 and 33 blocks: the last lane slot holds a single block
  };
  for (const Case& c : cases) {
    CAPTURE(c.H);
    CAPTURE(c.I);
    std::vector<HostExpert> experts;
    for (int s = 0; s < c.n_slots; ++s) experts.push_back(random_expert(c.H, c.I, rng));
    const DeviceExperts dev(experts);
    for (const std::vector<int>& list : c.choice_lists) {
      CAPTURE(list.size());
      check_against_reference(experts, dev, softmax_choices(list, rng), c.H, c.I, rng);
    }
  }
}

TEST_CASE("gpu mxfp4_moe_matvec: gpt-oss-20b shape, clamps exercised, repeats bit-identical") {
  if (!test::gpu_or_skip()) return;
  constexpr int H = 2880, I = 2880;
  std::mt19937 rng(7);
  std::vector<HostExpert> experts;
  for (int s = 0; s < 5; ++s) experts.push_back(random_expert(H, I, rng));
  const DeviceExperts dev(experts);
  const std::vector<ExpertChoice> choices = softmax_choices({4, 0, 3, 1}, rng);
  ClampCounts counts;
  check_against_reference(experts, dev, choices, H, I, rng, &counts);
  INFO("gates over the limit " << counts.gate << ", ups beyond it " << counts.up << ", neither " << counts.free);
  CHECK(counts.gate > 0);  // the test data reaches both clamps and the unclamped region
  CHECK(counts.up > 0);
  CHECK(counts.free > 0);

  const std::vector<float> x = random_floats(H, rng), out_init = random_floats(H, rng);
  gpu::MoeWorkspace ws(H, I, 4);
  const Result first = run_gpu(dev, 5, choices, x, out_init, H, I, MoeCombine::Deterministic, Mxfp4Lut::F32x2, ws);
  for (int rep = 0; rep < 3; ++rep) {
    const Result again = run_gpu(dev, 5, choices, x, out_init, H, I, MoeCombine::Deterministic, Mxfp4Lut::F32x2, ws);
    CHECK(std::equal(first.out.begin(), first.out.end(), again.out.begin(), [](float a, float b) {
      return std::memcmp(&a, &b, sizeof a) == 0;
    }));
  }
}

// Six launches on one stream, launch n reading launch n-1's output (buffers in a ring of three), different
// choices each time: the overlap of programmatic launch must not let a kernel read what is not yet written.
std::vector<float> run_chain(const DeviceExperts& dev, int n_slots, const std::vector<std::vector<ExpertChoice>>& lists,
                             const std::vector<float>& x0, int H, int I, gpu::MoeWorkspace& ws,
                             const MoeTuning& tuning) {
  std::vector<DeviceBuffer<ExpertChoice>> choices;
  for (const auto& list : lists) choices.emplace_back(list);
  std::vector<DeviceBuffer<float>> ring;
  for (int b = 0; b < 3; ++b) ring.emplace_back(x0);
  TestStream stream;
  for (size_t n = 0; n < lists.size(); ++n)
    gpu::mxfp4_moe_matvec(dev.table.get(), choices[n].get(), static_cast<int>(lists[n].size()), ring[n % 3].get(),
                          ring[(n + 1) % 3].get(), {H, I, n_slots}, {}, ws, stream.get(), MoeCombine::Deterministic,
                          Mxfp4Lut::F32x2, tuning);
  OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  return ring[lists.size() % 3].download();
}

TEST_CASE("gpu mxfp4_moe_matvec: chained launches on one stream agree bit for bit across tunings") {
  if (!test::gpu_or_skip()) return;
  constexpr int H = 2880, I = 2880;
  std::mt19937 rng(11);
  std::vector<HostExpert> experts;
  for (int s = 0; s < 6; ++s) experts.push_back(random_expert(H, I, rng));
  const DeviceExperts dev(experts);
  std::vector<std::vector<ExpertChoice>> lists;
  for (int n = 0; n < 6; ++n) lists.push_back(softmax_choices({n, (n + 1) % 6, (n + 3) % 6, (n + 4) % 6}, rng));
  std::vector<float> x0 = random_floats(H, rng);
  for (float& v : x0) v *= 0.05f;  // keeps six layers' sums finite
  gpu::MoeWorkspace ws(H, I, 4);
  const std::vector<float> want = run_chain(dev, 6, lists, x0, H, I, ws, gpu::kMoeTuningV2);
  CHECK(std::all_of(want.begin(), want.end(), [](float v) { return std::isfinite(v); }));
  for (size_t t = 1; t < kTunings.size(); ++t) {
    CAPTURE(t);
    const std::vector<float> got = run_chain(dev, 6, lists, x0, H, I, ws, kTunings[t]);
    CHECK(std::equal(want.begin(), want.end(), got.begin(),
                     [](float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }));
  }
  ws.check_errors();
}

TEST_CASE("gpu mxfp4_moe_matvec: a bad slot or a misaligned slice is reported and contributes nothing") {
  if (!test::gpu_or_skip()) return;
  constexpr int H = 64, I = 96;
  std::mt19937 rng(3);
  std::vector<HostExpert> experts = {random_expert(H, I, rng), random_expert(H, I, rng)};
  const DeviceExperts dev(experts);
  gpu::MoeWorkspace ws(H, I, 4);
  const std::vector<float> x = random_floats(H, rng), out_init = random_floats(H, rng);

  // Slot 7 of 2: the valid choice alone must come out.
  const Result got =
      run_gpu(dev, 2, {{1, 0.25f}, {7, 0.75f}}, x, out_init, H, I, MoeCombine::Deterministic, Mxfp4Lut::F32x2, ws);
  CHECK_THROWS_AS(ws.check_errors(), InputError);
  const std::vector<double> y = ref_matvec(experts[1].dn_blocks, experts[1].dn_scales, experts[1].dn_bias,
                                           ref_activations(experts[1], x, H, I, {}, nullptr), H, I);
  std::vector<double> want(H);
  for (int r = 0; r < H; ++r) want[r] = out_init[r] + 0.25 * y[r];
  check_close("out", got.out, want, std::max(max_abs(y), 1.0), kRtol);
  ws.check_errors();  // the flag was cleared

  // A slot whose gate_up blocks are 1 byte off 16-byte alignment.
  std::vector<ExpertSlotMxfp4> table(2);
  OSSRUN_CUDA_CHECK(cudaMemcpy(table.data(), dev.table.get(), sizeof(ExpertSlotMxfp4) * 2, cudaMemcpyDeviceToHost));
  table[0].gate_up_blocks += 1;
  DeviceBuffer<ExpertSlotMxfp4> bad_table(table);
  DeviceBuffer<ExpertChoice> choice_d(std::vector<ExpertChoice>{{0, 1.0f}});
  DeviceBuffer<float> x_d(x), out_d(out_init);
  gpu::mxfp4_moe_matvec(bad_table.get(), choice_d.get(), 1, x_d.get(), out_d.get(), {H, I, 2}, {}, ws, nullptr);
  CHECK_THROWS_AS(ws.check_errors(), InputError);
  CHECK(out_d.download() == out_init);  // += 0 leaves every value as it was
}

TEST_CASE("gpu mxfp4_moe_matvec: skipped choices (slot -1) contribute nothing and are not errors") {
  if (!test::gpu_or_skip()) return;
  constexpr int H = 64, I = 96;
  std::mt19937 rng(5);
  std::vector<HostExpert> experts = {random_expert(H, I, rng), random_expert(H, I, rng), random_expert(H, I, rng)};
  const DeviceExperts dev(experts);
  gpu::MoeWorkspace ws(H, I, 4);
  const std::vector<float> x = random_floats(H, rng), out_init = random_floats(H, rng);
  for (MoeCombine combine : {MoeCombine::Deterministic, MoeCombine::Atomic}) {
    CAPTURE(gpu::moe_combine_name(combine));
    // Skipped first, in the middle and last: only slots 2 and 0 with their weights come out.
    const std::vector<ExpertChoice> choices = {
        {gpu::kSkippedSlot, 0.4f}, {2, 0.3f}, {gpu::kSkippedSlot, 0.1f}, {0, 0.2f}};
    const Result got = run_gpu(dev, 3, choices, x, out_init, H, I, combine, Mxfp4Lut::F32x2, ws);
    ws.check_errors();  // no error flagged
    std::vector<double> want(out_init.begin(), out_init.end());
    double scale = 1.0;
    for (const auto& [slot, w] : {std::pair{2, 0.3}, std::pair{0, 0.2}}) {
      const HostExpert& e = experts[slot];
      const std::vector<double> y =
          ref_matvec(e.dn_blocks, e.dn_scales, e.dn_bias, ref_activations(e, x, H, I, {}, nullptr), H, I);
      for (int r = 0; r < H; ++r) want[r] += w * y[r];
      scale = std::max(scale, max_abs(y));
    }
    check_close("out", got.out, want, scale, kRtol);
    // All skipped: out is untouched, bit for bit.
    const Result none = run_gpu(dev, 3, {{gpu::kSkippedSlot, 0.5f}, {gpu::kSkippedSlot, 0.5f}}, x, out_init, H, I,
                                combine, Mxfp4Lut::F32x2, ws);
    ws.check_errors();
    CHECK(none.out == out_init);
  }
}

TEST_CASE("gpu mxfp4_moe_matvec: a workspace for shapes the kernel cannot take is refused") {
  // Checked before any device memory is allocated, so this runs on machines without a GPU too.
  CHECK_THROWS_AS(gpu::MoeWorkspace(48, 64, 4), InputError);    // H not a multiple of 32
  CHECK_THROWS_AS(gpu::MoeWorkspace(64, 4128, 4), InputError);  // I above kMoeMaxK
  CHECK_THROWS_AS(gpu::MoeWorkspace(64, 64, 0), InputError);    // no room for a choice
  CHECK_THROWS_AS(gpu::MoeWorkspace(64, 64, gpu::kMoeMaxChoices + 1), InputError);
}

TEST_CASE("gpu mxfp4_moe_matvec: launches the workspace or kernel cannot take are rejected") {
  if (!test::gpu_or_skip()) return;
  gpu::MoeWorkspace ws(64, 64, 2);
  DeviceBuffer<float> x(64), out(64);
  CHECK_THROWS_AS(gpu::mxfp4_moe_matvec(nullptr, nullptr, 3, x.get(), out.get(), {64, 64, 1}, {}, ws, nullptr),
                  InputError);  // more choices than the workspace holds
  CHECK_THROWS_AS(gpu::mxfp4_moe_matvec(nullptr, nullptr, 1, x.get(), out.get(), {64, 96, 1}, {}, ws, nullptr),
                  InputError);  // workspace made for another shape
  CHECK_THROWS_AS(gpu::mxfp4_moe_matvec(nullptr, nullptr, 1, x.get() + 1, out.get(), {64, 64, 1}, {}, ws, nullptr),
                  InputError);  // x not 16-byte aligned
}
