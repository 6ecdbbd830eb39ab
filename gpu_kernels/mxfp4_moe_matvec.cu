// mxfp4_moe_matvec: kernels, then the launcher (see the header for the operation).
//
// Work split. A CTA has 12 warps in groups of S = ceil(K/1024) warps (K = H for gate_up, I for down). Within a
// group, warp s owns the K-slice of blocks 32s .. 32s+31 of every row (lane l: block g = 32s + l) and keeps
// that block's 32 input values in registers; one block of input per lane keeps a thread near 80 registers, so
// two CTAs (24 warps) share an SM, and the 64 KiB decode table is shared by 12 warps.
// A group walks a contiguous range of tasks, two rows that share one input per step: the gate and up rows
// (2j, 2j+1) of feature j of one choice, or output rows r and r+1 of one choice (one row at a choice's end or
// the range's end). Each warp reduces its slice of both rows, the group exchanges the partial sums through
// shared memory (one named barrier per step) and its first warp finishes the step: the SwiGLU (gathered so
// that one pass of it serves 32 steps), or the weighting and the output.
//
// Latency. Each warp loads the next step's blocks into registers before decoding the current ones, and asks L2
// for the blocks three steps ahead (an L2 prefetch takes no register). At kernel start the chosen experts'
// pointers go to shared memory while the decode table is filled, so the loop has no dependent global loads.
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
using mxfp4_device::block_dot;
using mxfp4_device::e8m0_value;
using mxfp4_device::kLutBytes;
using mxfp4_device::lut_entry_bytes;

constexpr int kWarpsPerCta = 12;  // a multiple of every group size 1..4
constexpr int kThreads = 32 * kWarpsPerCta;
constexpr int kPrefetchSteps = 3;  // how far ahead of the current step L2 is asked for blocks

constexpr int kErrorBadSlot = 1;
constexpr int kErrorMisaligned = 2;

