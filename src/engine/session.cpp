#include "src/engine/session.h"

#include <algorithm>

#include "src/engine/cpu_forward.h"
#include "src/gpu/gpu_backend.h"
#include "src/model/error.h"

namespace ossrun::engine {
namespace {

// Logit rows computed per lm_head pass when every position's logits are wanted: 16 x vocab floats
// (13 MB for gpt-oss), so the all-positions path needs no buffer of prompt x vocab.
constexpr int64_t kLogitRowsPerPass = 16;

}  // namespace

Session::Session(const Checkpoint& ck, const SessionOptions& opt) {
  const ModelConfig& c = ck.config();
  if (opt.ctx < 1 || opt.ctx > c.max_position_embeddings)
    throw InputError("context " + std::to_string(opt.ctx) + " is outside [1, " + std::to_string(c.max_position_embeddings) +
                     "] (max_position_embeddings of " + ck.dir().string() + ")");
  if (opt.prefill_batch < 1) throw InputError("prefill batch must be at least 1, found " + std::to_string(opt.prefill_batch));
  const cpu::Isa isa = opt.isa ? *opt.isa : cpu::default_isa();
  if (!cpu::isa_supported(isa)) throw InputError(std::string("this CPU cannot run the ") + cpu::isa_name(isa) + " kernels");
  ctx_ = opt.ctx;
  batch_ = std::min(opt.prefill_batch, opt.ctx);
  const gpu::GpuForwardOptions gpu_opt{.ctx = ctx_,
                                       .max_batch = batch_,
                                       .threads = opt.threads,
                                       .vram_budget = opt.vram_budget,
                                       .ram_budget = opt.ram_budget,
                                       .policy = opt.policy,
                                       .expert_placement = opt.expert_placement,
                                       .trace = opt.trace,
                                       .on_progress = opt.on_progress};
  const bool use_gpu = opt.backend == Backend::Gpu || (opt.backend == Backend::Auto && !gpu::gpu_unavailable_reason(ck, gpu_opt));
  if (!use_gpu && !opt.trace.empty())
    throw InputError("a routing trace (--trace) is recorded by the GPU backend, which does not run here: " +
                     gpu::gpu_unavailable_reason(ck, gpu_opt).value_or("the CPU backend was chosen"));
  if (use_gpu)
    forward_ = gpu::make_gpu_forward(ck, gpu_opt);  // throws, naming the reason, when --backend gpu cannot run
  else
    forward_ = std::make_unique<CpuForward>(
        ck, CpuForwardOptions{.ctx = ctx_, .max_batch = batch_, .threads = opt.threads, .isa = isa});
  logits_.resize(static_cast<size_t>(std::min(kLogitRowsPerPass, batch_) * c.vocab_size));
}

Session::~Session() = default;

int64_t Session::vocab_size() const { return forward_->config().vocab_size; }
int Session::threads() const { return forward_->threads(); }
const ModelConfig& Session::config() const { return forward_->config(); }
std::string Session::describe() const { return forward_->describe(); }
SessionReport Session::report() const {
  return {.placement = describe(),
          .vram_bytes = forward_->device_bytes(),
          .ram_bytes = forward_->host_bytes() + logits_.size() * sizeof(float),
          .expert_calls = forward_->expert_calls(),
          .expert_calls_gpu = forward_->expert_calls_gpu(),
          .offload = forward_->offload_counters()};
}

void Session::check(std::span<const int32_t> ids) const {
  const int64_t V = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw InputError("token id " + std::to_string(ids[i]) + " (at index " + std::to_string(i) + ") is outside the vocabulary [0, " +
                       std::to_string(V) + ")");
  if (position_ + static_cast<int64_t>(ids.size()) > ctx_)
    throw InputError("context full: " + std::to_string(position_) + " positions used, " + std::to_string(ids.size()) +
                     " more do not fit in the context of " + std::to_string(ctx_) + " (raise --ctx)");
}

void Session::run_chunks(std::span<const int32_t> ids, const LogitsFn* on_logits, bool want_logits) {
  const int64_t V = vocab_size();
  const int64_t rows_per_pass = static_cast<int64_t>(logits_.size()) / V;
  for (size_t at = 0; at < ids.size();) {
    const int64_t n = std::min<int64_t>(batch_, static_cast<int64_t>(ids.size() - at));
    forward_->forward(ids.data() + at, n, position_);
    last_n_ = n;
    if (on_logits) {
      for (int64_t r0 = 0; r0 < n; r0 += rows_per_pass) {
        const int64_t r1 = std::min(n, r0 + rows_per_pass);
        forward_->logits(r0, r1, logits_.data());
        for (int64_t r = r0; r < r1; ++r)
          (*on_logits)(position_ + r, std::span<const float>(logits_.data() + (r - r0) * V, static_cast<size_t>(V)));
      }
    } else if (want_logits && at + static_cast<size_t>(n) == ids.size()) {
      forward_->logits(n - 1, n, logits_.data());  // only the very last row is wanted
    }
    position_ += n;
    at += static_cast<size_t>(n);
  }
}

std::span<const float> Session::prefill(std::span<const int32_t> ids) {
  if (ids.empty()) throw InputError("prefill needs at least one token id");
  check(ids);
  run_chunks(ids, nullptr, true);
  return {logits_.data(), static_cast<size_t>(vocab_size())};
}

void Session::prefill(std::span<const int32_t> ids, const LogitsFn& on_logits) {
  check(ids);
  run_chunks(ids, &on_logits, true);
}

std::span<const float> Session::decode(int32_t id) {
  check(std::span(&id, 1));
  forward_->forward(&id, 1, position_);
  last_n_ = 1;
  forward_->logits(0, 1, logits_.data());
  ++position_;
  return {logits_.data(), static_cast<size_t>(vocab_size())};
}

void Session::set_sampler(const SamplerOptions& opt) {
  validate(opt);
  sampling_ = opt;
  sampler_.reset();
  draws_ = 0;
}

int32_t Session::sample_last() {
  const uint64_t step = draws_++;
  if (std::optional<int32_t> t = forward_->sample_last(sampling_, step)) return *t;
  if (!sampler_) sampler_.emplace(vocab_size(), sampling_);
  forward_->logits(last_n_ - 1, last_n_, logits_.data());
  return sampler_->sample({logits_.data(), static_cast<size_t>(vocab_size())});
}

int32_t Session::prefill_next(std::span<const int32_t> ids) {
  if (ids.empty()) throw InputError("prefill needs at least one token id");
  check(ids);
  run_chunks(ids, nullptr, false);
  return sample_last();
}

int32_t Session::decode_next(int32_t id) {
  check(std::span(&id, 1));
  forward_->forward(&id, 1, position_);
  last_n_ = 1;
  ++position_;
  return sample_last();
}

}  // namespace ossrun::engine
