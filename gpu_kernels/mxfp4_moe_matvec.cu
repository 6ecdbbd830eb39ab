// mxfp4_moe_matvec: kernels, then the launcher (see the header for the operation).
//
// Work split. Each launch is a list of tasks: a gate_up task is one intermediate feature j of one choice
// (rows 2j and 2j+1, reduced together), a down task one output row of one choice (a warp takes two at a time
// when they are adjacent rows of the same choice). Warps are persistent and each takes a contiguous range of
// tasks, so a warp meets at most a few experts. Within a warp, lane l owns the 16-byte blocks g = l + 32j of
// every row (J = ceil(K/32/32) of them) and keeps the 32 input values of those blocks in registers for the
// whole range.
//
// Latency. Per step a warp loads the next step's blocks into registers before decoding the current ones, and
// asks L2 for the blocks three steps ahead (an L2 prefetch takes no register). At kernel start the chosen
// experts' pointers go to shared memory (no dependent global loads inside the loop), while the decode table is
// being filled.
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
constexpr int kPrefetchSteps = 3;          // how far ahead of the current step L2 is asked for blocks

constexpr int kErrorBadSlot = 1;
constexpr int kErrorMisaligned = 2;

struct MoeArgs {
  const ExpertSlotMxfp4* slots;  // (n_slots)
  const ExpertChoice* choices;   // (k)
  int k, n_slots;
  int hidden, intermediate;  // H, I
  SwigluParams swiglu;
  int deterministic;  // MoeCombine::Deterministic
  const float* x;      // (H)
  float* out;          // (H)
  float* act;          // (k, I)
  float* partial;      // (k, H)
  unsigned* arrivals;  // (H)
  int* error;          // (1)
};

enum class Proj { GateUp, Down };

// ---------------------------------------------------------------------------------------------------------
// Kernels

// One choice's projection, as the kernels use it; a CTA keeps all k in shared memory.
struct ChosenRows {
  const uint8_t* blocks;  // (rows, G, 16)
  const uint8_t* scales;  // (rows, G)
  const uint16_t* bias;   // (rows)
  float weight;
  int ok;  // 0: skipped, bad slot or misaligned blocks; the choice then contributes zero
};

// Threads 0..k-1 each look up one choice. Both projections' blocks are checked in both kernels, so a bad
// slice contributes nothing at all. CTA 0 reports what it finds. The caller synchronizes before use.
template <Proj P>
__device__ void load_chosen(ChosenRows* chosen, const MoeArgs& a) {
  const int c = threadIdx.x;
  if (c >= a.k) return;
  const ExpertChoice ch = a.choices[c];
  ChosenRows e{nullptr, nullptr, nullptr, ch.weight, 0};
  int error = 0;
  if (ch.slot == kSkippedSlot) {
    // Served elsewhere (the CPU, in the hybrid offload): contributes zero, not an error.
  } else if (ch.slot < 0 || ch.slot >= a.n_slots) {
    error = kErrorBadSlot;
  } else {
    const ExpertSlotMxfp4 s = a.slots[ch.slot];
    e.blocks = P == Proj::GateUp ? s.gate_up_blocks : s.down_blocks;
    e.scales = P == Proj::GateUp ? s.gate_up_scales : s.down_scales;
    e.bias = P == Proj::GateUp ? s.gate_up_bias : s.down_bias;
    if ((reinterpret_cast<uintptr_t>(s.gate_up_blocks) | reinterpret_cast<uintptr_t>(s.down_blocks)) % 16 != 0)
      error = kErrorMisaligned;
    else
      e.ok = 1;
  }
  if (error != 0 && blockIdx.x == 0) atomicOr(a.error, error);
  chosen[c] = e;
}

// Rows r and r+1 (the second only when `two`) of one choice, fetched one step ahead of their use.
template <int J>
struct RowPair {
  uint4 q[2][J];     // this lane's blocks g = lane + 32j of each row
  uint32_t s[2][J];  // their scale bytes
  float bias[2];
  float weight;
  int choice;
  int row;
  bool two;
  bool ok;
};