struct MoeArgs {
  const ExpertSlotMxfp4* slots;  // (n_slots)
  const ExpertChoice* choices;   // (k)
  int k, n_slots;
  int hidden, intermediate;  // H, I
  SwigluParams swiglu;
  int deterministic;   // MoeCombine::Deterministic
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
  int ok;  // 0: bad slot or misaligned blocks; the choice then contributes zero
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
  if (ch.slot < 0 || ch.slot >= a.n_slots) {
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

// Where a thread sits: warp s of group q (S warps a group, R groups a CTA), lane l owning block g of each row.
struct Slice {
  int lane, s, q, S, R, G, g;
  bool owns;  // g < G
  uint32_t lane_off;
};

template <Mxfp4Lut L>
__device__ __forceinline__ Slice slice_of_thread(int K) {
  Slice sl;
  sl.lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  sl.G = K / 32;
  sl.S = (sl.G + 31) / 32;
  sl.R = kWarpsPerCta / sl.S;
  sl.s = warp % sl.S;
  sl.q = warp / sl.S;
  sl.g = 32 * sl.s + sl.lane;
  sl.owns = sl.g < sl.G;
  sl.lane_off = sl.lane * lut_entry_bytes<L>();
  return sl;
}

// The S warps of group q meet (named barrier 1 + q; 0 is __syncthreads).
__device__ __forceinline__ void group_barrier(const Slice& sl) {
  asm volatile("bar.sync %0, %1;" ::"r"(1 + sl.q), "r"(32 * sl.S) : "memory");
}

// Rows r and r+1 (the second only when `two`) of one choice: this lane's block of each, fetched a step early.
// (Which rows they are, the loop knows; registers are what limits the warps an SM holds.)
struct RowPair {
  uint4 q[2];
  uint32_t scales;  // the two scale bytes, row r's in bits 0-7
  float bias[2];    // loaded by the group's first warp only
};

__device__ __forceinline__ void fetch_rows(RowPair& rp, const ChosenRows& e, int row, bool two, const Slice& sl) {
  rp.scales = 0;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const bool live = e.ok && (r == 0 || two);
    const size_t block = static_cast<size_t>(row + r) * sl.G + sl.g;
    if (live && sl.owns) {
      rp.q[r] = load_stream16(e.blocks + block * 16);
      rp.scales |= static_cast<uint32_t>(__ldg(e.scales + block)) << (8 * r);
    } else {
      rp.q[r] = make_uint4(0, 0, 0, 0);
    }
    rp.bias[r] = live && sl.s == 0 ? bf16_value(__ldg(e.bias + row + r)) : 0.0f;
  }
}

// L2 prefetch of what fetch_rows would load for rows r and r+1 (the second only when `two`).
__device__ __forceinline__ void prefetch_rows(const ChosenRows& e, int row, bool two, const Slice& sl) {
  if (!e.ok || !sl.owns) return;
  const size_t block = static_cast<size_t>(row) * sl.G + sl.g;
  prefetch_l2(e.blocks + block * 16);
  prefetch_l2(e.scales + block);
  if (two) {
    prefetch_l2(e.blocks + (block + sl.G) * 16);
    prefetch_l2(e.scales + block + sl.G);
  }
}

// This lane's block of an input vector: x[i] = src[32g + i]; zero when the lane owns no block.
__device__ __forceinline__ void load_input_block(float (&x)[32], const float* src, const Slice& sl) {
#pragma unroll
  for (int v = 0; v < 8; ++v) {
    const float4 f =
        sl.owns ? __ldg(reinterpret_cast<const float4*>(src + 32 * sl.g) + v) : make_float4(0.f, 0.f, 0.f, 0.f);
    x[4 * v + 0] = f.x;
    x[4 * v + 1] = f.y;
    x[4 * v + 2] = f.z;
    x[4 * v + 3] = f.w;
  }
}

// Both rows' dot products with x over the whole row, on every lane of the group's first warp (other warps:
// undefined). Each warp sums its slice with five shuffles for the two rows together (lanes 0-15 end with the
// first row's sum, 16-31 with the second's); the group adds the slices in slice order through shared memory.
template <Mxfp4Lut L>
__device__ __forceinline__ float2 group_dot(const RowPair& rp, bool two, const float (&x)[32], const char* lut,
                                            const Slice& sl, float2 (*exchange)[kWarpsPerCta], int parity) {
  float d0 = 0.0f, d1 = 0.0f;
  if (sl.owns) {
    d0 = e8m0_value(rp.scales & 0xffu) * block_dot<L>(rp.q[0], x, lut, sl.lane_off);
    if (two) d1 = e8m0_value(rp.scales >> 8) * block_dot<L>(rp.q[1], x, lut, sl.lane_off);
  }
  const bool upper = sl.lane & 16;
  float v = upper ? d1 : d0;
  v += __shfl_xor_sync(0xffffffffu, upper ? d0 : d1, 16);
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  float2* mine = &exchange[parity][threadIdx.x >> 5];
  if (sl.lane == 0) mine->x = v;
  if (sl.lane == 16) mine->y = v;
  group_barrier(sl);  // exchange[parity] is rewritten two steps later, after the next step's barrier
  float2 h = make_float2(0.0f, 0.0f);
  if (sl.s == 0) {
    for (int ss = 0; ss < sl.S; ++ss) {
      const float2 p = exchange[parity][sl.q * sl.S + ss];
      h.x += p.x;
      h.y += p.y;
    }
  }
  return h;
}

__device__ __forceinline__ float clamped_swiglu(float gate, float up, SwigluParams p) {
  gate = fminf(gate, p.limit);                                 // upper bound only
  up = fminf(fmaxf(up, -p.limit), p.limit);                    // both sides
  return gate / (1.0f + expf(-p.alpha * gate)) * (up + 1.0f);  // gate * sigmoid(alpha * gate) * (up + 1)
}

// The group's contiguous task range [t0, t1) out of n_tasks.
__device__ __forceinline__ void group_task_range(int n_tasks, const Slice& sl, int& t0, int& t1) {
  const long long group = static_cast<long long>(blockIdx.x) * sl.R + sl.q;
  const long long n_groups = static_cast<long long>(gridDim.x) * sl.R;
  t0 = static_cast<int>(n_tasks * group / n_groups);
  t1 = static_cast<int>(n_tasks * (group + 1) / n_groups);
}

// act[c][j] = swiglu(W1 x + b1)[j] for every choice c and feature j. Task = (c, j): rows 2j and 2j+1.
template <Mxfp4Lut L>
__global__ void __launch_bounds__(kThreads, 2) gate_up_swiglu_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char lut[];
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  __shared__ float2 exchange[2][kWarpsPerCta];
  load_chosen<Proj::GateUp>(chosen, a);
  mxfp4_device::fill_lut<L>(lut);
  const Slice sl = slice_of_thread<L>(a.hidden);
  const int I = a.intermediate;
  float x[32];
  load_input_block(x, a.x, sl);
  __syncthreads();

