// A typed, bounds-checked view of one tensor's bytes inside a mapped checkpoint file.
// Shapes are in safetensors order (row-major, outermost first). The bytes were checked against
// dtype x shape and against the file's extent when the header was parsed; a view never dangles as long as
// the Checkpoint (or SafetensorsFile) that made it is alive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "src/model/dtype.h"

namespace ossrun {

struct TensorView {
  std::string name;
  DType dtype = DType::U8;
  std::vector<int64_t> shape;        // safetensors order
  std::span<const std::byte> bytes;  // exactly numel * dtype_size bytes

  int64_t numel() const;
  int rank() const { return static_cast<int>(shape.size()); }
  // "[32, 5760, 90, 16] U8"
  std::string describe() const;

  // The outermost-index slice `i` (e.g. one expert of a fused expert tensor): shape loses its first dim.
  // Throws std::out_of_range when i is outside [0, shape[0]).
  TensorView slice_outer(int64_t i) const;

  // Typed element access for small tensors (config-sized vectors); checks the dtype.
  const uint16_t* bf16_data() const;  // raw bf16 bit patterns
  const uint8_t* u8_data() const;
  const float* f32_data() const;
};

}  // namespace ossrun