// Only the last of a lane's J blocks can lie past the row's G blocks.
template <int J>
__device__ __forceinline__ bool owns_block(int j, int lane, int G) {
  return j < J - 1 || lane + 32 * j < G;
}

template <int J>
__device__ __forceinline__ void fetch_rows(RowPair<J>& rp, const ChosenRows& e, int choice, int row, bool two, int G,
                                           int lane) {
  rp.choice = choice;
  rp.row = row;
  rp.two = two;
  rp.ok = e.ok != 0;
  rp.weight = e.weight;
  const size_t row_bytes = static_cast<size_t>(G) * 16;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const bool live = rp.ok && (r == 0 || two);
    const uint8_t* blocks = e.blocks + static_cast<size_t>(row + r) * row_bytes;
    const uint8_t* scales = e.scales + static_cast<size_t>(row + r) * G;
#pragma unroll
    for (int j = 0; j < J; ++j) {
      const int g = lane + 32 * j;
      if (live && owns_block<J>(j, lane, G)) {
        rp.q[r][j] = load_stream16(blocks + static_cast<size_t>(g) * 16);
        rp.s[r][j] = __ldg(scales + g);
      } else {
        rp.q[r][j] = make_uint4(0, 0, 0, 0);
        rp.s[r][j] = 0;
      }
    }
    rp.bias[r] = live ? bf16_value(__ldg(e.bias + row + r)) : 0.0f;
  }
}

// L2 prefetch of rows r and r+1 (the second only when `two`).
template <int J>
__device__ __forceinline__ void prefetch_rows(const ChosenRows& e, int row, bool two, int G, int lane) {
  if (!e.ok) return;
  const size_t row_bytes = static_cast<size_t>(G) * 16;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (r == 1 && !two) break;
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

// The rows' dot products with x (without bias), summed over the warp; every lane gets them.
template <int J, Mxfp4Lut L>
__device__ __forceinline__ float2 pair_dot(const RowPair<J>& rp, const float (&x)[J][32], const char* lut,
                                           uint32_t lane_off, int G, int lane) {
  float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    if (owns_block<J>(j, lane, G)) {
      acc0 = fmaf(e8m0_value(rp.s[0][j]), block_dot<L>(rp.q[0][j], x[j], lut, lane_off), acc0);
      if (rp.two) acc1 = fmaf(e8m0_value(rp.s[1][j]), block_dot<L>(rp.q[1][j], x[j], lut, lane_off), acc1);
    }
  }
  return make_float2(warp_sum(acc0), warp_sum(acc1));
}

__device__ __forceinline__ float clamped_swiglu(float gate, float up, SwigluParams p) {
  gate = fminf(gate, p.limit);                                 // upper bound only
  up = fminf(fmaxf(up, -p.limit), p.limit);                    // both sides
  return gate / (1.0f + expf(-p.alpha * gate)) * (up + 1.0f);  // gate * sigmoid(alpha * gate) * (up + 1)
}

// The warp's contiguous task range [t0, t1) out of n_tasks.
__device__ __forceinline__ void warp_task_range(int n_tasks, int& t0, int& t1) {
  const long long warp = (static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x) >> 5;
  const long long n_warps = static_cast<long long>(gridDim.x) * kWarpsPerCta;
  t0 = static_cast<int>(n_tasks * warp / n_warps);
  t1 = static_cast<int>(n_tasks * (warp + 1) / n_warps);
}

