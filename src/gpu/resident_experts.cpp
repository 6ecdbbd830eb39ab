#include "src/gpu/resident_experts.cuh"

#include "gpu_kernels/router_topk.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

constexpr uint64_t kAlign = 256;
uint64_t aligned(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// The six pieces of an MXFP4 expert in resident order.
struct Pieces {
  uint64_t gate_up_blocks, gate_up_scales, gate_up_bias, down_blocks, down_scales, down_bias;
};
Pieces piece_bytes(const ModelConfig& c) {
  const uint64_t H = c.hidden_size, I = c.intermediate_size;
  return {2 * I * H / 2, 2 * I * H / 32, 2 * I * 2, H * I / 2, H * I / 32, H * 2};
}

}  // namespace

uint64_t resident_expert_bytes(const ModelConfig& c) {
  const Pieces p = piece_bytes(c);
  return aligned(p.gate_up_blocks) + aligned(p.gate_up_scales) + aligned(p.gate_up_bias) + aligned(p.down_blocks) +
         aligned(p.down_scales) + aligned(p.down_bias);
}

ResidentExperts::ResidentExperts(const Checkpoint& ck, int64_t max_batch, Uploader& up)
    : shape_{.hidden = static_cast<int>(ck.config().hidden_size),
             .intermediate = static_cast<int>(ck.config().intermediate_size),
             .n_slots = static_cast<int>(ck.config().num_local_experts)},
      swiglu_{.alpha = static_cast<float>(ck.config().swiglu_alpha), .limit = static_cast<float>(ck.config().swiglu_limit)},
      experts_(static_cast<int>(ck.config().num_local_experts)),
      k_(static_cast<int>(ck.config().num_experts_per_tok)),
      choices_(static_cast<size_t>(ck.config().num_experts_per_tok)),
      matvec_ws_(shape_.hidden, shape_.intermediate, k_),
      gemm_ws_(static_cast<int>(max_batch), k_, experts_, shape_.hidden, shape_.intermediate) {
  const ModelConfig& c = ck.config();
  if (c.expert_format != ExpertFormat::MXFP4) throw InputError("the GPU experts need MXFP4 experts; this checkpoint has bf16 experts");
  const uint64_t per_expert = resident_expert_bytes(c);
  up.begin("experts to the GPU", per_expert * experts_ * c.num_hidden_layers);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    DeviceBuffer<uint8_t>& buf = weights_.emplace_back(per_expert * experts_);
    std::vector<ExpertSlotMxfp4> table;
    for (int e = 0; e < experts_; ++e) {
      const ExpertSlice s = expert_slice(ck.weights(), c, l, e);
      uint8_t* at = buf.get() + per_expert * e;
      auto put = [&](const TensorView& v) {
        up.upload(at, v.bytes.data(), v.bytes.size());
        uint8_t* p = at;
        at += aligned(v.bytes.size());
        return p;
      };
      ExpertSlotMxfp4 slot{};
      slot.gate_up_blocks = put(s.gate_up_blocks);
      slot.gate_up_scales = put(s.gate_up_scales);
      slot.gate_up_bias = reinterpret_cast<const uint16_t*>(put(s.gate_up_bias));
      slot.down_blocks = put(s.down_blocks);
      slot.down_scales = put(s.down_scales);
      slot.down_bias = reinterpret_cast<const uint16_t*>(put(s.down_bias));
      table.push_back(slot);
    }
    slots_.emplace_back(table);
  }
  up.finish();
}

void ResidentExperts::run(const GpuExpertBatch& b) {
  // Not counted while a stream captures the decode graph: the forward pass counts the graph's replays.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  OSSRUN_CUDA_CHECK(cudaStreamIsCapturing(b.stream, &capture));
  if (capture == cudaStreamCaptureStatusNone) calls_ += static_cast<uint64_t>(b.n) * k_;
  const ExpertSlotMxfp4* table = slots_.at(static_cast<size_t>(b.layer)).get();
  if (b.n == 1) {
    // The router's expert ids are the slots; one launch pair serves the token's k experts.
    expert_choices_from_topk(b.ids, b.weights, k_, nullptr, choices_.get(), b.stream);
    mxfp4_moe_matvec(table, choices_.get(), k_, b.x, b.residual, shape_, swiglu_, matvec_ws_, b.stream);
  } else {
    mxfp4_moe_gemm(table, experts_, b.ids, b.weights, b.n, k_, b.x, b.residual, shape_, swiglu_, gemm_ws_, b.stream);
  }
}

std::string ResidentExperts::describe() const {
  return "all " + std::to_string(experts_ * static_cast<int>(weights_.size())) + " experts on the GPU";
}

uint64_t ResidentExperts::device_bytes() const {
  uint64_t n = choices_.bytes();
  for (const auto& w : weights_) n += w.bytes();
  for (const auto& s : slots_) n += s.bytes();
  return n;  // the kernels' workspaces are small and not counted here
}

}  // namespace ossrun::gpu
