// Few-row projections on the CPU: y = x W^T (+ b) for x with a few rows (1 to 8), the shape of every
// decode step. A decode step reads each weight once and does almost no arithmetic per byte, so its speed is the
// memory bandwidth; libtorch's gemm path for one or a few rows reaches about a third of it (bench/model/
// bench_matvec.cpp). This kernel streams each weight row once for all rows of x, accumulates in float32 and
// rounds once, for float32, bfloat16 and float16 weights.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace vlm {

// The most rows of x the kernel takes for a weight dtype: beyond that libtorch's gemm is as fast (measured with
// bench_matvec: float32 up to 8 rows, bfloat16 (oneDNN) up to 4; float16 has no CPU gemm in libtorch at all).
std::int64_t few_row_linear_max_rows(torch::ScalarType weight_dtype);

// True when few_row_linear handles this call: CPU tensors, x's dtype equal to the weight's (float32, bfloat16 or
// float16), a contiguous [N, K] weight, x [..., K] with at most few_row_linear_max_rows rows, grad mode and
// autocast off.
bool few_row_linear_applies(const torch::Tensor& x, const torch::Tensor& weight);

// x [..., K] times weight [N, K]^T plus bias [N] (may be undefined): [..., N] in x's dtype.
torch::Tensor few_row_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace vlm
