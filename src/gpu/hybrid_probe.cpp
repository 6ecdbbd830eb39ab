// HybridExperts' start-up probe: the throughputs the prefill cost model and the upload credit need, measured
// on this machine with this model's expert shape, and cached in <cache>/hybrid_probe/<key>.json (key: the
// GPU's name, the CPU threads, H, I) so later runs skip it.
//   pcie_bytes_per_s: pinned host -> device copies of the exchange buffer (median of 5);
//   upload_s:         slice bytes / that bandwidth;
//   cpu_fixed_s, cpu_token_s: CpuExperts on one expert with 1 token and with m tokens (median of 3 each),
//                     a line through the two points;
//   gpu_token_s:      one mxfp4_moe_matvec of one resident expert (median of 5); gpu_fixed_s = 0 (per-token
//                     launches); both unknown, and the result not cached, when no slot exists.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/event_timer.cuh"
#include "src/gpu/device.h"
#include "src/gpu/hybrid_experts.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

template <typename F>
double median_seconds(int reps, F&& f) {
  std::vector<double> s;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

}  // namespace

offload::HybridThroughput HybridExperts::load_or_probe_throughput() {
  const ModelConfig& c = ck_.config();
  const std::string key = probe().name + "_" + std::to_string(workers_->threads()) + "t_H" + std::to_string(hidden_) +
                          "_I" + std::to_string(c.intermediate_size);
  const std::filesystem::path file = offload::throughput_cache_path(cache_dir_, key);
  if (auto t = offload::load_throughput(file)) return *t;

  offload::HybridThroughput t;
  cudaStream_t stream;
  OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  try {
    const size_t bytes = x_h_.bytes();
    std::fill(x_h_.get(), x_h_.get() + x_h_.size(), 0.01f);
    const double ms = median_ms(stream, 1, 5, [&](cudaStream_t s) {
      OSSRUN_CUDA_CHECK(cudaMemcpyAsync(y_d_.get(), x_h_.get(), bytes, cudaMemcpyHostToDevice, s));
    });
    t.pcie_bytes_per_s = static_cast<double>(bytes) / std::max(ms * 1e-3, 1e-9);
    t.upload_s = static_cast<double>(slice_bytes_) / t.pcie_bytes_per_s;

    // CPU: expert 0 of layer 0 for one token, then for m tokens (every other choice skipped).
    const int64_t m = std::min<int64_t>(max_tokens_, 32);
    std::fill(cpu_ids_.begin(), cpu_ids_.end(), engine::kSkippedExpert);
    for (int64_t tok = 0; tok < m; ++tok) {
      cpu_ids_[static_cast<size_t>(tok * k_)] = 0;
      weights_h_[static_cast<size_t>(tok * k_)] = 1.0f;
    }
    auto cpu_run = [&](int64_t n) {
      cpu_->run({.layer = 0, .n = n, .x = x_h_.get(), .ids = cpu_ids_.data(), .weights = weights_h_.get(),
                 .out = y_h_.get()});
    };
    cpu_run(1);  // warm-up (page faults)
    const double c1 = median_seconds(3, [&] { cpu_run(1); });
    if (m > 1) {
      const double cm = median_seconds(3, [&] { cpu_run(m); });
      t.cpu_token_s = std::max(0.0, (cm - c1) / static_cast<double>(m - 1));
    } else {
      t.cpu_token_s = c1;
    }
    t.cpu_fixed_s = std::max(0.0, c1 - t.cpu_token_s);

    // GPU: one expert, one token, from the first slot there is (its contents do not change the time).
    const bool has_slot = pool_->layer_slots() + pool_->scratch() > 0;
    if (has_slot) {
      choices_h_[0] = {0, 1.0f};
      OSSRUN_CUDA_CHECK(cudaMemcpyAsync(choices_d_.get(), choices_h_.get(), sizeof(ExpertChoice), cudaMemcpyHostToDevice, stream));
      const MoeShape shape{static_cast<int>(hidden_), static_cast<int>(c.intermediate_size), 1};
      const SwigluParams sw{static_cast<float>(c.swiglu_alpha), static_cast<float>(c.swiglu_limit)};
      OSSRUN_CUDA_CHECK(cudaMemsetAsync(y_d_.get(), 0, static_cast<size_t>(hidden_) * sizeof(float), stream));
      // x and out: two rows of the exchange buffer (the same row when it has one: the result is not used).
      float* out = y_d_.get() + (max_tokens_ > 1 ? hidden_ : 0);
      const double gms = median_ms(stream, 1, 5, [&](cudaStream_t s) {
        mxfp4_moe_matvec(pool_->table(0), choices_d_.get(), 1, y_d_.get(), out, shape, sw, *moe_ws_, s);
      });
      t.gpu_token_s = gms * 1e-3;
    }
    OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (has_slot) {
      try {
        offload::save_throughput(file, t);
      } catch (const InputError& e) {
        std::fprintf(stderr, "warning: %s (the probe runs again next time)\n", e.what());
      }
    }
  } catch (...) {
    OSSRUN_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(stream));
    throw;
  }
  OSSRUN_CUDA_CHECK(cudaStreamDestroy(stream));
  return t;
}

}  // namespace ossrun::gpu
