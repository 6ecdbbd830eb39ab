// mxfp4_moe_matvec: kernels, then the launcher (see the header for the operation, mxfp4_moe_steps.cuh for
// how a warp computes its tiles).
//
// Launches. gate_up runs over k * I/8 tiles of 8 features (16 rows: gate and up), finishing each with the
// bias and SwiGLU; down runs over k * H/16 tiles of 16 output rows, finishing each with bias and weight and
// the combine. Grids are persistent: as many CTAs as fit at once, every warp a contiguous share of steps.
//
// Inputs. gate_up: each CTA scales x by 2^e (max|x| * 2^e in [2^14, 2^15)), splits it into fp16 hi + lo and
// keeps it in shared memory in B order. down: the gate_up kernel writes the SwiGLU outputs in the same form
// (scaled by a fixed 2^e that keeps every clamped activation below 2^15) to the workspace; the down kernel
// copies them to shared memory when they fit beside its stages, else its B lanes read them through L1.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/mxfp4_device.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "gpu_kernels/mxfp4_moe_steps.cuh"
#include "gpu_kernels/persistent_grid.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using device_util::bf16_value;
using moe_steps::ChosenRows;
using moe_steps::padded_blocks;
using moe_steps::Phase;
using moe_steps::phase_of;
using moe_steps::Proj;
using mxfp4_device::exp2_int;
using mxfp4_device::f16x2_bits;
using mxfp4_device::split_f16;

constexpr int kMinStepsPerWarp = 8;    // small launches use fewer CTAs rather than warps with 1-2 steps
constexpr int kInputMantissaTop = 14;  // inputs are scaled so that the largest lies in [2^14, 2^15)

constexpr int kErrorBadSlot = 1;
constexpr int kErrorMisaligned = 2;

struct MoeArgs {
  const ExpertSlotMxfp4* slots;  // (n_slots)
  const ExpertChoice* choices;   // (k)
  int k, n_slots;
  int hidden, intermediate;  // H, I
  SwigluParams swiglu;
  int deterministic;         // MoeCombine::Deterministic
  int act_exp;               // act_mma holds act * 2^act_exp
  const float* x;            // (H)
  float* out;                // (H)
  float* act;                // (k, I)
  uint32_t* act_mma;         // (k, Gpad(I), 2, 16) fp16 pairs in B order
  float* pieces;             // (warps, 2, 16)
  float* partial;            // (k, H)
  unsigned* tile_arrivals;   // (k * max(I/8, H/16))
  unsigned* group_arrivals;  // (H/16)
  int* error;                // (1)
};

// ---------------------------------------------------------------------------------------------------------
// Pipeline variants

// W warps per CTA with NS stages each, one CTA per SM.
template <int W, int NS>
struct StagedConfig {
  static constexpr int kWarps = W;
  template <Proj P>
  using Steps = moe_steps::StagedSteps<P, NS>;
  __host__ __device__ static int warp_smem(int G) { return moe_steps::staged_warp_bytes(NS, G); }
};

// ---------------------------------------------------------------------------------------------------------
// Kernels

// Threads 0..k-1 each look up one choice. Both projections' blocks are checked in both kernels, so a bad
// slice contributes nothing at all. CTA 0 reports what it finds. The caller synchronizes before use.
template <Proj P>
__device__ void load_chosen(ChosenRows* chosen, const MoeArgs& a) {
  const int c = threadIdx.x;
  if (c >= a.k) return;
  const ExpertChoice ch = a.choices[c];
  ChosenRows e{nullptr, nullptr, nullptr, ch.weight, 0};
  int error = 0;
  if (ch.slot < 0 || ch.slot >= a.n_slots) {
    error = kErrorBadSlot;
  } else {
    const ExpertSlotMxfp4 s = a.slots[ch.slot];
    // Tiles are copied 16 bytes at a time: blocks and scales must be 16-byte aligned.
    if ((reinterpret_cast<uintptr_t>(s.gate_up_blocks) | reinterpret_cast<uintptr_t>(s.down_blocks) |
         reinterpret_cast<uintptr_t>(s.gate_up_scales) | reinterpret_cast<uintptr_t>(s.down_scales)) %
            16 !=
        0) {
      error = kErrorMisaligned;
    } else {
      e.blocks = P == Proj::GateUp ? s.gate_up_blocks : s.down_blocks;
      e.scales = P == Proj::GateUp ? s.gate_up_scales : s.down_scales;
      e.bias = P == Proj::GateUp ? s.gate_up_bias : s.down_bias;
      e.ok = 1;
    }
  }
  if (error != 0 && blockIdx.x == 0) atomicOr(a.error, error);
  chosen[c] = e;
}

