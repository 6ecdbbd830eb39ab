// mxfp4_moe_gemm: the mixture-of-experts block for a batch of n tokens (prefill) on the tensor cores
// (gpt-oss.md §4 steps 3-6; the one-token version is mxfp4_moe_matvec.cuh, whose slot table and SwiGLU
// parameters this reuses).
//
//   out[t] += sum over the token's k choices c, in choice order, of
//             weight[t][c] * (W2[s] swiglu(W1[s] x[t] + b1[s]) + b2[s]),   s = choice_slots[t][c]
//
// Named stages, one launch each, all on the caller's stream, no host synchronization (capturable):
//   1. routing metadata: tokens per slot, each choice's position in expert-sorted order, the tile list;
//   2. gather: x rows into expert-sorted order as bf16 hi + lo parts (x = hi + lo, mma_sm80.cuh);
//   3. gate_up: grouped GEMM per (slot, tile of up to 64 or 128 positions), MXFP4 weight tiles dequantized to bf16
//      in shared memory, the clamped SwiGLU fused in the epilogue, activations written as bf16 hi + lo;
//   4. down: grouped GEMM, + b2, fp32 results per position;
//   5. scatter: out[t] += the weighted results of the token's choices, in choice order (deterministic).
// The GEMM grids are sized for the worst case (every slot a partial tile); CTAs beyond the tile count the
// metadata wrote exit at once.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"

namespace ossrun::gpu {

// Positions per GEMM tile: 64 (4-stage ring) or 128 (3-stage ring, half the MXFP4 dequantization per mma).
// Auto takes N128 when the slots average at least 256 choices (n * k >= 256 * n_slots), else N64 (H100,
// gpt-oss-20b layer: n = 2048 N128 2.91 ms vs N64 3.18; n = 512 N64 1.10 ms vs N128 1.18).
enum class MoeGemmTile : int { Auto, N64, N128 };
const char* moe_gemm_tile_name(MoeGemmTile tile);

// Scratch for one stream's launches, sized at construction.
class MoeGemmWorkspace {
 public:
  // Throws InputError for sizes the kernels cannot take (hidden and intermediate: multiples of 32 up to
  // kMoeMaxK; k: 1 to kMoeMaxChoices; max_n and n_slots at least 1).
  MoeGemmWorkspace(int max_n, int k, int n_slots, int hidden, int intermediate);
  int max_n() const { return max_n_; }
  int k() const { return k_; }
  int n_slots() const { return n_slots_; }
  int hidden() const { return hidden_; }
  int intermediate() const { return intermediate_; }
  // Throws InputError when a launch since the last call met a slot index outside the table (other than -1)
  // or a slot whose blocks or scales were not 16-byte aligned (those choices contributed nothing), and clears
  // the flag. Synchronizes with the device.
  void check_errors();

 private:
  friend void mxfp4_moe_gemm(const ExpertSlotMxfp4*, int, const int32_t*, const float*, int, int, const float*, float*,
                             const MoeShape&, const SwigluParams&, MoeGemmWorkspace&, cudaStream_t, MoeGemmTile);
  int max_n_, k_, n_slots_, hidden_, intermediate_;
  DeviceBuffer<int> slot_counts_;      // (n_slots) choices routed to each slot
  DeviceBuffer<int> slot_offsets_;     // (n_slots) first sorted position of each slot
  DeviceBuffer<int> slot_first_tile_;  // (n_slots) first tile of each slot
  DeviceBuffer<int> positions_;        // (max_n, k) sorted position of each choice, -1 when skipped
  DeviceBuffer<int4> tiles_;           // (max_tiles) {slot, first position, positions, 0}
  DeviceBuffer<int> n_tiles_;          // (1)
  // (max_n * k, H) as bf16 hi then lo halves of x for gate_up; reused as (max_n * k, H) fp32 down outputs
  // (x is dead once gate_up has run, and 2 + 2 bytes = 4 bytes per value).
  DeviceBuffer<float> x_split_or_y_;
  DeviceBuffer<uint16_t> act_hi_, act_lo_;  // (max_n * k, I) bf16 SwiGLU outputs
  DeviceBuffer<int> error_;                 // (1): bit 0 bad slot index, bit 1 misaligned slot
};

// slots: device (n_slots); choice_slots: device (n, k), -1 = skip the choice (computed elsewhere);
// choice_weights: device (n, k); x: device (n, H) fp32, 16-byte aligned; out: device (n, H) fp32, 16-byte
// aligned, accumulated into. n from 0 (no-op) to ws.max_n(), k and n_slots at most the workspace's,
// shape.n_slots == n_slots. Throws InputError for what the kernels cannot take.
void mxfp4_moe_gemm(const ExpertSlotMxfp4* slots, int n_slots, const int32_t* choice_slots, const float* choice_weights,
                    int n, int k, const float* x, float* out, const MoeShape& shape, const SwigluParams& swiglu,
                    MoeGemmWorkspace& ws, cudaStream_t stream, MoeGemmTile tile = MoeGemmTile::Auto);

}  // namespace ossrun::gpu
