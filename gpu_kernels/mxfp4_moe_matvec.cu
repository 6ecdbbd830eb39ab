// mxfp4_moe_matvec: kernels, then the launcher (see the header for the operation).
//
// Work split. Each launch is a list of tasks: a gate_up task is one intermediate feature j of one choice
// (rows 2j and 2j+1, reduced together), a down task one output row of one choice (a warp takes two at a time
// when they are adjacent rows of the same choice). Warps are persistent and each takes a contiguous range of
// tasks, so a warp meets at most a few experts; gate_up may instead hand out chunks of tasks from a ticket
// counter (MoeTuning::gate_up_chunk). Within a warp, lane l owns the 16-byte blocks g = l + 32j of every row
// (J = ceil(K/32/32) of them) and keeps the 32 input values of those blocks in registers for the whole range.
//
// Latency. Per step a warp loads the next step's blocks into registers before decoding the current ones, and
// asks L2 for the blocks MoeTuning::prefetch_steps steps ahead (an L2 prefetch takes no register). At kernel
// start the chosen experts' pointers go to shared memory (no dependent global loads inside the loop), while
// the decode table is being filled.
//
// Overlap (MoeTuning): with programmatic dependent launch each kernel fills its table, and down also fetches
// its first weights, before waiting for the previous grid (griddepcontrol.wait makes the previous grids'
// writes visible, as for a kernel boundary); nothing another kernel writes is read before that wait except
// down's choices and slot table, written before gate_up started and read through L2. gate_up warps that are
// done ask L2 for a share of down's weights, so the memory system stays busy through gate_up's tail.
//
// Memory: every weight byte is read once with 16-byte loads (a warp reads 512 contiguous bytes of a row per
// load instruction); input vectors come through L1 (shared by a CTA's warps); the decode table sits in shared
// memory (mxfp4_device.cuh).
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
using mxfp4_device::LutPlace;
using mxfp4_device::lut_smem_bytes;
using mxfp4_device::place_lut;

constexpr int kThreads = 256;
constexpr int kWarpsPerCta = kThreads / 32;
constexpr int kMaxJ = kMoeMaxK / 32 / 32;  // blocks per lane per row at the largest K
constexpr unsigned kFullMask = 0xffffffffu;

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
  unsigned* tickets;   // (2): next gate_up chunk, gate_up warps done
  int gate_up_chunk;   // MoeTuning::gate_up_chunk
  int prefetch_down;   // MoeTuning::prefetch_down
  int line_prefetch;   // MoeTuning::line_prefetch
  int prefetch_steps;  // MoeTuning::prefetch_steps
};