// act[c][j] = swiglu(W1 x + b1)[j] for every choice c and feature j.
template <int J, Mxfp4Lut L>
__global__ void __launch_bounds__(kThreads) gate_up_swiglu_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char lut[];
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  load_chosen<Proj::GateUp>(chosen, a);
  mxfp4_device::fill_lut<L>(lut);
  const int lane = threadIdx.x & 31;
  const uint32_t lane_off = lane * lut_entry_bytes<L>();
  const int G = a.hidden / 32, I = a.intermediate;
  float x[J][32];
  load_inputs<J>(x, a.x, G, lane);
  __syncthreads();

  int t0, t1;
  warp_task_range(a.k * I, t0, t1);
  if (t0 >= t1) return;
  int c = t0 / I, j = t0 - c * I;  // the step being computed
  int left = t1 - t0;              // steps from it to the end of the range
  // Prefetch for the step `ahead` steps after (c, j), when it is in the range and the same choice.
  auto prefetch = [&](int ahead) {
    if (ahead < left && j + ahead < I) prefetch_rows<J>(chosen[c], 2 * (j + ahead), true, G, lane);
  };
  // The SwiGLU runs once per 32 steps, on all lanes at once: lane `holder` keeps step n's gate and up.
  float held_gate = 0.0f, held_up = 0.0f;
  int held_dst = -1, holder = 0;  // held_dst: index into act, or -1 when this lane holds nothing
  bool held_ok = false;           // false: a bad choice, whose activations are 0
  auto flush = [&] {
    if (held_dst >= 0) a.act[held_dst] = held_ok ? clamped_swiglu(held_gate, held_up, a.swiglu) : 0.0f;
    held_dst = -1;
    holder = 0;
  };
  auto step = [&](RowPair<J>& now, RowPair<J>& next) {
    if (left > 1) {
      const int nc = j + 1 < I ? c : c + 1, nj = j + 1 < I ? j + 1 : 0;
      fetch_rows<J>(next, chosen[nc], nc, 2 * nj, true, G, lane);
    }
    prefetch(kPrefetchSteps);
    const float2 h = pair_dot<J, L>(now, x, lut, lane_off, G, lane);
    if (lane == holder) {
      held_gate = h.x + now.bias[0];
      held_up = h.y + now.bias[1];
      held_dst = now.choice * I + now.row / 2;
      held_ok = now.ok;
    }
    if (++holder == 32 || left == 1) flush();
    if (++j == I) j = 0, ++c;
    --left;
  };
  RowPair<J> A, B;
  fetch_rows<J>(A, chosen[c], c, 2 * j, true, G, lane);
  for (int ahead = 2; ahead < kPrefetchSteps; ++ahead) prefetch(ahead);
  while (true) {
    step(A, B);
    if (left == 0) break;
    step(B, A);
    if (left == 0) break;
  }
}

