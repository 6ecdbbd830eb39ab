// The tensor-core step engine of mxfp4_moe_matvec (include from .cu files only): how a warp walks its share
// of 16-row MXFP4 tiles, feeds mma.sync, and hands finished tiles to the kernel.
//
// Tensor-core tiles. A warp computes 16 weight rows at a time with mma.sync m16n8k16: A = 16 rows x 16
// reduction slots of weights (fp16, decoded in registers, mxfp4_device.cuh), B = 16 slots x 8 columns of
// inputs. Lane (g, t) = (lane / 4, lane % 4) holds A's rows g and g+8 at slots {2t, 2t+1, 2t+8, 2t+9}, and
// fills them from its OWN 16-byte block of each of its two rows (4 values per row per mma, 8 mmas per block).
// B's column 2t'+p holds part p (hi or lo) of the inputs of lane t''s block on t''s slots, zeros elsewhere.
// So D[row][2t+p], which lane (g, t) receives, is exactly its own block's dot product with part p of the
// input: every lane gets per-block sums and applies its block's scale in fp32, without any exchange. Only
// the 8 lanes with g / 2 == t hold non-zero B values (they load them); the other lanes keep zeros.
//
// A step is one block per lane per row: 4 consecutive blocks (64 bytes) of each of 16 rows, 1 KB per warp.
// A tile is 16 consecutive weight rows over the whole reduction: ceil(G / 4) steps for G = K / 32 blocks per
// row (a contiguous 16 * G * 16 bytes of blocks and 16 * G bytes of scales); blocks past the row's end
// count as zeros. Which weight row is A-row g is the kernel's choice (RowMap).
//
// Work split. A launch's steps (all tiles of all choices, in order) are divided evenly among its warps: each
// warp takes a contiguous range, so a tile can be split between consecutive warps. A warp finishes the
// tiles it holds whole; for a split tile it stores its partial sums (16 floats), and at the end of its range
// (after one fence, when no load is in flight any more: a fence waits for them all) counts itself in; the
// last of the tile's warps adds the pieces in warp order (deterministic) and finishes the tile.
//
// Feeding the weights. StagedSteps (the default) copies each tile in chunks of 2 steps (16 rows x 128
// contiguous bytes) into a per-warp ring of shared-memory stages with cp.async, 4 rows x 128 bytes per
// instruction, plus the tile's scales (16 * G contiguous bytes) once per tile; lanes then read their blocks
// from shared memory. RegisterSteps loads each lane's blocks straight into registers, `depth` steps ahead:
// every load instruction then touches 8-16 rows (as many cache lines), which the bench shows to be slower.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/mxfp4_device.cuh"

