// Few-row projections on the CPU: y = x W^T (+ b) for x with a few rows (1 to 8), the shape of every
// decode step. A decode step reads each weight once and does almost no arithmetic per byte, so its speed is the
// memory bandwidth; libtorch's gemm path for one or a few rows reaches about a third of it (bench/model/
// bench_matvec.cpp). This kernel streams each weight row once for all rows of x, accumulates in float32 and
// rounds once, for float32, bfloat16 and float16 weights, with AVX-512 (and its BF16 dot products for bfloat16) or
// AVX2 + FMA where the CPU has them.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace vlm {

// The instruction sets of the CPU decode kernels (this file's and the fused decode step's). They use the best one
// the CPU has; limit_kernel_isa lowers that (tests and benchmarks run every path on one machine) and returns the
// one now in use.
// avx512_bf16 differs from avx512 only in the few-row kernel's bfloat16 path (dot products of bfloat16 pairs).
enum class KernelIsa { portable = 0, avx2 = 1, avx512 = 2, avx512_bf16 = 3 };
KernelIsa limit_kernel_isa(KernelIsa most);
KernelIsa kernel_isa();
const char* kernel_isa_name(KernelIsa isa);
// The instruction set kernel_isa_name gives `name`, or nothing for another name (benchmarks' --isa).
std::optional<KernelIsa> kernel_isa_named(std::string_view name);

// The most rows of x the kernel takes for a weight dtype: beyond that libtorch's gemm is as fast (measured with
// bench_matvec: float32 up to 8 rows, bfloat16 (oneDNN) up to 4; float16 has no CPU gemm in libtorch at all, nor
// bfloat16 on CPUs without AVX-512, where the kernel takes up to 8).
std::int64_t few_row_linear_max_rows(torch::ScalarType weight_dtype);

// True when few_row_linear handles this call: CPU tensors, x's dtype equal to the weight's (float32, bfloat16 or
// float16), a contiguous [N, K] weight, x [..., K] with at most few_row_linear_max_rows rows, grad mode and
// autocast off.
bool few_row_linear_applies(const torch::Tensor& x, const torch::Tensor& weight);

// x [..., K] times weight [N, K]^T plus bias [N] (may be undefined): [..., N] in x's dtype.
torch::Tensor few_row_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// The same kernel on raw float32 buffers, for the fused decode step (model/decode_step.cpp): x [rows, K]
// contiguous float32; y [rows, N] float32 receives each result rounded to the weight's dtype, as few_row_linear
// followed by .to(torch::kFloat) would. The caller checks few_row_linear_into_applies (CPU, contiguous float32,
// bfloat16 or float16 weight, 1..few_row_linear_max_rows rows) and the grad/autocast state.
bool few_row_linear_into_applies(std::int64_t rows, const torch::Tensor& weight);
void few_row_linear_into(const float* x, std::int64_t rows, const torch::Tensor& weight, const torch::Tensor& bias,
                         float* y);

}  // namespace vlm