// y = W2 act[c] + b2 for every choice c, then out += sum over c of weight_c * y_c: either through partial[c]
// and the last arrival per row (deterministic), or with float atomics.
template <int J, Mxfp4Lut L>
__global__ void __launch_bounds__(kThreads) down_combine_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char lut[];
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  load_chosen<Proj::Down>(chosen, a);
  mxfp4_device::fill_lut<L>(lut);
  const int lane = threadIdx.x & 31;
  const uint32_t lane_off = lane * lut_entry_bytes<L>();
  const int G = a.intermediate / 32, H = a.hidden;

  int t0, t1;
  warp_task_range(a.k * H, t0, t1);
  int c = t0 / H, r = t0 - c * H;  // the step being computed starts at row r of choice c
  int left = t1 - t0;              // rows from it to the end of the range
  float x[J][32];
  int x_choice = c;
  if (left > 0) load_inputs<J>(x, a.act + static_cast<long long>(c) * a.intermediate, G, lane);
  __syncthreads();
  if (left <= 0) return;

  // A step takes rows r and r+1 when both are in the range and belong to the same choice.
  auto two_at = [&](int row, int rows_left) { return rows_left >= 2 && row + 1 < H; };
  auto step = [&](RowPair<J>& now, RowPair<J>& next) {
    const int taken = now.two ? 2 : 1;
    if (left > taken) {
      const int nr = r + taken < H ? r + taken : 0, nc = r + taken < H ? c : c + 1;
      fetch_rows<J>(next, chosen[nc], nc, nr, two_at(nr, left - taken), G, lane);
    }
    const int pr = r + 2 * kPrefetchSteps;  // about kPrefetchSteps steps ahead, within this choice
    if (pr < H && 2 * kPrefetchSteps < left) prefetch_rows<J>(chosen[c], pr, pr + 1 < H, G, lane);
    if (now.choice != x_choice) {  // at most a few times per warp
      load_inputs<J>(x, a.act + static_cast<long long>(now.choice) * a.intermediate, G, lane);
      x_choice = now.choice;
    }
    const float2 y = pair_dot<J, L>(now, x, lut, lane_off, G, lane);
    if (lane == 0) {
      const float v0 = now.ok ? now.weight * (y.x + now.bias[0]) : 0.0f;
      const float v1 = now.ok ? now.weight * (y.y + now.bias[1]) : 0.0f;
      if (a.deterministic) {
        float* p = a.partial + now.choice * H + now.row;
        p[0] = v0;
        if (now.two) p[1] = v1;
      } else {
        atomicAdd(a.out + now.row, v0);
        if (now.two) atomicAdd(a.out + now.row + 1, v1);
      }
    }
    r += taken;
    if (r >= H) r -= H, ++c;
    left -= taken;
  };
  RowPair<J> A, B;
  fetch_rows<J>(A, chosen[c], c, r, two_at(r, left), G, lane);
  for (int ahead = 2; ahead < 2 * kPrefetchSteps; ahead += 2)
    if (r + ahead < H && ahead < left) prefetch_rows<J>(chosen[c], r + ahead, r + ahead + 1 < H, G, lane);
  while (true) {
    step(A, B);
    if (left == 0) break;
    step(B, A);
    if (left == 0) break;
  }
  if (!a.deterministic) return;

  // Publish this warp's partials, then count its rows in. The fence after the barrier orders lane 0's stores
  // before every lane's arrival; the last arrival for a row sees all k partials.
  __syncwarp();
  __threadfence();
  for (int t = t0 + lane; t < t1; t += 32) {
    const int row = t % H;
    if (atomicAdd(a.arrivals + row, 1u) != static_cast<unsigned>(a.k - 1)) continue;
    __threadfence();
    float sum = 0.0f;
    for (int cc = 0; cc < a.k; ++cc) sum += __ldcg(a.partial + cc * H + row);  // from L2: other SMs wrote these
    a.out[row] += sum;
    a.arrivals[row] = 0;  // ready for the next launch
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

void launch_persistent(MoeKernel kernel, int n_tasks, const MoeArgs& args, cudaStream_t stream) {
  const int wanted = (n_tasks + kWarpsPerCta - 1) / kWarpsPerCta;
  const int resident = resident_ctas(reinterpret_cast<const void*>(kernel), kThreads, kLutBytes);
  kernel<<<wanted < resident ? wanted : resident, kThreads, kLutBytes, stream>>>(args);
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
  act_ = DeviceBuffer<float>(static_cast<size_t>(max_choices) * intermediate);
  partial_ = DeviceBuffer<float>(static_cast<size_t>(max_choices) * hidden);
  arrivals_ = DeviceBuffer<unsigned>(static_cast<size_t>(hidden));
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
                      MoeCombine combine, Mxfp4Lut lut) {
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

  const MoeArgs args{slots,  choices, k, shape.n_slots, shape.hidden, shape.intermediate, swiglu,
                     combine == MoeCombine::Deterministic, x, out, ws.act_.get(), ws.partial_.get(),
                     ws.arrivals_.get(), ws.error_.get()};
  launch_persistent(pick_kernel<GateUpKernel>(blocks_per_lane(shape.hidden), lut), k * shape.intermediate, args,
                    stream);
  launch_persistent(pick_kernel<DownKernel>(blocks_per_lane(shape.intermediate), lut), k * shape.hidden, args, stream);
}

}  // namespace ossrun::gpu