namespace ossrun::gpu::moe_steps {

enum class Proj { GateUp, Down };

struct Phase {
  int G;                 // blocks per row
  int steps;             // per tile: ceil(G / 4)
  int tiles_per_choice;  // gate_up: I / 8; down: H / 16
  int n_tiles;           // k * tiles_per_choice
  int total_steps;       // n_tiles * steps
};

__host__ __device__ inline Phase phase_of(Proj p, int k, int hidden, int intermediate) {
  Phase ph;
  ph.G = (p == Proj::GateUp ? hidden : intermediate) / 32;
  ph.steps = (ph.G + 3) / 4;
  ph.tiles_per_choice = p == Proj::GateUp ? intermediate / 8 : hidden / 16;
  ph.n_tiles = k * ph.tiles_per_choice;
  ph.total_steps = ph.n_tiles * ph.steps;
  return ph;
}

// Blocks per row rounded up to whole steps: the length of the input arrays in B order (zeros past G).
__host__ __device__ inline int padded_blocks(int K) { return ((K / 32 + 3) / 4) * 4; }

// Bytes of one tile's scales in shared memory (16 rows of G), rounded up to whole 16-byte copies.
__host__ __device__ inline int tile_scale_bytes(int G) { return (16 * G + 15) / 16 * 16; }

// A-row (0..15) to the tile's local weight row: gate_up pairs gate row 2f (A-row g) with up row 2f+1
// (A-row g+8), so that one lane ends with both halves of a SwiGLU; down takes the rows in order.
template <Proj P>
__device__ __forceinline__ int local_row(int a_row) {
  return P == Proj::GateUp ? 2 * (a_row & 7) + (a_row >> 3) : a_row;
}

// total steps over n warps: warps below r take q + 1 steps, the rest q.
struct Partition {
  int q, r;
  __device__ Partition(int total, int n) : q(total / n), r(total % n) {}
  __device__ int begin(int w) const { return w * q + min(w, r); }
  __device__ int owner(int s) const {
    const int big = r * (q + 1);
    return s < big ? s / (q + 1) : r + (s - big) / q;
  }
};

// One choice's projection, as the kernels use it; a CTA keeps all k in shared memory.
struct ChosenRows {
  const uint8_t* blocks;  // (rows, G, 16)
  const uint8_t* scales;  // (rows, G)
  const uint16_t* bias;   // (rows)
  float weight;
  int ok;  // 0: bad slot or misaligned pointers; the choice then contributes zero
};

// One step of lane (g, t): its blocks a (A-row g) and b (A-row g+8) times its B values x, scaled by the
// blocks' scale bytes, added to acc_a / acc_b.
__device__ __forceinline__ void step_mma(const uint4& a, const uint4& b, uint32_t sa, uint32_t sb, const uint4 (&x)[4],
                                         float& acc_a, float& acc_b) {
  const uint32_t wa[4] = {a.x, a.y, a.z, a.w}, wb[4] = {b.x, b.y, b.z, b.w};
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    uint32_t ha[4], hb[4];
    mxfp4_device::decode_e2m1x8_f16(wa[q], ha);
    mxfp4_device::decode_e2m1x8_f16(wb[q], hb);
    // A registers: (row g, slots 2t..), (row g+8, slots 2t..), (row g, slots 2t+8..), (row g+8, slots 2t+8..);
    // B registers: (slots 2t..), (slots 2t+8..): the same element pairs in the same registers.
    mxfp4_device::mma_f16_m16n8k16(d, ha[0], hb[0], ha[1], hb[1], x[q].x, x[q].y);
    mxfp4_device::mma_f16_m16n8k16(d, ha[2], hb[2], ha[3], hb[3], x[q].z, x[q].w);
  }
  // d = (row g hi, row g lo, row g+8 hi, row g+8 lo) of this lane's block
  acc_a = fmaf(mxfp4_device::e8m0_value(sa), d[0] + d[1], acc_a);
  acc_b = fmaf(mxfp4_device::e8m0_value(sb), d[2] + d[3], acc_b);
}

// A warp's step range and the bookkeeping of split tiles.
struct WarpRange {
  Phase ph;
  float* pieces;            // (warps, 2, 16)
  unsigned* tile_arrivals;  // (n_tiles)
  int lane, g, t, warp;
  Partition split;
  int s_begin, s_end, first_tile;

  __device__ WarpRange(const Phase& phase, float* piece_store, unsigned* arrivals, int warps_per_cta)
      : ph(phase), pieces(piece_store), tile_arrivals(arrivals),
        split(phase.total_steps, static_cast<int>(gridDim.x) * warps_per_cta) {
    lane = threadIdx.x & 31;
    g = lane >> 2;
    t = lane & 3;
    warp = blockIdx.x * warps_per_cta + (threadIdx.x >> 5);
    s_begin = split.begin(warp);
    s_end = split.begin(warp + 1);
    first_tile = s_begin / ph.steps;
  }

  // A tile is split when part of it belongs to another warp: only the first and the last of a range can be.
  __device__ bool is_split(int tile) const {
    const int t0 = tile * ph.steps;
    return t0 < s_begin || t0 + ph.steps > s_end;
  }
  // Warp w's piece of a split tile: slot 0 for its first tile, 1 for its last.
  __device__ float* piece(int w, int tile) const {
    return pieces + (w * 2 + (tile == split.begin(w) / ph.steps ? 0 : 1)) * 16;
  }

  // Sums the tile's rows over the 4 lanes of each row; finishes a whole tile, stores a split one's piece.
  template <typename Finish>
  __device__ void close_tile(int tile, float sum_a, float sum_b, Finish& finish) {
    sum_a += __shfl_xor_sync(0xffffffffu, sum_a, 1);
    sum_b += __shfl_xor_sync(0xffffffffu, sum_b, 1);
    sum_a += __shfl_xor_sync(0xffffffffu, sum_a, 2);
    sum_b += __shfl_xor_sync(0xffffffffu, sum_b, 2);
    if (!is_split(tile)) {
      finish(tile, sum_a, sum_b);
    } else if (t == 0) {
      float* mine = piece(warp, tile);
      mine[g] = sum_a;
      mine[g + 8] = sum_b;
    }
  }

