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
// Feeding the weights. StagedSteps copies each tile in chunks of 2 steps (16 rows x 128 contiguous bytes)
// into a per-warp ring of shared-memory stages with cp.async, 4 rows x 128 bytes per instruction, plus the
// tile's scales (16 * G contiguous bytes) once per tile; lanes then read their blocks from shared memory.
// (Loading each lane's blocks straight into registers makes every load instruction touch 8-16 rows, as
// many cache lines, and needs scattered byte loads for the scales: slower, see NOTES.md.)
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
// Shared-memory and cp.async helpers (shared-window addresses).

// 16 bytes from global to shared memory, asynchronously; `copy` false writes 16 zero bytes and reads nothing
// (src must still be a valid address).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool copy) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(copy ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
// Makes v opaque to the compiler, so that it keeps a lane constant in a register instead of recomputing it
// inside the step loop.
__device__ __forceinline__ uint32_t keep(uint32_t v) {
  asm volatile("" : "+r"(v));
  return v;
}
__device__ __forceinline__ uint4 lds128(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
  return v;
}
__device__ __forceinline__ uint32_t lds_u8(uint32_t addr) {
  uint32_t v;
  asm volatile("ld.shared.u8 %0, [%1];" : "=r"(v) : "r"(addr));
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// Inputs in B order: per step j of a row (4 blocks), 4 rows q of 128 bytes (one per word of a block), each
// holding the 8 B lanes' 16 bytes side by side: (t, part) at byte 32t + 16 part. So a B lane's 4 loads of a
// step are 128 bytes apart, and the 8 B lanes of one load fill one 128-byte row: no bank conflict.

// Index (in 32-bit words) of fp16 pair h of word q of block b, part p, in such an array.
__host__ __device__ inline int b_order_word(int b, int p, int q, int h) {
  return ((((b >> 2) * 4 + q) * 4 + (b & 3)) * 2 + p) * 4 + h;
}

// The 4 uint4 of one step for a B lane (pred true), nothing for the others (their registers keep zeros).
struct SharedInputs {
  uint32_t array;       // shared-window address of choice 0's array
  uint32_t per_choice;  // bytes from one choice's array to the next (0: one array for every tile)
  int tiles_per_choice;
  __device__ uint32_t base(int tile) const { return array + (tile / tiles_per_choice) * per_choice; }
  __device__ void load(uint32_t p, bool pred, uint4 (&x)[4]) const {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %16, 0;\n"
        "@p ld.shared.v4.u32 {%0, %1, %2, %3}, [%17];\n"
        "@p ld.shared.v4.u32 {%4, %5, %6, %7}, [%17+128];\n"
        "@p ld.shared.v4.u32 {%8, %9, %10, %11}, [%17+256];\n"
        "@p ld.shared.v4.u32 {%12, %13, %14, %15}, [%17+384];\n}"
        : "+r"(x[0].x), "+r"(x[0].y), "+r"(x[0].z), "+r"(x[0].w), "+r"(x[1].x), "+r"(x[1].y), "+r"(x[1].z),
          "+r"(x[1].w), "+r"(x[2].x), "+r"(x[2].y), "+r"(x[2].z), "+r"(x[2].w), "+r"(x[3].x), "+r"(x[3].y),
          "+r"(x[3].z), "+r"(x[3].w)
        : "r"(static_cast<int>(pred)), "r"(p));
  }
};
struct GlobalInputs {
  const char* array;  // choice 0's array
  size_t per_choice;  // bytes from one choice's array to the next
  int tiles_per_choice;
  __device__ const char* base(int tile) const { return array + (tile / tiles_per_choice) * per_choice; }
  __device__ void load(const char* p, bool pred, uint4 (&x)[4]) const {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %16, 0;\n"
        "@p ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%17];\n"
        "@p ld.global.nc.v4.u32 {%4, %5, %6, %7}, [%17+128];\n"
        "@p ld.global.nc.v4.u32 {%8, %9, %10, %11}, [%17+256];\n"
        "@p ld.global.nc.v4.u32 {%12, %13, %14, %15}, [%17+384];\n}"
        : "+r"(x[0].x), "+r"(x[0].y), "+r"(x[0].z), "+r"(x[0].w), "+r"(x[1].x), "+r"(x[1].y), "+r"(x[1].z),
          "+r"(x[1].w), "+r"(x[2].x), "+r"(x[2].y), "+r"(x[2].z), "+r"(x[2].w), "+r"(x[3].x), "+r"(x[3].y),
          "+r"(x[3].z), "+r"(x[3].w)
        : "r"(static_cast<int>(pred)), "l"(p));
  }
};