__device__ __forceinline__ float clamped_swiglu(float gate, float up, SwigluParams p) {
  gate = fminf(gate, p.limit);                                 // upper bound only
  up = fminf(fmaxf(up, -p.limit), p.limit);                    // both sides
  return gate / (1.0f + expf(-p.alpha * gate)) * (up + 1.0f);  // gate * sigmoid(alpha * gate) * (up + 1)
}

// The exponent e that puts max|x| * 2^e in [2^14, 2^15) (clamped, so that 2^e and 2^-e stay normal floats).
__device__ __forceinline__ int input_exponent(float max_abs) {
  if (!(max_abs > 0.0f) || !isfinite(max_abs)) return 0;
  const int floor_log2 = static_cast<int>((__float_as_uint(max_abs) >> 23) & 0xffu) - 127;  // subnormal: -127
  return min(max(kInputMantissaTop - floor_log2, -100), 100);
}



// gate_up's inputs in B order (moe_steps::b_order_word): for block b, part p, word q, pair h, the elements
// 32b + 8q + first(h) and + 4 of x * 2^e, for Gpad blocks (zeros past G). Returns e. All threads; synchronizes.
template <int kWarps>
__device__ int stage_inputs(uint32_t* xs, const float* x, int G, float* warp_max) {
  float m = 0.0f;
  for (int i = threadIdx.x; i < 32 * G; i += kWarps * 32) m = fmaxf(m, fabsf(__ldg(x + i)));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = m;
  __syncthreads();
  for (int w = 0; w < kWarps; ++w) m = fmaxf(m, warp_max[w]);
  const int e = input_exponent(m);
  const float scale = exp2_int(e);
  const int n = padded_blocks(32 * G) * 32;
  for (int i = threadIdx.x; i < n; i += kWarps * 32) {
    // i = b_order_word(b, p, q, h) = (((step * 4 + q) * 4 + b % 4) * 2 + p) * 4 + h
    const int h = i & 3, p = (i >> 2) & 1, b = ((i >> 7) << 2) | ((i >> 3) & 3), q = (i >> 5) & 3;
    const int e0 = 32 * b + 8 * q + mxfp4_device::pair_first_element(h);
    float v0 = 0.0f, v1 = 0.0f;
    if (b < G) v0 = __ldg(x + e0) * scale, v1 = __ldg(x + e0 + 4) * scale;
    __half hi0, lo0, hi1, lo1;
    split_f16(v0, hi0, lo0);
    split_f16(v1, hi1, lo1);
    xs[i] = p == 0 ? f16x2_bits(hi0, hi1) : f16x2_bits(lo0, lo1);
  }
  __syncthreads();
  return e;
}