  // After the last step (no loads in flight): counts this warp's split pieces in; the last warp of a split
  // tile adds its pieces in warp order and finishes it; then Arrive for each tile finished here.
  template <typename Finish, typename Arrive>
  __device__ void publish(Finish& finish, Arrive& arrive) {
    if (s_begin >= s_end) return;
    __syncwarp();
    __threadfence();
    const int last_tile = (s_end - 1) / ph.steps;
    for (int tile = first_tile; tile <= last_tile; ++tile) {
      if (is_split(tile)) {
        unsigned before = 0;
        if (lane == 0) before = atomicAdd(tile_arrivals + tile, 1u);
        before = __shfl_sync(0xffffffffu, before, 0);
        const int w0 = split.owner(tile * ph.steps), w1 = split.owner(tile * ph.steps + ph.steps - 1);
        if (before != static_cast<unsigned>(w1 - w0)) continue;  // another warp finishes this tile
        __threadfence();
        float sum_a = 0.0f, sum_b = 0.0f;
        for (int w = w0; w <= w1; ++w) {
          sum_a += __ldcg(piece(w, tile) + g);  // from L2: other SMs wrote these
          sum_b += __ldcg(piece(w, tile) + g + 8);
        }
        if (lane == 0) tile_arrivals[tile] = 0;  // ready for the next launch
        finish(tile, sum_a, sum_b);
        __syncwarp();
        __threadfence();
      }
      arrive(tile);
    }
  }
};

// Where a tile's 16 rows start.
struct TileRows {
  const uint8_t* blocks;  // (16, G, 16), or null for a bad choice
  const uint8_t* scales;  // (16, G)
  bool ok;
};
__device__ __forceinline__ TileRows tile_rows(const ChosenRows* chosen, const Phase& ph, int tile) {
  const int c = tile / ph.tiles_per_choice, u = tile - c * ph.tiles_per_choice;
  const ChosenRows& e = chosen[c];
  if (!e.ok) return {nullptr, nullptr, false};
  return {e.blocks + static_cast<size_t>(16 * u) * ph.G * 16, e.scales + static_cast<size_t>(16 * u) * ph.G, true};
}

