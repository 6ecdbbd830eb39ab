// rope_apply_f32: rotary position embedding of q and k in place on the GPU, the twin of src/engine/rope.h
// apply_rope (half-split pairing: x1 = x[:d/2], x2 = x[d/2:]; x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu {

// q: (n_tokens, n_heads * head_dim) fp32, k: (n_tokens, n_kv_heads * head_dim) fp32, both rotated in place.
// cos_table, sin_table: (table_rows, head_dim / 2) fp32, row p from src/engine/rope.h rope_cos_sin for
// position p (the YaRN concentration already in them). positions: (n_tokens) int32 on the device.
// table_rows: when >= 0, a position outside [0, table_rows) writes NaN over that token's q and k (the error
// reaches the logits instead of reading outside the table); -1 trusts the positions. head_dim even and
// >= 2; n_tokens, n_heads, n_kv_heads >= 0. Throws InputError for other sizes. Graph-capturable.
void rope_apply_f32(float* q, float* k, int n_tokens, int n_heads, int n_kv_heads, int head_dim,
                    const float* cos_table, const float* sin_table, const int32_t* positions, cudaStream_t stream,
                    int table_rows = -1);

}  // namespace ossrun::gpu