  int t0, t1;
  group_task_range(a.k * I, sl, t0, t1);
  if (t0 >= t1) return;
  int c = t0 / I, j = t0 - c * I;  // the step being computed
  int left = t1 - t0;              // steps from it to the end of the range
  int parity = 0;
  // The SwiGLU runs once per 32 steps, on all lanes of the first warp at once: lane `holder` keeps a step's
  // gate and up pre-activations.
  float held_gate = 0.0f, held_up = 0.0f;
  int held_dst = -1, holder = 0;  // held_dst: index into act, or -1 when this lane holds nothing
  bool held_ok = false;           // false: a bad choice, whose activations are 0
  auto flush = [&] {
    if (held_dst >= 0) a.act[held_dst] = held_ok ? clamped_swiglu(held_gate, held_up, a.swiglu) : 0.0f;
    held_dst = -1;
    holder = 0;
  };
  auto step = [&](RowPair& now, RowPair& next) {
    if (left > 1) {
      const int nc = j + 1 < I ? c : c + 1, nj = j + 1 < I ? j + 1 : 0;
      fetch_rows(next, chosen[nc], 2 * nj, true, sl);
    }
    if (kPrefetchSteps < left && j + kPrefetchSteps < I)
      prefetch_rows(chosen[c], 2 * (j + kPrefetchSteps), true, sl);
    const float2 h = group_dot<L>(now, true, x, lut, sl, exchange, parity);
    parity ^= 1;
    if (sl.s == 0) {
      if (sl.lane == holder) {
        held_gate = h.x + now.bias[0];
        held_up = h.y + now.bias[1];
        held_dst = c * I + j;
        held_ok = chosen[c].ok != 0;
      }
      if (++holder == 32 || left == 1) flush();
    }
    if (++j == I) j = 0, ++c;
    --left;
  };
  RowPair A, B;
  fetch_rows(A, chosen[c], 2 * j, true, sl);
  for (int ahead = 1; ahead < kPrefetchSteps; ++ahead)
    if (ahead < left && j + ahead < I) prefetch_rows(chosen[c], 2 * (j + ahead), true, sl);
  while (true) {
    step(A, B);
    if (left == 0) break;
    step(B, A);
    if (left == 0) break;
  }
}