// act[c][j] = swiglu(W1 x + b1)[j] for every choice c and feature j, also written to act_mma for down.
template <class Cfg>
__global__ void __launch_bounds__(Cfg::kWarps * 32, 1) gate_up_swiglu_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ uint4 smem[];  // xs (Gpad(H) * 128 bytes), then each warp's Cfg::warp_smem bytes
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  __shared__ float warp_max[Cfg::kWarps];
  load_chosen<Proj::GateUp>(chosen, a);
  __syncthreads();
  const Phase ph = phase_of(Proj::GateUp, a.k, a.hidden, a.intermediate);
  const int gpad_h = padded_blocks(a.hidden);
  char* warp_smem = reinterpret_cast<char*>(smem + gpad_h * 8) + (threadIdx.x >> 5) * Cfg::warp_smem(ph.G);
  typename Cfg::template Steps<Proj::GateUp> warp(ph, chosen, a.pieces, a.tile_arrivals, Cfg::kWarps, warp_smem,
                                                  a.x);  // the first copies start here
  const int x_exp = stage_inputs<Cfg::kWarps>(reinterpret_cast<uint32_t*>(smem), a.x, ph.G, warp_max);
  const float unscale = exp2_int(kInputMantissaTop - x_exp);
  const float act_scale = exp2_int(a.act_exp);
  const int I = a.intermediate, gpad_i = padded_blocks(I);
  const int g = warp.r.g, t = warp.r.t;
  const moe_steps::SharedInputs inputs{static_cast<uint32_t>(__cvta_generic_to_shared(smem)), 0, ph.tiles_per_choice};
  warp.run(inputs, [&](int tile, float gate, float up) {
    if (t != 0) return;
    const int c = tile / ph.tiles_per_choice, f = (tile - c * ph.tiles_per_choice) * 8 + g;
    const ChosenRows& e = chosen[c];
    float v = 0.0f;
    if (e.ok) {
      gate = gate * unscale + bf16_value(__ldg(e.bias + 2 * f));
      up = up * unscale + bf16_value(__ldg(e.bias + 2 * f + 1));
      v = clamped_swiglu(gate, up, a.swiglu);
    }
    a.act[static_cast<size_t>(c) * I + f] = v;
    __half hi, lo;
    split_f16(v * act_scale, hi, lo);
    const int i = f & 7, hi_word = moe_steps::b_order_word(f >> 5, 0, (f >> 3) & 3, mxfp4_device::element_pair(i));
    uint16_t* dst = reinterpret_cast<uint16_t*>(a.act_mma + static_cast<size_t>(c) * gpad_i * 32 + hi_word) +
                    mxfp4_device::element_half(i);
    dst[0] = __half_as_ushort(hi);
    dst[8] = __half_as_ushort(lo);  // part 1 is 4 words further
  }, [](int) {});  // act is read by the next kernel: nothing to publish within this one
}

