// Every expert of every layer resident on the GPU (the model fits the VRAM budget): uploaded once from the
// checkpoint, then each layer's MoE is one MXFP4 matvec launch pair per decoded token and the grouped
// GEMM for prefill batches. Captured in the decode graph (no host synchronization).
//
// Device layout: one allocation per layer holding its experts one after another, each expert's six pieces
// (gate_up blocks, scales, bias, down blocks, scales, bias) at 256-byte aligned offsets, so any expert
// shape meets the kernels' alignment; a device slot table per layer points at them (slot = expert index).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/mxfp4_moe_gemm.cuh"
#include "gpu_kernels/mxfp4_moe_matvec.cuh"
#include "src/gpu/gpu_experts.cuh"
#include "src/gpu/uploader.cuh"
#include "src/model/checkpoint.h"

namespace ossrun::gpu {

// Bytes of one expert in the resident layout (the six pieces, each padded to 256 bytes).
uint64_t resident_expert_bytes(const ModelConfig& c);

class ResidentExperts : public GpuExperts {
 public:
  // Uploads every expert through `up`. max_batch: the most tokens per run().
  ResidentExperts(const Checkpoint& ck, int64_t max_batch, Uploader& up);

  void run(const GpuExpertBatch& b) override;
  bool graph_capturable() const override { return true; }
  std::string describe() const override;
  uint64_t device_bytes() const override;
  uint64_t host_bytes() const override { return 0; }
  uint64_t expert_calls() const override { return calls_; }
  uint64_t expert_calls_gpu() const override { return calls_; }

 private:
  MoeShape shape_;
  SwigluParams swiglu_;
  int experts_ = 0, k_ = 0;
  std::vector<DeviceBuffer<uint8_t>> weights_;          // (L) each layer's experts
  std::vector<DeviceBuffer<ExpertSlotMxfp4>> slots_;    // (L, E) pointers into weights_
  DeviceBuffer<ExpertChoice> choices_;                  // (k) one token's choices
  MoeWorkspace matvec_ws_;
  MoeGemmWorkspace gemm_ws_;
  uint64_t calls_ = 0;
};

}  // namespace ossrun::gpu
