// mxfp4_moe_matvec: one token's mixture-of-experts block for one layer on the GPU (gpt-oss.md §4 steps 3-6),
// MXFP4 expert weights read directly, fp32 activations and accumulation.
//
//   for each chosen (slot, weight):  h = W1[slot] x + b1[slot]                  (2I rows, K = H)
//                                    a[j] = swiglu(h[2j], h[2j+1])                (clamped, §4)
//                                    y = W2[slot] a + b2[slot]                    (H rows, K = I)
//   out += sum over the choices, in list order, of weight * y
//
// Two launches on the caller's stream (the second may start early through programmatic dependent launch, see
// MoeTuning): gate_up fused with the SwiGLU (all chosen experts at once), then down
// fused with the weighted combine. The combine is either deterministic (each down warp writes weight*y to the
// workspace, and the last warp to finish an output row, found by an arrival counter per row, adds the
// contributions in choice order: repeated runs are bit-identical) or atomic (float atomics straight into out:
// no end-of-kernel synchronization, but the summation order, hence the last bits, can vary between runs).
//
// Experts live anywhere in device memory: a slot table (device array of ExpertSlotMxfp4) points at each
// slice, laid out exactly as the checkpoint's ExpertSlice. The choices are read from device memory, so a
// router on the GPU can write them and the launch can sit in a CUDA graph.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_buffer.cuh"

namespace ossrun::gpu {

// One expert of one layer on the device. Block pointers must be 16-byte aligned (cudaMalloc gives 256).
struct ExpertSlotMxfp4 {
  const uint8_t* gate_up_blocks;  // (2I, H/32, 16) u8; row 2j is gate j, row 2j+1 is up j
  const uint8_t* gate_up_scales;  // (2I, H/32) u8, E8M0
  const uint16_t* gate_up_bias;   // (2I) bf16
  const uint8_t* down_blocks;     // (H, I/32, 16) u8
  const uint8_t* down_scales;     // (H, I/32) u8, E8M0
  const uint16_t* down_bias;      // (H) bf16
};

// One selected expert: an index into the slot table and its routing weight.
// A slot of kSkippedSlot marks a choice served elsewhere (the CPU, when the expert is not resident): it
// contributes nothing and is not an error. Any other slot outside the table is reported (check_errors).
constexpr int32_t kSkippedSlot = -1;
struct ExpertChoice {
  int32_t slot;
  float weight;
};

struct MoeShape {
  int hidden;        // H, a multiple of 32, at most kMoeMaxK
  int intermediate;  // I, a multiple of 32, at most kMoeMaxK
  int n_slots;       // entries in the slot table
};

struct SwigluParams {
  float alpha = 1.702f;
  float limit = 7.0f;
};

// The largest reduction length (H for gate_up, I for down) the kernels hold in registers.
constexpr int kMoeMaxK = 4096;
// The most choices one launch takes (each CTA keeps the chosen slices' pointers in shared memory).
constexpr int kMoeMaxChoices = 16;

// How a packed byte of two E2M1 values becomes two floats: a shared-memory table of float pairs, or of bf16
// pairs widened with two integer instructions (half the shared-memory traffic, more instructions).
enum class Mxfp4Lut : int { F32x2, Bf16x2 };
const char* mxfp4_lut_name(Mxfp4Lut lut);

enum class MoeCombine : int { Deterministic, Atomic };
const char* moe_combine_name(MoeCombine combine);

// How the work is scheduled (gpu_kernels/NOTES.md has the measurements). The default is the fastest measured.
struct MoeTuning {
  // Decode-table lookups address shared memory straight from the byte-permute result (the table sits at a
  // 64 KiB-aligned shared address; 128 KiB of dynamic shared memory per CTA) instead of adding a base.
  bool aligned_lut = true;
  // Programmatic dependent launch (sm_90 and later only; ignored elsewhere and on the legacy default stream):
  // each kernel fills its table (and down also loads its first weights) while the previous kernel finishes.
  bool programmatic_launch = true;
  // gate_up warps ask L2 for down's weights after their last step, so down reads them from L2.
  bool prefetch_down = true;
  // gate_up steps per ticket of a global work counter; 0: each warp takes a fixed contiguous range (faster:
  // tickets of 1, 2 and 4 steps all measured slower on the H100).
  int gate_up_chunk = 0;
  // L2 prefetches ask for each 128-byte line once (v2: one request per lane and 16-byte block).
  bool line_prefetch = true;
  // How many steps ahead of the step being decoded L2 is asked for weights (2 to 16; v2 used 3).
  int prefetch_steps = 2;
};
// The kernels as shipped before MoeTuning (v2 in NOTES.md): two plain launches, static ranges.
constexpr MoeTuning kMoeTuningV2{false, false, false, 0, false, 3};

// Scratch for one stream's launches (never share one between streams running concurrently).
class MoeWorkspace {
 public:
  MoeWorkspace(int hidden, int intermediate, int max_choices);
  int max_choices() const { return max_choices_; }
  int hidden() const { return hidden_; }
  int intermediate() const { return intermediate_; }
  // SwiGLU outputs of the last launch, (max_choices, I) fp32, row c for choice c (tests read it).
  const float* activations() const { return act_.get(); }
  // Throws InputError when a launch since the last call met a bad slot index or a misaligned slice pointer
  // (that choice contributed nothing), and clears the flag. Synchronizes with the device.
  void check_errors();

 private:
  friend void mxfp4_moe_matvec(const ExpertSlotMxfp4*, const ExpertChoice*, int, const float*, float*, const MoeShape&,
                               const SwigluParams&, MoeWorkspace&, cudaStream_t, MoeCombine, Mxfp4Lut,
                               const MoeTuning&);
  int hidden_, intermediate_, max_choices_;
  DeviceBuffer<float> act_;          // (max_choices, I)
  DeviceBuffer<float> partial_;      // (max_choices, H): weight * y per choice
  DeviceBuffer<unsigned> arrivals_;  // (H): choices finished per output row; back to 0 after each launch
  DeviceBuffer<int> error_;          // (1): bit 0 bad slot index, bit 1 misaligned blocks pointer
  DeviceBuffer<unsigned> tickets_;   // (2): next gate_up chunk, gate_up warps done; back to 0 after each launch
};

// out (H) fp32 += the MoE output for x (H) fp32. slots: device array (n_slots); choices: device array (k).
// k may be 0 (no-op) up to workspace.max_choices() (at most kMoeMaxChoices). Throws InputError for shapes the
// kernels cannot take.
void mxfp4_moe_matvec(const ExpertSlotMxfp4* slots, const ExpertChoice* choices, int k, const float* x, float* out,
                      const MoeShape& shape, const SwigluParams& swiglu, MoeWorkspace& workspace, cudaStream_t stream,
                      MoeCombine combine = MoeCombine::Deterministic, Mxfp4Lut lut = Mxfp4Lut::F32x2,
                      const MoeTuning& tuning = MoeTuning{});

}  // namespace ossrun::gpu