// ---------------------------------------------------------------------------------------------------------
// StagedSteps: cp.async into a per-warp ring of NS stages of 2 steps each.

constexpr int kChunkSteps = 2;                    // steps per stage
constexpr int kStageRowBytes = kChunkSteps * 64;  // 8 blocks of a row
constexpr int kStageBytes = 16 * kStageRowBytes;  // 2 KB

// Bytes of one tile's scales in shared memory: 16 rows of G, plus room for the (masked) reads of lanes past
// a row's end, in whole 16-byte copies.
__host__ __device__ inline int tile_scale_bytes(int G) { return (16 * G + 4 + 15) / 16 * 16; }

// Shared memory one warp needs for NS stages and NS tile-scale buffers.
__host__ __device__ inline int staged_warp_bytes(int ns, int G) { return ns * (kStageBytes + tile_scale_bytes(G)); }

// Byte offset in a stage of (local row r, block i of the chunk). Lanes (g, t) and (g+1, t) read the same
// block of neighbouring A-rows at once; flipping bit 2 of i for odd A-rows puts them in other banks.
template <Proj P>
__device__ __forceinline__ uint32_t stage_offset(int r, int i) {
  const int a_row_parity = (P == Proj::GateUp ? r >> 1 : r) & 1;
  return static_cast<uint32_t>(r * kStageRowBytes + ((i ^ (a_row_parity << 2)) << 4));
}

template <Proj P, int NS>
struct StagedSteps {
  static_assert(kChunkSteps == 2, "run() picks the block offsets of step 0 and 1 of a chunk");
  static constexpr int kStages = NS;
  WarpRange r;
  const ChosenRows* chosen;
  uint32_t stages;     // this warp's NS stages (shared-window address)
  uint32_t scale_buf;  // its NS tile-scale buffers, buffer tile % NS for tile
  int scale_bytes;
  const char* dummy;  // a valid global address, for copies that only write zeros
  // The copy cursor: the next chunk to copy starts at step j of tile `tile`.
  int c_tile, c_j, c_left;
  bool c_new_tile, c_ok;
  const char* c_src;    // this lane's first copy source in the tile: row lane/8, block lane%8
  const char* c_scales;  // the tile's scales
  uint32_t c_dst;        // this lane's first copy destination in stage 0

  __device__ StagedSteps(const Phase& phase, const ChosenRows* chosen_rows, float* pieces, unsigned* arrivals,
                         int warps_per_cta, char* warp_smem, const void* any_global)
      : r(phase, pieces, arrivals, warps_per_cta), chosen(chosen_rows), dummy(static_cast<const char*>(any_global)) {
    stages = static_cast<uint32_t>(__cvta_generic_to_shared(warp_smem));
    scale_buf = stages + NS * kStageBytes;
    scale_bytes = tile_scale_bytes(phase.G);
    c_dst = stages + stage_offset<P>(r.lane >> 3, r.lane & 7);
    c_left = r.s_end - r.s_begin;
    if (c_left > 0) start_copy_tile(r.first_tile, r.s_begin - r.first_tile * phase.steps);
#pragma unroll
    for (int i = 0; i < NS - 1; ++i) copy_next(i);
  }

  __device__ void start_copy_tile(int tile, int j) {
    c_tile = tile;
    c_j = j;
    c_new_tile = true;
    const TileRows rows = tile_rows(chosen, r.ph, tile);
    c_ok = rows.ok;
    c_src = rows.ok ? reinterpret_cast<const char*>(rows.blocks) + ((r.lane >> 3) * r.ph.G + (r.lane & 7)) * 16 : dummy;
    c_scales = rows.ok ? reinterpret_cast<const char*>(rows.scales) : dummy;
  }

