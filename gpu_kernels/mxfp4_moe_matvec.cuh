// mxfp4_moe_matvec: one token's mixture-of-experts block for one layer on the GPU (gpt-oss.md §4 steps 3-6),
// MXFP4 expert weights read directly, fp32 activations and outputs, fp32 accumulation.
//
//   for each chosen (slot, weight):  h = W1[slot] x + b1[slot]                  (2I rows, K = H)
//                                    a[j] = swiglu(h[2j], h[2j+1])                (clamped, §4)
//                                    y = W2[slot] a + b2[slot]                    (H rows, K = I)
//   out += sum over the choices, in list order, of weight * y
//
// Two launches on the caller's stream: gate_up fused with the SwiGLU (all chosen experts at once), then down
// fused with the weighted combine. The combine is either deterministic (each finished down tile writes
// weight*y to the workspace, and the last of the k tiles of a row group, found by an arrival counter, adds
// the contributions in choice order: repeated runs are bit-identical) or atomic (float atomics straight into
// out: the summation order, hence the last bits, can vary between runs).
//
// Numerics: the weights are decoded exactly; the products run on the tensor cores (mma.sync, sm_80+) with the
// input vector split into fp16 hi + lo after scaling by a power of two, so each input enters with about 22
// significant bits (relative error about 2^-22, below fp32's 2^-24 rounding of a long sum only by a few bits);
// every sum is fp32.
//
// Experts live anywhere in device memory: a slot table (device array of ExpertSlotMxfp4) points at each
// slice, laid out exactly as the checkpoint's ExpertSlice. The choices are read from device memory, so a
// router on the GPU can write them and the launch can sit in a CUDA graph.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_buffer.cuh"

namespace ossrun::gpu {

// One expert of one layer on the device. Block and scale pointers must be 16-byte aligned (cudaMalloc gives
// 256).
struct ExpertSlotMxfp4 {
  const uint8_t* gate_up_blocks;  // (2I, H/32, 16) u8; row 2j is gate j, row 2j+1 is up j
  const uint8_t* gate_up_scales;  // (2I, H/32) u8, E8M0
  const uint16_t* gate_up_bias;   // (2I) bf16
  const uint8_t* down_blocks;     // (H, I/32, 16) u8
  const uint8_t* down_scales;     // (H, I/32) u8, E8M0
  const uint16_t* down_bias;      // (H) bf16
};

// One selected expert: an index into the slot table and its routing weight.
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

// The largest reduction length (H for gate_up, I for down).
constexpr int kMoeMaxK = 4096;
// The most choices one launch takes (each CTA keeps the chosen slices' pointers in shared memory).
constexpr int kMoeMaxChoices = 16;

// How the weights reach the tensor cores (gpu_kernels/mxfp4_moe_steps.cuh): StagedWxN copies them with
// cp.async into N shared-memory stages per warp, W warps per SM. Every variant computes the same function;
// `ossrun bench gpu` compares them. A device whose shared memory cannot hold the requested one (sm_86/89
// have about 100 KB per SM) gets Staged8x2.
enum class MoePipeline : int { Staged16x3, Staged12x4, Staged24x2, Staged8x2 };
const char* moe_pipeline_name(MoePipeline p);

enum class MoeCombine : int { Deterministic, Atomic };
const char* moe_combine_name(MoeCombine combine);

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
                               const SwigluParams&, MoeWorkspace&, cudaStream_t, MoeCombine, MoePipeline);
  int hidden_, intermediate_, max_choices_;
  int max_warps_;                          // the most warps a launch of either kernel has
  int max_smem_;                           // shared memory one CTA may have on this device
  DeviceBuffer<float> act_;                // (max_choices, I)
  DeviceBuffer<uint32_t> act_mma_;         // (max_choices, G, 2, 16) fp16 pairs: act as the down kernel reads it
  DeviceBuffer<float> pieces_;             // (max_warps, 2, 16): partial sums of tiles split between warps
  DeviceBuffer<float> partial_;            // (max_choices, H): weight * y per choice
  DeviceBuffer<unsigned> tile_arrivals_;   // (max_choices * max(I/8, H/16)): pieces finished per tile
  DeviceBuffer<unsigned> group_arrivals_;  // (H/16): choices finished per 16-row group
  DeviceBuffer<int> error_;                // (1): bit 0 bad slot index, bit 1 misaligned blocks pointer
};

// out (H) fp32 += the MoE output for x (H) fp32. slots: device array (n_slots); choices: device array (k).
// k may be 0 (no-op) up to workspace.max_choices() (at most kMoeMaxChoices). Throws InputError for shapes the
// kernels cannot take, and for SwiGLU parameters whose activations could overflow fp16 (see the .cu).
void mxfp4_moe_matvec(const ExpertSlotMxfp4* slots, const ExpertChoice* choices, int k, const float* x, float* out,
                      const MoeShape& shape, const SwigluParams& swiglu, MoeWorkspace& workspace, cudaStream_t stream,
                      MoeCombine combine = MoeCombine::Deterministic,
                      MoePipeline pipeline = MoePipeline::Staged16x3);

}  // namespace ossrun::gpu