// y = W2 act[c] + b2 for every choice c, then out += sum over c of weight_c * y_c: either through partial[c]
// and the last arrival per row (deterministic), or with float atomics. Task = (c, r): row r.
template <Mxfp4Lut L>
__global__ void __launch_bounds__(kThreads, 2) down_combine_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char lut[];
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  __shared__ float2 exchange[2][kWarpsPerCta];
  load_chosen<Proj::Down>(chosen, a);
  mxfp4_device::fill_lut<L>(lut);
  const Slice sl = slice_of_thread<L>(a.intermediate);
  const int H = a.hidden;

  int t0, t1;
  group_task_range(a.k * H, sl, t0, t1);
  int c = t0 / H, r = t0 - c * H;  // the step being computed starts at row r of choice c
  int left = t1 - t0;              // rows from it to the end of the range
  float x[32];
  int x_choice = c;
  if (left > 0) load_input_block(x, a.act + c * a.intermediate, sl);
  __syncthreads();
  if (left <= 0) return;

  int parity = 0;
  // A step takes rows r and r+1 when both are in the range and belong to the same choice.
  auto two_at = [&](int row, int rows_left) { return rows_left >= 2 && row + 1 < H; };
  auto step = [&](RowPair& now, RowPair& next) {
    const bool two = two_at(r, left);
    const int taken = two ? 2 : 1;
    if (left > taken) {
      const int nr = r + taken < H ? r + taken : 0, nc = r + taken < H ? c : c + 1;
      fetch_rows(next, chosen[nc], nr, two_at(nr, left - taken), sl);
    }
    const int pr = r + 2 * kPrefetchSteps;  // about kPrefetchSteps steps ahead, within this choice
    if (pr < H && 2 * kPrefetchSteps < left) prefetch_rows(chosen[c], pr, pr + 1 < H, sl);
    if (c != x_choice) {  // at most a few times per group
      load_input_block(x, a.act + c * a.intermediate, sl);
      x_choice = c;
    }
    const float2 y = group_dot<L>(now, two, x, lut, sl, exchange, parity);
    parity ^= 1;
    if (sl.s == 0 && sl.lane == 0) {
      const ChosenRows& e = chosen[c];
      const float v0 = e.ok ? e.weight * (y.x + now.bias[0]) : 0.0f;
      const float v1 = e.ok ? e.weight * (y.y + now.bias[1]) : 0.0f;
      if (a.deterministic) {
        float* p = a.partial + c * H + r;
        p[0] = v0;
        if (two) p[1] = v1;
      } else {
        atomicAdd(a.out + r, v0);
        if (two) atomicAdd(a.out + r + 1, v1);
      }
    }
    r += taken;
    if (r >= H) r -= H, ++c;
    left -= taken;
  };
  RowPair A, B;
  fetch_rows(A, chosen[c], r, two_at(r, left), sl);
  for (int ahead = 2; ahead < 2 * kPrefetchSteps; ahead += 2)
    if (r + ahead < H && ahead < left) prefetch_rows(chosen[c], r + ahead, r + ahead + 1 < H, sl);
  while (true) {
    step(A, B);
    if (left == 0) break;
    step(B, A);
    if (left == 0) break;
  }
  if (!a.deterministic || sl.s != 0) return;

  // The group's first warp publishes its partials, then counts its rows in. The fence after the barrier
  // orders lane 0's stores before every lane's arrival; the last arrival for a row sees all k partials.
  __syncwarp();
  __threadfence();
  for (int t = t0 + sl.lane; t < t1; t += 32) {
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

// n_tasks over groups of S warps (K the reduction length): at most as many CTAs as fit on the device at once.
void launch_persistent(MoeKernel kernel, int n_tasks, int K, const MoeArgs& args, cudaStream_t stream) {
  const int groups_per_cta = kWarpsPerCta / ((K / 32 + 31) / 32);
  const int wanted = (n_tasks + groups_per_cta - 1) / groups_per_cta;
  const int resident = resident_ctas(reinterpret_cast<const void*>(kernel), kThreads, kLutBytes);
  kernel<<<wanted < resident ? wanted : resident, kThreads, kLutBytes, stream>>>(args);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

void check_reduction_length(const char* what, int K) {
  if (K <= 0 || K % 32 != 0 || K > kMoeMaxK)
    throw InputError(std::string("mxfp4_moe_matvec: ") + what + " = " + std::to_string(K) +
                     "; the GPU kernel needs a positive multiple of 32 no larger than " + std::to_string(kMoeMaxK));
}

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
  const bool f32 = lut == Mxfp4Lut::F32x2;
  launch_persistent(f32 ? gate_up_swiglu_mxfp4_kernel<Mxfp4Lut::F32x2> : gate_up_swiglu_mxfp4_kernel<Mxfp4Lut::Bf16x2>,
                    k * shape.intermediate, shape.hidden, args, stream);
  launch_persistent(f32 ? down_combine_mxfp4_kernel<Mxfp4Lut::F32x2> : down_combine_mxfp4_kernel<Mxfp4Lut::Bf16x2>,
                    k * shape.hidden, shape.intermediate, args, stream);
}

}  // namespace ossrun::gpu
