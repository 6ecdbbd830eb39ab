// mxfp4_moe_matvec: kernels, then the launcher (see the header for the operation).
//
// Work split. Each launch is a list of tasks, a task being two rows that share the same input vector: the
// gate and up rows of one intermediate feature (gate_up), or two adjacent output rows (down), of one chosen
// expert. Warps are persistent and each takes a contiguous range of tasks, so a warp meets at most a few
// experts. Within a warp, lane l owns the 16-byte blocks g = l + 32j of every row (J = ceil(K/32/32) of them),
// keeps the 32 input values of those blocks in registers for the whole range, and loads the next task's
// blocks into registers before it decodes the current one, and asks L2 for the blocks of the task after that
// (registers for a second task ahead would cost occupancy), so that loads stay in flight while it computes.
//
// Memory: every weight byte is read once with 16-byte loads (a warp reads 512 contiguous bytes of a row per
// load instruction); input vectors come from L2; the decode table sits in shared memory (mxfp4_device.cuh).
#include <cstdint>
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/mxfp4_device.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "gpu_kernels/persistent_grid.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using device_util::bf16_value;
using device_util::load_stream16;
using device_util::prefetch_l2;
using device_util::warp_sum;
using mxfp4_device::block_dot;
using mxfp4_device::e8m0_value;
using mxfp4_device::kLutBytes;
using mxfp4_device::lut_entry_bytes;

constexpr int kThreads = 256;
constexpr int kWarpsPerCta = kThreads / 32;
constexpr int kMaxJ = kMoeMaxK / 32 / 32;  // blocks per lane per row at the largest K

constexpr int kErrorBadSlot = 1;
constexpr int kErrorMisaligned = 2;

struct MoeArgs {
  const ExpertSlotMxfp4* slots;  // (n_slots)
  const ExpertChoice* choices;   // (k)
  int k, n_slots;
  int hidden, intermediate;  // H, I
  SwigluParams swiglu;
  const float* x;     // (H)
  float* out;         // (H)
  float* act;         // (k, I)
  float* partial;     // (k, H)
  unsigned* arrivals;  // (H/2)
  int* error;         // (1)
};

enum class Proj { GateUp, Down };

// ---------------------------------------------------------------------------------------------------------
// Kernels

// The projection of one chosen expert, as the warp sees it.
struct ExpertRows {
  const uint8_t* blocks;  // (rows, G, 16)
  const uint8_t* scales;  // (rows, G)
  const uint16_t* bias;   // (rows)
  float weight;
  bool ok;  // false: bad slot or misaligned blocks; the choice then contributes zero
};

template <Proj P>
__device__ ExpertRows lookup_expert(const MoeArgs& a, int choice, int lane) {
  const ExpertChoice ch = a.choices[choice];
  ExpertRows e{nullptr, nullptr, nullptr, ch.weight, false};
  if (ch.slot < 0 || ch.slot >= a.n_slots) {
    if (lane == 0) atomicOr(a.error, kErrorBadSlot);
    return e;
  }
  const ExpertSlotMxfp4& s = a.slots[ch.slot];
  e.blocks = P == Proj::GateUp ? s.gate_up_blocks : s.down_blocks;
  e.scales = P == Proj::GateUp ? s.gate_up_scales : s.down_scales;
  e.bias = P == Proj::GateUp ? s.gate_up_bias : s.down_bias;
  // Both projections' blocks are checked in both kernels, so a bad slice contributes nothing at all.
  if ((reinterpret_cast<uintptr_t>(s.gate_up_blocks) | reinterpret_cast<uintptr_t>(s.down_blocks)) % 16 != 0) {
    if (lane == 0) atomicOr(a.error, kErrorMisaligned);
    return e;
  }
  e.ok = true;
  return e;
}

// Two rows of one expert reduced together by one warp, fetched one task ahead of their use.
template <int J>
struct RowPair {
  uint4 q[2][J];     // this lane's blocks g = lane + 32j of each row
  uint32_t s[2][J];  // their scale bytes
  float bias[2];
  float weight;
  int choice;  // index into the choice list
  int row;     // the first of the two rows
  bool ok;
};

// Only the last of a lane's J blocks can lie past the row's G blocks.
template <int J>
__device__ __forceinline__ bool owns_block(int j, int lane, int G) {
  return j < J - 1 || lane + 32 * j < G;
}

