// embedding_gather_bf16: the token embedding lookup on the GPU (gpt-oss.md §6: embedding.weight is bf16),
// widened to fp32 rows.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu {

// table: (vocab, hidden) bf16; ids: (n) int32 on the device; out: (n, hidden) fp32. An id outside
// [0, vocab) writes a row of zeros and nothing else (the host checks ids before; this keeps a bad id from
// reading outside the table). n >= 0, vocab >= 1, hidden >= 1; throws InputError otherwise. Graph-capturable.
void embedding_gather_bf16(const uint16_t* table, int64_t vocab, int hidden, const int32_t* ids, int n, float* out,
                           cudaStream_t stream);

}  // namespace ossrun::gpu