// Programmatic dependent launch (sm_90+): both are no-ops when the grid was launched without it.
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_next_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// A pointer loaded from L2 (coherent across grids that overlap through programmatic dependent launch).
template <typename T>
__device__ __forceinline__ const T* load_pointer_cg(const T* const* p) {
  return reinterpret_cast<const T*>(__ldcg(reinterpret_cast<const unsigned long long*>(p)));
}

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
__device__ void load_chosen(ChosenRows* chosen, const MoeArgs& a, int first_thread = 0) {
  const int c = static_cast<int>(threadIdx.x) - first_thread;
  if (c < 0) return;
  if (c >= a.k) return;
  const int slot = __ldcg(&a.choices[c].slot);
  ChosenRows e{nullptr, nullptr, nullptr, __ldcg(&a.choices[c].weight), 0};
  int error = 0;
  if (slot == kSkippedSlot) {
    // Served elsewhere (the CPU, in the hybrid offload): contributes zero, not an error.
  } else if (slot < 0 || slot >= a.n_slots) {
    error = kErrorBadSlot;
  } else {
    const ExpertSlotMxfp4& s = a.slots[slot];
    const uint8_t* gate_up_blocks = load_pointer_cg(&s.gate_up_blocks);
    const uint8_t* down_blocks = load_pointer_cg(&s.down_blocks);
    e.blocks = P == Proj::GateUp ? gate_up_blocks : down_blocks;
    e.scales = load_pointer_cg(P == Proj::GateUp ? &s.gate_up_scales : &s.down_scales);
    e.bias = load_pointer_cg(P == Proj::GateUp ? &s.gate_up_bias : &s.down_bias);
    if ((reinterpret_cast<uintptr_t>(gate_up_blocks) | reinterpret_cast<uintptr_t>(down_blocks)) % 16 != 0)
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

// Asks L2 for bytes [p, p + n), one request per 128-byte line, spread over the warp.
__device__ __forceinline__ void prefetch_range(const void* p, size_t n, int lane) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  for (uintptr_t line = (begin & ~uintptr_t{127}) + 128 * lane; line < end; line += 32 * 128)
    prefetch_l2(reinterpret_cast<const void*>(line));
}

// L2 prefetch of rows r and r+1 (the second only when `two`). `lines`: one request per 128-byte line (the rows
// are contiguous); otherwise one per lane and 16-byte block, as v2 did.
template <int J>
__device__ __forceinline__ void prefetch_rows(const ChosenRows& e, int row, bool two, int G, int lane, bool lines) {
  if (!e.ok) return;
  const size_t row_bytes = static_cast<size_t>(G) * 16;
  if (lines) {
    const int rows = two ? 2 : 1;
    prefetch_range(e.blocks + static_cast<size_t>(row) * row_bytes, rows * row_bytes, lane);
    prefetch_range(e.scales + static_cast<size_t>(row) * G, static_cast<size_t>(rows) * G, lane);
    return;
  }
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

// Input values of this lane's blocks: x[j][i] = src[32 * (lane + 32j) + i]; zero past the end. Plain loads,
// after the wait for the previous grid: the 8 warps of a CTA share the vector through L1 (ld.global.cg here
// sent every warp to L2, and the start-up burst cost ~40%).
template <int J>
__device__ __forceinline__ void load_inputs(float (&x)[J][32], const float* src, int G, int lane) {
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int g = lane + 32 * j;
#pragma unroll
    for (int v = 0; v < 8; ++v) {
      const float4 f = owns_block<J>(j, lane, G) ? reinterpret_cast<const float4*>(src + 32 * g)[v]
                                                  : make_float4(0.f, 0.f, 0.f, 0.f);
      x[j][4 * v + 0] = f.x;
      x[j][4 * v + 1] = f.y;
      x[j][4 * v + 2] = f.z;
      x[j][4 * v + 3] = f.w;
    }
  }
}

// The rows' dot products with x (without bias), summed over the warp; every lane gets them.
template <int J, Mxfp4Lut L, bool kAligned>
__device__ __forceinline__ float2 pair_dot(const RowPair<J>& rp, const float (&x)[J][32], const LutPlace& lut, int G,
                                           int lane) {
  float acc0 = 0.0f, acc1 = 0.0f;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    if (owns_block<J>(j, lane, G)) {
      acc0 = fmaf(e8m0_value(rp.s[0][j]), block_dot<L, kAligned>(rp.q[0][j], x[j], lut.ptr, lut.lane), acc0);
      if (rp.two)
        acc1 = fmaf(e8m0_value(rp.s[1][j]), block_dot<L, kAligned>(rp.q[1][j], x[j], lut.ptr, lut.lane), acc1);
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

// The calling warp's share of down's weights (the same split as down's static task ranges), into L2.
__device__ void prefetch_down_share(const ChosenRows* chosen_down, const MoeArgs& a, int lane) {
  const int H = a.hidden, G = a.intermediate / 32;
  int t, t1;
  warp_task_range(a.k * H, t, t1);
  while (t < t1) {
    const int c = t / H, row = t - c * H, rows = min(t1 - t, H - row);
    const ChosenRows& e = chosen_down[c];
    if (e.ok) {
      prefetch_range(e.blocks + static_cast<size_t>(row) * G * 16, static_cast<size_t>(rows) * G * 16, lane);
      prefetch_range(e.scales + static_cast<size_t>(row) * G, static_cast<size_t>(rows) * G, lane);
      prefetch_range(e.bias + row, static_cast<size_t>(rows) * 2, lane);
    }
    t += rows;
  }
}

// First task of ticket q's chunk (n: past the end).
__device__ __forceinline__ int chunk_start(unsigned q, int chunk, int n) {
  const long long t = static_cast<long long>(q) * chunk;
  return t < n ? static_cast<int>(t) : n;
}

// act[c][j] = swiglu(W1 x + b1)[j] for every choice c and feature j.
template <int J, Mxfp4Lut L, bool kAligned>
__global__ void __launch_bounds__(kThreads) gate_up_swiglu_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char smem[];
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  __shared__ ChosenRows chosen_down[kMoeMaxChoices];
  const LutPlace lut = place_lut<kAligned, L>(smem);
  mxfp4_device::fill_lut<L>(lut.ptr);
  wait_for_previous_grid();  // x, the choices and the workspace may come from the previous kernel
  allow_next_grid();         // down may take the SMs that this grid leaves
  load_chosen<Proj::GateUp>(chosen, a);
  if (a.prefetch_down) load_chosen<Proj::Down>(chosen_down, a, /*first_thread=*/32);  // in parallel: k <= 16
  const int lane = threadIdx.x & 31;
  const int G = a.hidden / 32, I = a.intermediate, n = a.k * I;
  float x[J][32];
  load_inputs<J>(x, a.x, G, lane);
  __syncthreads();

  // The fetch cursor: task f (choice fc, feature fj), the end of its chunk, and the first task of the chunk
  // after it (n: none). Static ranges are one chunk. With tickets, lane 0 holds in `pending` the ticket of the
  // chunk after `next`, requested a whole chunk before it is needed.
  const int chunk = a.gate_up_chunk;
  int f, end, next = n;
  unsigned pending = 0;
  if (chunk > 0) {
    unsigned q = 0;
    if (lane == 0) q = atomicAdd(a.tickets, 2u);
    q = __shfl_sync(kFullMask, q, 0);
    f = chunk_start(q, chunk, n);
    end = min(f + chunk, n);
    next = chunk_start(q + 1, chunk, n);
    if (lane == 0 && next < n) pending = atomicAdd(a.tickets, 1u);
  } else {
    warp_task_range(n, f, end);
  }
  int fc = f / I, fj = f - fc * I;
  // L2 prefetch of task t (of any chunk).
  auto prefetch_task = [&](int t) {
    const int c = t / I;
    prefetch_rows<J>(chosen[c], 2 * (t - c * I), true, G, lane, a.line_prefetch);
  };
  // L2 prefetch of the task `ahead` after f, when it is in f's chunk and of the same choice.
  auto prefetch_ahead = [&](int ahead) {
    if (f + ahead < end && fj + ahead < I)
      prefetch_rows<J>(chosen[fc], 2 * (fj + ahead), true, G, lane, a.line_prefetch);
  };
  auto prefetch_next_chunk = [&] {
    for (int t = next; t < next + a.prefetch_steps - 1 && t < min(next + chunk, n); ++t) prefetch_task(t);
  };
  // Moves the fetch cursor on; false when the warp has no task left.
  auto advance = [&]() -> bool {
    if (f + 1 < end) {
      ++f;
      if (++fj == I) fj = 0, ++fc;
      return true;
    }
    if (next >= n) return false;
    f = next;
    end = min(f + chunk, n);
    fc = f / I;
    fj = f - fc * I;
    next = chunk_start(__shfl_sync(kFullMask, pending, 0), chunk, n);
    if (lane == 0 && next < n) pending = atomicAdd(a.tickets, 1u);
    prefetch_next_chunk();
    return true;
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
  // Computes `now` after fetching the next task into `ahead`; false when `now` was the warp's last task.
  auto step = [&](RowPair<J>& now, RowPair<J>& ahead) {
    const bool more = advance();
    if (more) {
      fetch_rows<J>(ahead, chosen[fc], fc, 2 * fj, true, G, lane);
      prefetch_ahead(a.prefetch_steps - 1);
    }
    const float2 h = pair_dot<J, L, kAligned>(now, x, lut, G, lane);
    if (lane == holder) {
      held_gate = h.x + now.bias[0];
      held_up = h.y + now.bias[1];
      held_dst = now.choice * I + now.row / 2;
      held_ok = now.ok;
    }
    if (++holder == 32 || !more) flush();
    return more;
  };
  if (f < end) {
    RowPair<J> A, B;
    fetch_rows<J>(A, chosen[fc], fc, 2 * fj, true, G, lane);
    for (int ahead = 2; ahead < a.prefetch_steps; ++ahead) prefetch_ahead(ahead);
    if (chunk > 0) prefetch_next_chunk();
    while (step(A, B) && step(B, A)) {
    }
  }
  if (a.prefetch_down) prefetch_down_share(chosen_down, a, lane);
  if (chunk > 0) {  // the last warp to finish puts the counters back to 0 for the next launch
    __syncwarp();
    if (lane == 0) {
      __threadfence();  // this warp's ticket requests come before its arrival
      const unsigned warps = gridDim.x * kWarpsPerCta;
      if (atomicAdd(a.tickets + 1, 1u) == warps - 1) {
        a.tickets[0] = 0;
        a.tickets[1] = 0;
      }
    }
  }
}

// y = W2 act[c] + b2 for every choice c, then out += sum over c of weight_c * y_c: either through partial[c]
// and the last arrival per row (deterministic), or with float atomics.
template <int J, Mxfp4Lut L, bool kAligned>
__global__ void __launch_bounds__(kThreads) down_combine_mxfp4_kernel(const MoeArgs a) {
  extern __shared__ __align__(16) char smem[];
  __shared__ ChosenRows chosen[kMoeMaxChoices];
  const LutPlace lut = place_lut<kAligned, L>(smem);
  // The choices and slots were written before gate_up started (gate_up waited for them before letting this
  // grid start), so they and the weights may be read before the wait below; act may not.
  load_chosen<Proj::Down>(chosen, a);
  mxfp4_device::fill_lut<L>(lut.ptr);
  const int lane = threadIdx.x & 31;
  const int G = a.intermediate / 32, H = a.hidden;
  __syncthreads();

  int t0, t1;
  warp_task_range(a.k * H, t0, t1);
  int c = t0 / H, r = t0 - c * H;  // the step being computed starts at row r of choice c
  int left = t1 - t0;              // rows from it to the end of the range
  // A step takes rows r and r+1 when both are in the range and belong to the same choice.
  auto two_at = [&](int row, int rows_left) { return rows_left >= 2 && row + 1 < H; };
  RowPair<J> A, B;
  if (left > 0) {
    fetch_rows<J>(A, chosen[c], c, r, two_at(r, left), G, lane);
    for (int ahead = 2; ahead < 2 * a.prefetch_steps; ahead += 2)
      if (r + ahead < H && ahead < left)
        prefetch_rows<J>(chosen[c], r + ahead, r + ahead + 1 < H, G, lane, a.line_prefetch);
  }
  wait_for_previous_grid();  // act (gate_up), out, the workspace
  allow_next_grid();
  if (left <= 0) return;
  float x[J][32];
  int x_choice = c;
  load_inputs<J>(x, a.act + static_cast<long long>(c) * a.intermediate, G, lane);

  auto step = [&](RowPair<J>& now, RowPair<J>& next) {
    const int taken = now.two ? 2 : 1;
    if (left > taken) {
      const int nr = r + taken < H ? r + taken : 0, nc = r + taken < H ? c : c + 1;
      fetch_rows<J>(next, chosen[nc], nc, nr, two_at(nr, left - taken), G, lane);
    }
    const int pr = r + 2 * a.prefetch_steps;  // about prefetch_steps steps ahead, within this choice
    if (pr < H && 2 * a.prefetch_steps < left) prefetch_rows<J>(chosen[c], pr, pr + 1 < H, G, lane, a.line_prefetch);
    if (now.choice != x_choice) {  // at most a few times per warp
      load_inputs<J>(x, a.act + static_cast<long long>(now.choice) * a.intermediate, G, lane);
      x_choice = now.choice;
    }
    const float2 y = pair_dot<J, L, kAligned>(now, x, lut, G, lane);
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

template <template <int, Mxfp4Lut, bool> class Pick>
MoeKernel pick_kernel(int J, Mxfp4Lut lut, bool aligned) {
  static const MoeKernel table[2][2][kMaxJ] = {
      {{Pick<1, Mxfp4Lut::F32x2, false>::fn, Pick<2, Mxfp4Lut::F32x2, false>::fn, Pick<3, Mxfp4Lut::F32x2, false>::fn,
        Pick<4, Mxfp4Lut::F32x2, false>::fn},
       {Pick<1, Mxfp4Lut::Bf16x2, false>::fn, Pick<2, Mxfp4Lut::Bf16x2, false>::fn,
        Pick<3, Mxfp4Lut::Bf16x2, false>::fn, Pick<4, Mxfp4Lut::Bf16x2, false>::fn}},
      {{Pick<1, Mxfp4Lut::F32x2, true>::fn, Pick<2, Mxfp4Lut::F32x2, true>::fn, Pick<3, Mxfp4Lut::F32x2, true>::fn,
        Pick<4, Mxfp4Lut::F32x2, true>::fn},
       {Pick<1, Mxfp4Lut::Bf16x2, true>::fn, Pick<2, Mxfp4Lut::Bf16x2, true>::fn, Pick<3, Mxfp4Lut::Bf16x2, true>::fn,
        Pick<4, Mxfp4Lut::Bf16x2, true>::fn}}};
  return table[aligned ? 1 : 0][lut == Mxfp4Lut::F32x2 ? 0 : 1][J - 1];
}
template <int J, Mxfp4Lut L, bool kAligned>
struct GateUpKernel {
  static constexpr MoeKernel fn = gate_up_swiglu_mxfp4_kernel<J, L, kAligned>;
};
template <int J, Mxfp4Lut L, bool kAligned>
struct DownKernel {
  static constexpr MoeKernel fn = down_combine_mxfp4_kernel<J, L, kAligned>;
};

// Programmatic dependent launch needs sm_90; the legacy default stream is left to ordinary launches.
bool can_launch_programmatically(cudaStream_t stream) {
  if (stream == nullptr || stream == cudaStreamLegacy) return false;
  int device = 0, major = 0;
  OSSRUN_CUDA_CHECK(cudaGetDevice(&device));
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 9;
}

void launch_persistent(MoeKernel kernel, int n_tasks, size_t smem, bool programmatic, const MoeArgs& args,
                       cudaStream_t stream) {
  const int wanted = (n_tasks + kWarpsPerCta - 1) / kWarpsPerCta;
  const int resident = resident_ctas(reinterpret_cast<const void*>(kernel), kThreads, smem);
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(wanted < resident ? wanted : resident);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = programmatic ? 1 : 0;
  OSSRUN_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, args));
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
  tickets_ = DeviceBuffer<unsigned>(2);
  OSSRUN_CUDA_CHECK(cudaMemset(tickets_.get(), 0, tickets_.bytes()));
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
                      MoeCombine combine, Mxfp4Lut lut, const MoeTuning& tuning) {
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
  if (tuning.gate_up_chunk < 0)
    throw InputError("mxfp4_moe_matvec: gate_up_chunk must be 0 (static ranges) or positive, got " +
                     std::to_string(tuning.gate_up_chunk));
  if (tuning.prefetch_steps < 2 || tuning.prefetch_steps > 16)
    throw InputError("mxfp4_moe_matvec: prefetch_steps must be 2 to 16, got " + std::to_string(tuning.prefetch_steps));
  if (k == 0) return;

  const MoeArgs args{slots,
                     choices,
                     k,
                     shape.n_slots,
                     shape.hidden,
                     shape.intermediate,
                     swiglu,
                     combine == MoeCombine::Deterministic,
                     x,
                     out,
                     ws.act_.get(),
                     ws.partial_.get(),
                     ws.arrivals_.get(),
                     ws.error_.get(),
                     ws.tickets_.get(),
                     tuning.gate_up_chunk,
                     tuning.prefetch_down,
                     tuning.line_prefetch,
                     tuning.prefetch_steps};
  const bool programmatic = tuning.programmatic_launch && can_launch_programmatically(stream);
  const size_t smem = tuning.aligned_lut ? lut_smem_bytes<true>() : lut_smem_bytes<false>();
  launch_persistent(pick_kernel<GateUpKernel>(blocks_per_lane(shape.hidden), lut, tuning.aligned_lut),
                    k * shape.intermediate, smem, programmatic, args, stream);
  launch_persistent(pick_kernel<DownKernel>(blocks_per_lane(shape.intermediate), lut, tuning.aligned_lut),
                    k * shape.hidden, smem, programmatic, args, stream);
}

}  // namespace ossrun::gpu