template <int J>
__device__ __forceinline__ void fetch_pair(RowPair<J>& rp, const ExpertRows& e, int choice, int row, int G, int lane) {
  rp.choice = choice;
  rp.row = row;
  rp.ok = e.ok;
  rp.weight = e.weight;
  const size_t row_bytes = static_cast<size_t>(G) * 16;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const uint8_t* blocks = e.blocks + static_cast<size_t>(row + r) * row_bytes;
    const uint8_t* scales = e.scales + static_cast<size_t>(row + r) * G;
#pragma unroll
    for (int j = 0; j < J; ++j) {
      const int g = lane + 32 * j;
      if (e.ok && owns_block<J>(j, lane, G)) {
        rp.q[r][j] = load_stream16(blocks + static_cast<size_t>(g) * 16);
        rp.s[r][j] = __ldg(scales + g);
      } else {
        rp.q[r][j] = make_uint4(0, 0, 0, 0);
        rp.s[r][j] = 0;
      }
    }
    rp.bias[r] = e.ok ? bf16_value(__ldg(e.bias + row + r)) : 0.0f;
  }
}

// L2 prefetch of what fetch_pair will load for the same rows.
template <int J>
__device__ __forceinline__ void prefetch_pair(const ExpertRows& e, int row, int G, int lane) {
  if (!e.ok) return;
  const size_t row_bytes = static_cast<size_t>(G) * 16;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const uint8_t* blocks = e.blocks + static_cast<size_t>(row + r) * row_bytes;
#pragma unroll
    for (int j = 0; j < J; ++j)
      if (owns_block<J>(j, lane, G)) prefetch_l2(blocks + static_cast<size_t>(lane + 32 * j) * 16);
    if (lane < (G + 127) / 128) prefetch_l2(e.scales + static_cast<size_t>(row + r) * G + 128 * lane);
  }
}

// Input values of this lane's blocks: x[j][i] = src[32 * (lane + 32j) + i]; zero past the end.
template <int J>
__device__ __forceinline__ void load_inputs(float (&x)[J][32], const float* src, int G, int lane) {
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int g = lane + 32 * j;
#pragma unroll
    for (int v = 0; v < 8; ++v) {
      const float4 f = owns_block<J>(j, lane, G) ? __ldg(reinterpret_cast<const float4*>(src + 32 * g) + v)
                                                  : make_float4(0.f, 0.f, 0.f, 0.f);
      x[j][4 * v + 0] = f.x;
      x[j][4 * v + 1] = f.y;
      x[j][4 * v + 2] = f.z;
      x[j][4 * v + 3] = f.w;
    }
  }
}

// The two rows' dot products with x (without bias), summed over the warp; every lane gets them.
template <int J, Mxfp4Lut L>
__device__ __forceinline__ float2 pair_dot(const RowPair<J>& rp, const float (&x)[J][32], const char* lut,
                                           uint32_t lane_off, int G, int lane) {
  float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    if (owns_block<J>(j, lane, G)) {
      acc0 = fmaf(e8m0_value(rp.s[0][j]), block_dot<L>(rp.q[0][j], x[j], lut, lane_off), acc0);
      acc1 = fmaf(e8m0_value(rp.s[1][j]), block_dot<L>(rp.q[1][j], x[j], lut, lane_off), acc1);
    }
  }
  return make_float2(warp_sum(acc0), warp_sum(acc1));
}

__device__ __forceinline__ float clamped_swiglu(float gate, float up, SwigluParams p) {
  gate = fminf(gate, p.limit);                  // upper bound only
  up = fminf(fmaxf(up, -p.limit), p.limit);     // both sides
  return gate / (1.0f + expf(-p.alpha * gate)) * (up + 1.0f);  // gate * sigmoid(alpha * gate) * (up + 1)
}

// The warp's contiguous task range [t0, t1) out of n_tasks.
__device__ __forceinline__ void warp_task_range(long long n_tasks, long long& t0, long long& t1) {
  const long long warp = (static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x) >> 5;
  const long long n_warps = static_cast<long long>(gridDim.x) * kWarpsPerCta;
  t0 = n_tasks * warp / n_warps;
  t1 = n_tasks * (warp + 1) / n_warps;
}

