#include "src/model/tensor_view.h"

#include <stdexcept>

#include "src/model/error.h"

namespace ossrun {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::describe() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "] " + std::string(dtype_name(dtype));
}

TensorView TensorView::slice_outer(int64_t i) const {
  if (shape.empty() || i < 0 || i >= shape[0])
    throw std::out_of_range(name + ": outer index " + std::to_string(i) + " outside " + describe());
  TensorView v;
  v.name = name + "[" + std::to_string(i) + "]";
  v.dtype = dtype;
  v.shape.assign(shape.begin() + 1, shape.end());
  size_t stride = bytes.size() / static_cast<size_t>(shape[0]);
  v.bytes = bytes.subspan(static_cast<size_t>(i) * stride, stride);
  return v;
}

namespace {
void require(const TensorView& t, DType want) {
  if (t.dtype != want)
    throw InputError(t.name + ": expected dtype " + std::string(dtype_name(want)) + ", found " + t.describe());
}
}  // namespace

const uint16_t* TensorView::bf16_data() const {
  require(*this, DType::BF16);
  return reinterpret_cast<const uint16_t*>(bytes.data());
}
const uint8_t* TensorView::u8_data() const {
  require(*this, DType::U8);
  return reinterpret_cast<const uint8_t*>(bytes.data());
}
const float* TensorView::f32_data() const {
  require(*this, DType::F32);
  return reinterpret_cast<const float*>(bytes.data());
}

}  // namespace ossrun
