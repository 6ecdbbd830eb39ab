// oneDNN matmul primitives for prefill, cached by shape.
#include "cpu_kernels/onednn_matmul.h"

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"

namespace ossrun::cpu {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct ShapeKey {
  int64_t M, N, K;
  bool has_bias;
  auto operator<=>(const ShapeKey&) const = default;
};

void check_shape(int64_t M, int64_t N, int64_t K) {
  if (M < 0 || N <= 0 || K <= 0) {
    throw std::invalid_argument("matmul shape must be M >= 0, N > 0, K > 0; got M=" + std::to_string(M) +
                                " N=" + std::to_string(N) + " K=" + std::to_string(K));
  }
}

// Wraps a oneDNN call so that its error names what was being done.
template <class F>
decltype(auto) onednn_call(const char* what, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN failed to ") + what + ": " + e.what());
  }
}

}  // namespace

struct OnednnMatmul::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<ShapeKey, dnnl::matmul> matmuls;
  std::map<std::pair<int64_t, int64_t>, dnnl::reorder> to_bf16;  // f32 -> bf16 of an (M, K) X
  dnnl::memory x_bf16;                                            // where an f32 X is rounded to, grown as needed
  int64_t x_bf16_elements = 0;

  const dnnl::matmul& matmul(const ShapeKey& key) {
    if (auto it = matmuls.find(key); it != matmuls.end()) return it->second;
    if (matmuls.size() >= kMaxCachedShapes) matmuls.clear();
    return onednn_call("create a bf16 matmul", [&]() -> const dnnl::matmul& {
      const dnnl::memory::desc src({key.M, key.K}, dt::bf16, tag::ab);
      const dnnl::memory::desc weights({key.K, key.N}, dt::bf16, tag::ba);  // W (N, K) row-major is Wᵀ (K, N)
      const dnnl::memory::desc dst({key.M, key.N}, dt::f32, tag::ab);
      const dnnl::matmul::desc desc = key.has_bias ? dnnl::matmul::desc(src, weights,
                                                                        dnnl::memory::desc({1, key.N}, dt::bf16, tag::ab), dst)
                                                   : dnnl::matmul::desc(src, weights, dst);
      return matmuls.emplace(key, dnnl::matmul(dnnl::matmul::primitive_desc(desc, engine))).first->second;
    });
  }

  // Rounds X (M, K) f32 to bf16 into x_bf16 and returns it.
  dnnl::memory round_to_bf16(const float* X, int64_t M, int64_t K) {
    return onednn_call("round the activations to bf16", [&] {
      if (M * K > x_bf16_elements) {
        x_bf16 = dnnl::memory(dnnl::memory::desc({M * K}, dt::bf16, tag::a), engine);
        x_bf16_elements = M * K;
      }
      const dnnl::memory::desc f32_md({M, K}, dt::f32, tag::ab), bf16_md({M, K}, dt::bf16, tag::ab);
      dnnl::memory src(f32_md, engine, const_cast<float*>(X));
      dnnl::memory dst(bf16_md, engine, x_bf16.get_data_handle());
      auto it = to_bf16.find({M, K});
      if (it == to_bf16.end()) {
        if (to_bf16.size() >= kMaxCachedShapes) to_bf16.clear();
        it = to_bf16.emplace(std::pair{M, K}, dnnl::reorder(src, dst)).first;
      }
      it->second.execute(stream, src, dst);
      return dst;
    });
  }

  void run(const dnnl::memory& src, const uint16_t* W, const uint16_t* bias, float* Y, int64_t M, int64_t N,
           int64_t K) {
    const ShapeKey key{M, N, K, bias != nullptr};
    const dnnl::matmul& prim = matmul(key);
    onednn_call("run a bf16 matmul", [&] {
      dnnl::memory weights({{K, N}, dt::bf16, tag::ba}, engine, const_cast<uint16_t*>(W));
      dnnl::memory dst({{M, N}, dt::f32, tag::ab}, engine, Y);
      std::unordered_map<int, dnnl::memory> args = {
          {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
      if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory({{1, N}, dt::bf16, tag::ab}, engine, const_cast<uint16_t*>(bias)));
      prim.execute(stream, args);
      stream.wait();
    });
  }
};

OnednnMatmul::OnednnMatmul() : impl_(std::make_unique<Impl>()) {}
OnednnMatmul::~OnednnMatmul() = default;

void OnednnMatmul::matmul_f32_bf16(const float* X, const uint16_t* W, const uint16_t* bias, float* Y, int64_t M,
                                   int64_t N, int64_t K) {
  check_shape(M, N, K);
  if (M == 0) return;
  const dnnl::memory src = impl_->round_to_bf16(X, M, K);
  impl_->run(src, W, bias, Y, M, N, K);
}

void OnednnMatmul::matmul_bf16_bf16(const uint16_t* X, const uint16_t* W, const uint16_t* bias, float* Y, int64_t M,
                                    int64_t N, int64_t K) {
  check_shape(M, N, K);
  if (M == 0) return;
  const dnnl::memory src({{M, K}, dt::bf16, tag::ab}, impl_->engine, const_cast<uint16_t*>(X));
  impl_->run(src, W, bias, Y, M, N, K);
}

size_t OnednnMatmul::cached_shapes() const { return impl_->matmuls.size(); }

std::string OnednnMatmul::isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "unknown";
  }
}

}  // namespace ossrun::cpu