// act[c][j] = swiglu(W1 x + b1)[j] for every choice c and feature j. Task = (choice, j): rows 2j and 2j+1.
template <int J, Mxfp4Lut L>
__global__ void __launch_bounds__(kThreads) gate_up_swiglu_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char lut[];
  mxfp4_device::fill_lut<L>(lut);
  const int lane = threadIdx.x & 31;
  const uint32_t lane_off = lane * lut_entry_bytes<L>();
  const int G = a.hidden / 32;
  float x[J][32];
  load_inputs<J>(x, a.x, G, lane);
  __syncthreads();

  const long long features = a.intermediate;
  long long t, t_end;
  warp_task_range(a.k * features, t, t_end);
  if (t >= t_end) return;
  int cached_choice = -1;
  ExpertRows e{};
  auto fetch = [&](long long task, RowPair<J>& rp) {
    const int c = static_cast<int>(task / features);
    const int j = static_cast<int>(task - c * features);
    if (c != cached_choice) {
      e = lookup_expert<Proj::GateUp>(a, c, lane);
      cached_choice = c;
    }
    fetch_pair<J>(rp, e, c, 2 * j, G, lane);
  };
  auto prefetch = [&](long long task) {  // only within the cached expert
    const int c = static_cast<int>(task / features);
    if (c == cached_choice) prefetch_pair<J>(e, 2 * static_cast<int>(task - c * features), G, lane);
  };
  RowPair<J> cur, next;
  fetch(t, cur);
  for (; t < t_end; ++t) {
    if (t + 1 < t_end) fetch(t + 1, next);
    if (t + 2 < t_end) prefetch(t + 2);
    const float2 h = pair_dot<J, L>(cur, x, lut, lane_off, G, lane);
    if (lane == 0) {
      const float v = cur.ok ? clamped_swiglu(h.x + cur.bias[0], h.y + cur.bias[1], a.swiglu) : 0.0f;
      a.act[static_cast<long long>(cur.choice) * a.intermediate + cur.row / 2] = v;
    }
    cur = next;
  }
}

// partial[c][r] = weight_c * (W2 act[c] + b2)[r]; then out[r] += sum over c of partial[c][r], added in choice
// order by the last warp to finish the pair of rows containing r. Task = (choice, q): rows 2q and 2q+1.
template <int J, Mxfp4Lut L>
__global__ void __launch_bounds__(kThreads) down_combine_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char lut[];
  mxfp4_device::fill_lut<L>(lut);
  const int lane = threadIdx.x & 31;
  const uint32_t lane_off = lane * lut_entry_bytes<L>();
  const int G = a.intermediate / 32;
  __syncthreads();

  const long long pairs = a.hidden / 2;
  long long t_begin, t_end;
  warp_task_range(a.k * pairs, t_begin, t_end);
  if (t_begin >= t_end) return;
  int cached_choice = -1;
  ExpertRows e{};
  auto fetch = [&](long long task, RowPair<J>& rp) {
    const int c = static_cast<int>(task / pairs);
    const int q = static_cast<int>(task - c * pairs);
    if (c != cached_choice) {
      e = lookup_expert<Proj::Down>(a, c, lane);
      cached_choice = c;
    }
    fetch_pair<J>(rp, e, c, 2 * q, G, lane);
  };
  auto prefetch = [&](long long task) {  // only within the cached expert
    const int c = static_cast<int>(task / pairs);
    if (c == cached_choice) prefetch_pair<J>(e, 2 * static_cast<int>(task - c * pairs), G, lane);
  };
  float x[J][32];
  int x_choice = -1;
  RowPair<J> cur, next;
  fetch(t_begin, cur);
  for (long long t = t_begin; t < t_end; ++t) {
    if (t + 1 < t_end) fetch(t + 1, next);
    if (t + 2 < t_end) prefetch(t + 2);
    if (cur.choice != x_choice) {  // at most a few times per warp
      load_inputs<J>(x, a.act + static_cast<long long>(cur.choice) * a.intermediate, G, lane);
      x_choice = cur.choice;
    }
    const float2 y = pair_dot<J, L>(cur, x, lut, lane_off, G, lane);
    if (lane == 0) {
      float* p = a.partial + static_cast<long long>(cur.choice) * a.hidden + cur.row;
      p[0] = cur.ok ? cur.weight * (y.x + cur.bias[0]) : 0.0f;
      p[1] = cur.ok ? cur.weight * (y.y + cur.bias[1]) : 0.0f;
    }
    cur = next;
  }

  // Publish this warp's partials, then count its tasks in. The fence after the barrier orders lane 0's
  // stores before every lane's arrival; the last arrival for a pair sees all k partials.
  __syncwarp();
  __threadfence();
  for (long long t = t_begin + lane; t < t_end; t += 32) {
    const int c = static_cast<int>(t / pairs);
    const int q = static_cast<int>(t - c * pairs);
    if (atomicAdd(a.arrivals + q, 1u) != static_cast<unsigned>(a.k - 1)) continue;
    __threadfence();
    float s0 = 0.0f, s1 = 0.0f;
    for (int cc = 0; cc < a.k; ++cc) {
      const float* p = a.partial + static_cast<long long>(cc) * a.hidden + 2 * q;
      s0 += __ldcg(p);  // from L2: other SMs wrote these
      s1 += __ldcg(p + 1);
    }
    a.out[2 * q] += s0;
    a.out[2 * q + 1] += s1;
    a.arrivals[q] = 0;  // ready for the next launch
  }
}