// y = W2 act[c] + b2 for every choice c, then out += sum over c of weight_c * y_c: either through partial[c]
// and the last arrival per 16-row group (deterministic), or with float atomics. kActInSmem: the k choices'
// activations are first copied to shared memory (when they fit), else the B lanes read them through L1.
template <class Cfg, bool kActInSmem>
__global__ void __launch_bounds__(Cfg::kWarps * 32, 1) down_combine_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ uint4 smem[];  // [act_mma of the k choices], then each warp's Cfg::warp_smem bytes
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  load_chosen<Proj::Down>(chosen, a);
  __syncthreads();
  const Phase ph = phase_of(Proj::Down, a.k, a.hidden, a.intermediate);
  const int gpad_i = padded_blocks(a.intermediate);
  const int act_bytes = kActInSmem ? a.k * gpad_i * 128 : 0;
  if (kActInSmem) {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    const char* src = reinterpret_cast<const char*>(a.act_mma);
    for (int i = threadIdx.x; i < act_bytes / 16; i += Cfg::kWarps * 32) moe_steps::cp_async16(dst + 16 * i, src + 16 * i, true);
    moe_steps::cp_async_commit();
  }
  char* warp_smem = reinterpret_cast<char*>(smem) + act_bytes + (threadIdx.x >> 5) * Cfg::warp_smem(ph.G);
  typename Cfg::template Steps<Proj::Down> warp(ph, chosen, a.pieces, a.tile_arrivals, Cfg::kWarps, warp_smem, a.x);
  const float unscale = exp2_int(kInputMantissaTop - a.act_exp);
  const int H = a.hidden, g = warp.r.g, t = warp.r.t, lane = warp.r.lane;
  auto finish = [&](int tile, float y_a, float y_b) {
    const int c = tile / ph.tiles_per_choice, u = tile - c * ph.tiles_per_choice;
    const int row_a = 16 * u + g, row_b = row_a + 8;
    const ChosenRows& e = chosen[c];
    float v_a = 0.0f, v_b = 0.0f;
    if (e.ok) {
      v_a = e.weight * (y_a * unscale + bf16_value(__ldg(e.bias + row_a)));
      v_b = e.weight * (y_b * unscale + bf16_value(__ldg(e.bias + row_b)));
    }
    if (t != 0) return;
    if (a.deterministic) {
      a.partial[static_cast<size_t>(c) * H + row_a] = v_a;
      a.partial[static_cast<size_t>(c) * H + row_b] = v_b;
    } else {
      atomicAdd(a.out + row_a, v_a);
      atomicAdd(a.out + row_b, v_b);
    }
  };
  auto arrive = [&](int tile) {
    // Deterministic: count this choice's rows in; the last of the k adds all k in choice order.
    if (!a.deterministic) return;
    const int u = tile % ph.tiles_per_choice;
    unsigned before = 0;
    if (lane == 0) before = atomicAdd(a.group_arrivals + u, 1u);
    before = __shfl_sync(0xffffffffu, before, 0);
    if (before != static_cast<unsigned>(a.k - 1)) return;
    __threadfence();
    if (lane < 16) {
      const int row = 16 * u + lane;
      float sum = 0.0f;
      for (int cc = 0; cc < a.k; ++cc) sum += __ldcg(a.partial + static_cast<size_t>(cc) * H + row);
      a.out[row] += sum;
    }
    if (lane == 0) a.group_arrivals[u] = 0;  // ready for the next launch
  };
  if (kActInSmem) {
    moe_steps::cp_async_wait<Cfg::template Steps<Proj::Down>::kStages - 1>();  // this thread's act copies
    __syncthreads();                                                            // everyone's
    warp.run(moe_steps::SharedInputs{static_cast<uint32_t>(__cvta_generic_to_shared(smem)),
                                     static_cast<uint32_t>(gpad_i * 128), ph.tiles_per_choice},
             finish, arrive);
  } else {
    warp.run(moe_steps::GlobalInputs{reinterpret_cast<const char*>(a.act_mma), static_cast<size_t>(gpad_i) * 128,
                                     ph.tiles_per_choice},
             finish, arrive);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Launcher

using MoeKernel = void (*)(MoeArgs);

struct Launchable {
  MoeKernel gate_up, down_act_in_smem, down_act_in_global;
  int threads;
  int (*warp_smem)(int G);
};

template <class Cfg>
Launchable launchable() {
  return {gate_up_swiglu_mxfp4_kernel<Cfg>, down_combine_mxfp4_kernel<Cfg, true>, down_combine_mxfp4_kernel<Cfg, false>,
          Cfg::kWarps * 32, Cfg::warp_smem};
}

Launchable launchable(MoePipeline p) {
  switch (p) {
    case MoePipeline::Staged16x3: return launchable<StagedConfig<16, 3>>();
    case MoePipeline::Staged12x4: return launchable<StagedConfig<12, 4>>();
    case MoePipeline::Staged24x2: return launchable<StagedConfig<24, 2>>();
    case MoePipeline::Staged8x2: return launchable<StagedConfig<8, 2>>();
  }
  throw InputError("mxfp4_moe_matvec: unknown pipeline " + std::to_string(static_cast<int>(p)));
}

// Shared memory of the gate_up kernel: x in B order, then the warps' stages.
size_t gate_up_smem(const Launchable& l, int hidden) {
  return static_cast<size_t>(padded_blocks(hidden)) * 128 + static_cast<size_t>(l.threads / 32) * l.warp_smem(hidden / 32);
}

void launch_persistent(MoeKernel kernel, int threads, int total_steps, size_t smem, const MoeArgs& args,
                       cudaStream_t stream) {
  const int per_cta = threads / 32 * kMinStepsPerWarp;
  const int wanted = (total_steps + per_cta - 1) / per_cta;
  const int resident = resident_ctas(reinterpret_cast<const void*>(kernel), threads, smem);
  kernel<<<wanted < resident ? wanted : resident, threads, smem, stream>>>(args);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

void check_reduction_length(const char* what, int K) {
  if (K <= 0 || K % 32 != 0 || K > kMoeMaxK)
    throw InputError(std::string("mxfp4_moe_matvec: ") + what + " = " + std::to_string(K) +
                     "; the GPU kernel needs a positive multiple of 32 no larger than " + std::to_string(kMoeMaxK));
}

// The exponent e for which every clamped SwiGLU output times 2^e stays below 2^15 (fp16's range, with room):
// gate <= limit, so gate * sigmoid(alpha * gate) lies in (-0.28 / alpha, limit]; |up + 1| <= limit + 1.
int activation_exponent(const SwigluParams& p) {
  if (!(std::isfinite(p.alpha) && p.alpha > 0.0f && std::isfinite(p.limit) && p.limit >= 0.0f && p.limit <= 65504.0f))
    throw InputError("mxfp4_moe_matvec: SwiGLU alpha must be positive and finite and limit in [0, 65504], got alpha " +
                     std::to_string(p.alpha) + ", limit " + std::to_string(p.limit));
  const double bound = std::fmax(p.limit, 1.0 / p.alpha) * (p.limit + 1.0);
  if (bound > 0x1p60)
    throw InputError("mxfp4_moe_matvec: SwiGLU alpha " + std::to_string(p.alpha) + " is too small");
  return std::min(kInputMantissaTop - std::ilogb(bound), 100);
}

}  // namespace

const char* moe_pipeline_name(MoePipeline p) {
  switch (p) {
    case MoePipeline::Staged16x3: return "staged16x3";
    case MoePipeline::Staged12x4: return "staged12x4";
    case MoePipeline::Staged24x2: return "staged24x2";
    case MoePipeline::Staged8x2: return "staged8x2";
  }
  return "?";
}

const char* moe_combine_name(MoeCombine combine) {
  return combine == MoeCombine::Deterministic ? "deterministic" : "atomic";
}

MoeWorkspace::MoeWorkspace(int hidden, int intermediate, int max_choices)
    : hidden_(hidden), intermediate_(intermediate), max_choices_(max_choices) {
  check_reduction_length("hidden size", hidden);
  check_reduction_length("intermediate size", intermediate);
  if (max_choices < 1 || max_choices > kMoeMaxChoices)
    throw InputError("MoeWorkspace: max_choices must be 1 to " + std::to_string(kMoeMaxChoices) + ", got " +
                     std::to_string(max_choices));
  int device = 0, sms = 0, threads_per_sm = 0;
  OSSRUN_CUDA_CHECK(cudaGetDevice(&device));
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&threads_per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device));
  max_warps_ = sms * threads_per_sm / 32;  // no launch has more warps than fit on the device at once
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem_, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const size_t tiles = static_cast<size_t>(max_choices) * std::max(intermediate / 8, hidden / 16);
  act_ = DeviceBuffer<float>(static_cast<size_t>(max_choices) * intermediate);
  act_mma_ = DeviceBuffer<uint32_t>(static_cast<size_t>(max_choices) * padded_blocks(intermediate) * 32);
  pieces_ = DeviceBuffer<float>(static_cast<size_t>(max_warps_) * 2 * 16);
  partial_ = DeviceBuffer<float>(static_cast<size_t>(max_choices) * hidden);
  tile_arrivals_ = DeviceBuffer<unsigned>(tiles);
  group_arrivals_ = DeviceBuffer<unsigned>(static_cast<size_t>(hidden / 16));
  error_ = DeviceBuffer<int>(1);
  OSSRUN_CUDA_CHECK(cudaMemset(act_mma_.get(), 0, act_mma_.bytes()));  // the padding past I stays zero
  OSSRUN_CUDA_CHECK(cudaMemset(tile_arrivals_.get(), 0, tile_arrivals_.bytes()));
  OSSRUN_CUDA_CHECK(cudaMemset(group_arrivals_.get(), 0, group_arrivals_.bytes()));
  OSSRUN_CUDA_CHECK(cudaMemset(error_.get(), 0, error_.bytes()));
  OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());  // launches may come on any stream, even non-blocking ones
}