// ---------------------------------------------------------------------------------------------------------
// StagedSteps: cp.async into a per-warp ring of NS stages.

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool copy) {
  // src-size 0 writes 16 zero bytes and reads nothing.
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(copy ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ uint4 lds128(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
  return v;
}
__device__ __forceinline__ uint32_t lds_u8(uint32_t addr) {
  uint16_t v;
  asm volatile("ld.shared.u8 %0, [%1];" : "=h"(v) : "r"(addr));
  return v;
}

constexpr int kChunkSteps = 2;                    // steps per stage
constexpr int kStageRowBytes = kChunkSteps * 64;  // 8 blocks of a row
constexpr int kStageBytes = 16 * kStageRowBytes;  // 2 KB

// Shared memory one warp needs for NS stages and NS tile-scale buffers.
__host__ __device__ inline int staged_warp_bytes(int ns, int G) { return ns * (kStageBytes + tile_scale_bytes(G)); }

// Block slot of (local row r, block i of the chunk) in a stage row. Lanes (g, t) and (g+1, t) read the same
// block of neighbouring A-rows at once; flipping bit 2 for odd A-rows puts them in other banks.
template <Proj P>
__device__ __forceinline__ uint32_t stage_slot(int r, int i) {
  const int a_row_parity = (P == Proj::GateUp ? r >> 1 : r) & 1;
  return static_cast<uint32_t>(r * kStageRowBytes + ((i ^ (a_row_parity << 2)) << 4));
}

template <Proj P, int NS>
struct StagedSteps {
  WarpRange r;
  const ChosenRows* chosen;
  uint32_t stages;     // this warp's NS stages (shared-window address)
  uint32_t scale_buf;  // its NS tile-scale buffers, buffer tile % NS for tile
  int scale_bytes;
  const void* dummy;  // any valid global address, for copies that write zeros
  // The copy cursor: the next chunk to copy starts at step j of tile `tile`.
  int c_tile, c_j, c_left, c_seq;
  bool c_new_tile;
  TileRows c_rows;

  __device__ StagedSteps(const Phase& phase, const ChosenRows* chosen_rows, float* pieces, unsigned* arrivals,
                         int warps_per_cta, char* warp_smem, const void* any_global)
      : r(phase, pieces, arrivals, warps_per_cta), chosen(chosen_rows), dummy(any_global) {
    stages = static_cast<uint32_t>(__cvta_generic_to_shared(warp_smem));
    scale_buf = stages + NS * kStageBytes;
    scale_bytes = tile_scale_bytes(phase.G);
    c_tile = r.first_tile;
    c_j = r.s_begin - r.first_tile * phase.steps;
    c_left = r.s_end - r.s_begin;
    c_seq = 0;
    c_new_tile = true;
    if (c_left > 0) c_rows = tile_rows(chosen, phase, c_tile);
    for (int i = 0; i < NS - 1; ++i) copy_next();
  }

  // Copies the next chunk (or commits an empty group when the range is done): one group per call.
  __device__ void copy_next() {
    const Phase& ph = r.ph;
    if (c_left > 0) {
      const int n = min(kChunkSteps, min(ph.steps - c_j, c_left));
      if (c_new_tile) {  // the tile's scales, 16 * G contiguous bytes
        const uint32_t dst = scale_buf + (c_tile % NS) * scale_bytes;
        for (int q = r.lane; q < ph.G; q += 32)
          cp_async16(dst + 16 * q, c_rows.ok ? c_rows.scales + 16 * q : dummy, c_rows.ok);
        c_new_tile = false;
      }
      const uint32_t stage = stages + (c_seq % NS) * kStageBytes;
      const int i = r.lane & 7, b = 4 * c_j + i;  // block i of the chunk
      const bool live = c_rows.ok && i < 4 * n && b < ph.G;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int row = 4 * k + (r.lane >> 3);
        cp_async16(stages_slot(stage, row, i), live ? c_rows.blocks + (static_cast<size_t>(row) * ph.G + b) * 16 : dummy,
                   live);
      }
      c_j += n;
      c_left -= n;
      ++c_seq;
      if (c_j == ph.steps && c_left > 0) {
        ++c_tile;
        c_j = 0;
        c_new_tile = true;
        c_rows = tile_rows(chosen, ph, c_tile);
      }
    }
    cp_async_commit();
  }
  __device__ static uint32_t stages_slot(uint32_t stage, int row, int i) { return stage + stage_slot<P>(row, i); }

  template <typename XSource, typename Finish, typename Arrive>
  __device__ void run(const XSource& xsrc, Finish&& finish, Arrive&& arrive) {
    const Phase& ph = r.ph;
    const int g = r.g, t = r.t;
    const bool b_lane = (g >> 1) == t;
    const int part = g & 1;  // a B lane's column: 2t + part
    const int row_a = local_row<P>(g), row_b = local_row<P>(g + 8);
    int tile = r.first_tile, j = r.s_begin - r.first_tile * ph.steps, seq = 0;
    const uint4* xp = xsrc.base(tile) + ((4 * j + t) * 2 + part) * 4;
    uint4 x[4] = {};
    float acc_a = 0.0f, acc_b = 0.0f;
    for (int s = r.s_begin; s < r.s_end;) {
      __syncwarp();  // every lane is done with the stage the next copy overwrites
      copy_next();
      cp_async_wait<NS - 1>();  // this chunk's group (and its tile's scales) have landed
      __syncwarp();
      const int n = min(kChunkSteps, min(ph.steps - j, r.s_end - s));
      const uint32_t stage = stages + (seq % NS) * kStageBytes;
      const uint32_t scales = scale_buf + (tile % NS) * scale_bytes;
#pragma unroll
      for (int jj = 0; jj < kChunkSteps; ++jj) {
        if (jj >= n) break;
        const uint4 wa = lds128(stages_slot(stage, row_a, 4 * jj + t));
        const uint4 wb = lds128(stages_slot(stage, row_b, 4 * jj + t));
        // Past the row's end the blocks are zeros; their scale must stay finite (no inf * 0).
        const int b = 4 * j + t;
        const uint32_t sa = b < ph.G ? lds_u8(scales + row_a * ph.G + b) : 0u;
        const uint32_t sb = b < ph.G ? lds_u8(scales + row_b * ph.G + b) : 0u;
        if (b_lane) {
#pragma unroll
          for (int q = 0; q < 4; ++q) x[q] = xsrc.load(xp + q);
        }
        step_mma(wa, wb, sa, sb, x, acc_a, acc_b);
        xp += 4 * 2 * 4;  // the next step: 4 blocks of 2 parts of 4 uint4
        ++s;
        if (++j == ph.steps || s == r.s_end) {
          r.close_tile(tile, acc_a, acc_b, finish);
          acc_a = acc_b = 0.0f;
          if (j == ph.steps) {
            j = 0;
            ++tile;
            if (s < r.s_end) xp = xsrc.base(tile) + (t * 2 + part) * 4;
          }
        }
      }
      ++seq;
    }
    cp_async_wait<0>();
    r.publish(finish, arrive);
  }
};

// ---------------------------------------------------------------------------------------------------------
// RegisterSteps: each lane loads its own blocks into a ring of D steps of registers.

template <Proj P, int D>
struct RegisterSteps {
  struct Step {
    uint4 a, b;
    uint32_t sa, sb;
  };
  WarpRange r;
  const ChosenRows* chosen;
  // The load cursor: the next step to load is step j of tile `tile`; pa.. point at this lane's blocks of it.
  const uint8_t *pa, *pb, *sa, *sb;
  int tile, j, left;
  bool ok;
  Step ring[D];

  __device__ RegisterSteps(const Phase& phase, const ChosenRows* chosen_rows, float* pieces, unsigned* arrivals,
                           int warps_per_cta, char*, const void*)
      : r(phase, pieces, arrivals, warps_per_cta), chosen(chosen_rows) {
    left = r.s_end - r.s_begin;
    if (left > 0) start_tile(r.first_tile, r.s_begin - r.first_tile * phase.steps);
#pragma unroll
    for (int i = 0; i < D; ++i) load_next(ring[i]);
  }

  __device__ void start_tile(int T, int j0) {
    tile = T;
    j = j0;
    const TileRows rows = tile_rows(chosen, r.ph, T);
    ok = rows.ok;
    if (!ok) return;
    const size_t ra = local_row<P>(r.g), rb = local_row<P>(r.g + 8), G = r.ph.G;
    pa = rows.blocks + (ra * G + 4 * j0 + r.t) * 16;
    pb = rows.blocks + (rb * G + 4 * j0 + r.t) * 16;
    sa = rows.scales + ra * G + 4 * j0 + r.t;
    sb = rows.scales + rb * G + 4 * j0 + r.t;
  }

  __device__ void load_next(Step& w) {
    if (left <= 0) return;
    const bool live = ok && 4 * j + r.t < r.ph.G;
    w.a = live ? device_util::load_stream16(pa) : make_uint4(0, 0, 0, 0);
    w.b = live ? device_util::load_stream16(pb) : make_uint4(0, 0, 0, 0);
    w.sa = live ? __ldg(sa) : 0u;
    w.sb = live ? __ldg(sb) : 0u;
    if (ok) pa += 64, pb += 64, sa += 4, sb += 4;
    if (--left > 0 && ++j == r.ph.steps) start_tile(tile + 1, 0);
  }

  template <typename XSource, typename Finish, typename Arrive>
  __device__ void run(const XSource& xsrc, Finish&& finish, Arrive&& arrive) {
    const Phase& ph = r.ph;
    const int g = r.g, t = r.t;
    const bool b_lane = (g >> 1) == t;
    const int part = g & 1;
    int cur = r.first_tile, jc = r.s_begin - r.first_tile * ph.steps;
    const uint4* xp = xsrc.base(cur) + ((4 * jc + t) * 2 + part) * 4;
    uint4 x[4] = {};
    float acc_a = 0.0f, acc_b = 0.0f;
    for (int s = r.s_begin; s < r.s_end; s += D) {
#pragma unroll
      for (int i = 0; i < D; ++i) {
        if (s + i >= r.s_end) break;
        const Step w = ring[i];
        load_next(ring[i]);
        if (b_lane) {
#pragma unroll
          for (int q = 0; q < 4; ++q) x[q] = xsrc.load(xp + q);
        }
        step_mma(w.a, w.b, w.sa, w.sb, x, acc_a, acc_b);
        xp += 4 * 2 * 4;
        if (++jc == ph.steps || s + i + 1 == r.s_end) {
          r.close_tile(cur, acc_a, acc_b, finish);
          acc_a = acc_b = 0.0f;
          if (jc == ph.steps) {
            jc = 0;
            ++cur;
            if (s + i + 1 < r.s_end) xp = xsrc.base(cur) + (t * 2 + part) * 4;
          }
        }
      }
    }
    r.publish(finish, arrive);
  }
};

}  // namespace ossrun::gpu::moe_steps