// ---------------------------------------------------------------------------------------------------------
// Launcher

using MoeKernel = void (*)(MoeArgs);

template <template <int, Mxfp4Lut> class Pick>
MoeKernel pick_kernel(int J, Mxfp4Lut lut) {
  static const MoeKernel table[2][kMaxJ] = {
      {Pick<1, Mxfp4Lut::F32x2>::fn, Pick<2, Mxfp4Lut::F32x2>::fn, Pick<3, Mxfp4Lut::F32x2>::fn,
       Pick<4, Mxfp4Lut::F32x2>::fn},
      {Pick<1, Mxfp4Lut::Bf16x2>::fn, Pick<2, Mxfp4Lut::Bf16x2>::fn, Pick<3, Mxfp4Lut::Bf16x2>::fn,
       Pick<4, Mxfp4Lut::Bf16x2>::fn}};
  return table[lut == Mxfp4Lut::F32x2 ? 0 : 1][J - 1];
}
template <int J, Mxfp4Lut L>
struct GateUpKernel {
  static constexpr MoeKernel fn = gate_up_swiglu_mxfp4_kernel<J, L>;
};
template <int J, Mxfp4Lut L>
struct DownKernel {
  static constexpr MoeKernel fn = down_combine_mxfp4_kernel<J, L>;
};

void launch_persistent(MoeKernel kernel, long long n_tasks, const MoeArgs& args, cudaStream_t stream) {
  const long long wanted = (n_tasks + kWarpsPerCta - 1) / kWarpsPerCta;
  const int resident = resident_ctas(reinterpret_cast<const void*>(kernel), kThreads, kLutBytes);
  const int grid = static_cast<int>(wanted < resident ? wanted : resident);
  kernel<<<grid, kThreads, kLutBytes, stream>>>(args);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

void check_reduction_length(const char* what, int K) {
  if (K <= 0 || K % 32 != 0 || K > kMoeMaxK)
    throw InputError(std::string("mxfp4_moe_matvec: ") + what + " = " + std::to_string(K) +
                     "; the GPU kernel needs a positive multiple of 32 no larger than " + std::to_string(kMoeMaxK));
}

int blocks_per_lane(int K) { return (K / 32 + 31) / 32; }

}  // namespace

const char* mxfp4_lut_name(Mxfp4Lut lut) { return lut == Mxfp4Lut::F32x2 ? "f32x2" : "bf16x2"; }

MoeWorkspace::MoeWorkspace(int hidden, int intermediate, int max_choices)
    : hidden_(hidden), intermediate_(intermediate), max_choices_(max_choices) {
  check_reduction_length("hidden size", hidden);
  check_reduction_length("intermediate size", intermediate);
  if (max_choices < 1) throw InputError("MoeWorkspace: max_choices must be at least 1, got " + std::to_string(max_choices));
  act_ = DeviceBuffer<float>(static_cast<size_t>(max_choices) * intermediate);
  partial_ = DeviceBuffer<float>(static_cast<size_t>(max_choices) * hidden);
  arrivals_ = DeviceBuffer<unsigned>(static_cast<size_t>(hidden) / 2);
  error_ = DeviceBuffer<int>(1);
  OSSRUN_CUDA_CHECK(cudaMemset(arrivals_.get(), 0, arrivals_.bytes()));
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
  if (flags & kErrorMisaligned) msg += " an expert slot's blocks pointer was not 16-byte aligned;";
  throw InputError(msg + " those choices contributed nothing");
}

void mxfp4_moe_matvec(const ExpertSlotMxfp4* slots, const ExpertChoice* choices, int k, const float* x, float* out,
                      const MoeShape& shape, const SwigluParams& swiglu, MoeWorkspace& ws, cudaStream_t stream,
                      Mxfp4Lut lut) {
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
  if (k == 0) return;

  const MoeArgs args{slots, choices, k, shape.n_slots, shape.hidden, shape.intermediate, swiglu, x, out,
                     ws.act_.get(), ws.partial_.get(), ws.arrivals_.get(), ws.error_.get()};
  launch_persistent(pick_kernel<GateUpKernel>(blocks_per_lane(shape.hidden), lut),
                    static_cast<long long>(k) * shape.intermediate, args, stream);
  launch_persistent(pick_kernel<DownKernel>(blocks_per_lane(shape.intermediate), lut),
                    static_cast<long long>(k) * (shape.hidden / 2), args, stream);
}

}  // namespace ossrun::gpu