void MoeWorkspace::check_errors() {
  int flags = 0;
  OSSRUN_CUDA_CHECK(cudaMemcpy(&flags, error_.get(), sizeof flags, cudaMemcpyDeviceToHost));
  if (flags == 0) return;
  OSSRUN_CUDA_CHECK(cudaMemset(error_.get(), 0, sizeof flags));
  std::string msg = "mxfp4_moe_matvec:";
  if (flags & kErrorBadSlot) msg += " a choice named a slot outside the slot table;";
  if (flags & kErrorMisaligned) msg += " an expert slot's blocks or scales pointer was not 16-byte aligned;";
  throw InputError(msg + " those choices contributed nothing");
}

void mxfp4_moe_matvec(const ExpertSlotMxfp4* slots, const ExpertChoice* choices, int k, const float* x, float* out,
                      const MoeShape& shape, const SwigluParams& swiglu, MoeWorkspace& ws, cudaStream_t stream,
                      MoeCombine combine, MoePipeline pipeline) {
  check_reduction_length("hidden size", shape.hidden);
  check_reduction_length("intermediate size", shape.intermediate);
  if (ws.hidden() != shape.hidden || ws.intermediate() != shape.intermediate)
    throw InputError("mxfp4_moe_matvec: the workspace was made for H=" + std::to_string(ws.hidden()) +
                     ", I=" + std::to_string(ws.intermediate()) + ", not H=" + std::to_string(shape.hidden) +
                     ", I=" + std::to_string(shape.intermediate));
  if (k < 0 || k > ws.max_choices())
    throw InputError("mxfp4_moe_matvec: " + std::to_string(k) + " choices; the workspace takes 0 to " +
                     std::to_string(ws.max_choices()));
  if (shape.n_slots < 1) throw InputError("mxfp4_moe_matvec: the slot table is empty");
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0)
    throw InputError("mxfp4_moe_matvec: the input vector must be 16-byte aligned");
  const int act_exp = activation_exponent(swiglu);
  // The requested pipeline, or the small one where this device's shared memory cannot hold it.
  Launchable kernels = launchable(pipeline);
  if (gate_up_smem(kernels, shape.hidden) > static_cast<size_t>(ws.max_smem_)) kernels = launchable(MoePipeline::Staged8x2);
  if (gate_up_smem(kernels, shape.hidden) > static_cast<size_t>(ws.max_smem_))
    throw InputError("mxfp4_moe_matvec: this device's " + std::to_string(ws.max_smem_) +
                     " bytes of shared memory per block are too few for H=" + std::to_string(shape.hidden));
  if (k == 0) return;

  const MoeArgs args{slots,
                     choices,
                     k,
                     shape.n_slots,
                     shape.hidden,
                     shape.intermediate,
                     swiglu,
                     combine == MoeCombine::Deterministic,
                     act_exp,
                     x,
                     out,
                     ws.act_.get(),
                     ws.act_mma_.get(),
                     ws.pieces_.get(),
                     ws.partial_.get(),
                     ws.tile_arrivals_.get(),
                     ws.group_arrivals_.get(),
                     ws.error_.get()};
  const Phase gate_up = phase_of(Proj::GateUp, k, shape.hidden, shape.intermediate);
  const Phase down = phase_of(Proj::Down, k, shape.hidden, shape.intermediate);
  launch_persistent(kernels.gate_up, kernels.threads, gate_up.total_steps, gate_up_smem(kernels, shape.hidden), args,
                    stream);
  // down: the activations go to shared memory too when they fit beside the stages.
  const size_t stages = static_cast<size_t>(kernels.threads / 32) * kernels.warp_smem(down.G);
  const size_t act = static_cast<size_t>(k) * padded_blocks(shape.intermediate) * 128;
  if (stages + act <= static_cast<size_t>(ws.max_smem_))
    launch_persistent(kernels.down_act_in_smem, kernels.threads, down.total_steps, stages + act, args, stream);
  else
    launch_persistent(kernels.down_act_in_global, kernels.threads, down.total_steps, stages, args, stream);
}

}  // namespace ossrun::gpu