  // Copies the next chunk into stage `stage` (or commits an empty group when the range is done).
  __device__ void copy_next(int stage) {
    const Phase& ph = r.ph;
    if (c_left > 0) {
      const int n = min(kChunkSteps, min(ph.steps - c_j, c_left));
      if (c_new_tile) {  // the tile's scales, 16 * G contiguous bytes, and zeros after them
        const uint32_t dst = scale_buf + (c_tile % NS) * scale_bytes;
        for (int q = r.lane; 16 * q < scale_bytes; q += 32)
          cp_async16(dst + 16 * q, c_ok && q < ph.G ? c_scales + 16 * q : dummy, c_ok && q < ph.G);
        c_new_tile = false;
      }
      // Rows lane/8 + 4k, block i = lane%8 of the chunk; a block past the chunk or the row is zero-filled
      // (its source clamped to the row, so that the address stays valid).
      const int i = r.lane & 7, b = 4 * c_j + i;
      const bool live = c_ok && i < 4 * n && b < ph.G;
      const char* src = c_src + static_cast<ptrdiff_t>(c_ok ? min(b, ph.G - 1) - i : 0) * 16;
      const ptrdiff_t row_step = c_ok ? static_cast<ptrdiff_t>(ph.G) * 64 : 0;
#pragma unroll
      for (int k = 0; k < 4; ++k) cp_async16(c_dst + stage * kStageBytes + k * 4 * kStageRowBytes, src + k * row_step, live);
      c_j += n;
      c_left -= n;
      if (c_j == ph.steps && c_left > 0) start_copy_tile(c_tile + 1, 0);
    }
    cp_async_commit();
  }

  template <typename XSource, typename Finish, typename Arrive>
  __device__ void run(const XSource& xsrc, Finish&& finish, Arrive&& arrive) {
    const Phase& ph = r.ph;
    const int g = r.g, t = r.t;
    const bool b_lane = keep((g >> 1) == t) != 0;
    const int b_off = (t * 2 + (g & 1)) * 16;  // a B lane's 16 bytes in each 128-byte row of a step
    const int row_a = local_row<P>(g), row_b = local_row<P>(g + 8);
    // This lane's blocks in stage 0, for step 0 and 1 of a chunk (blocks t and 4 + t).
    const uint32_t a_s0 = keep(stages + stage_offset<P>(row_a, t)), a_s1 = keep(stages + stage_offset<P>(row_a, 4 + t));
    const uint32_t b_s0 = keep(stages + stage_offset<P>(row_b, t)), b_s1 = keep(stages + stage_offset<P>(row_b, 4 + t));
    int tile = r.first_tile, j = r.s_begin - r.first_tile * ph.steps;
    auto xp = xsrc.base(tile) + j * 512 + b_off;
    uint32_t sc = scale_buf + (tile % NS) * scale_bytes + row_a * ph.G + 4 * j + t;  // row a's scale of step j
    const uint32_t sc_ab = keep((row_b - row_a) * ph.G);
    const int t_end = keep(ph.G - t);  // this lane's block of step j is past the row's end when 4j >= t_end
    uint4 x[4] = {};
    float acc_a = 0.0f, acc_b = 0.0f;
    int s = r.s_begin;
    while (s < r.s_end) {
#pragma unroll
      for (int st = 0; st < NS; ++st) {  // chunk in stage st
        if (s < r.s_end) {
          __syncwarp();  // every lane is done with the stage the next copy overwrites
          copy_next((st + NS - 1) % NS);
          cp_async_wait<NS - 1>();  // this chunk's group (and its tile's scales) have landed
          __syncwarp();
          const int n = min(kChunkSteps, min(ph.steps - j, r.s_end - s));
#pragma unroll
          for (int jj = 0; jj < kChunkSteps; ++jj) {
            if (jj < n) {
              const uint4 wa = lds128((jj == 0 ? a_s0 : a_s1) + st * kStageBytes);
              const uint4 wb = lds128((jj == 0 ? b_s0 : b_s1) + st * kStageBytes);
              // Past the row's end the blocks are zeros; their scales must not be inf (inf * 0).
              const uint32_t mask = 4 * j < t_end ? 0xffu : 0u;
              const uint32_t sa = lds_u8(sc) & mask, sb = lds_u8(sc + sc_ab) & mask;
              xsrc.load(xp, b_lane, x);
              step_mma(wa, wb, sa, sb, x, acc_a, acc_b);
              xp += 512;
              sc += 4;
              ++s;
              if (++j == ph.steps || s == r.s_end) {
                r.close_tile(tile, acc_a, acc_b, finish);
                acc_a = acc_b = 0.0f;
                if (j == ph.steps && s < r.s_end) {
                  j = 0;
                  ++tile;
                  xp = xsrc.base(tile) + b_off;
                  sc = scale_buf + (tile % NS) * scale_bytes + row_a * ph.G + t;
                }
              }
            }
          }
        }
      }
    }
    cp_async_wait<0>();
    r.publish(finish, arrive);
  }
};

}  // namespace ossrun::gpu::moe_steps
