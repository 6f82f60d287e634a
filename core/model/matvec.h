// Few-row projections on the CPU: y = x W^T (+ b) for x with a few rows (1 to 8), the shape of every
// decode step. A decode step reads each weight once and does almost no arithmetic per byte, so its speed is the
// memory bandwidth; libtorch's gemm path for one or a few rows reaches about a third of it (bench/model/
// bench_matvec.cpp). This kernel streams each weight row once for all rows of x, accumulates in float32 and
// rounds once, for float32, bfloat16 and float16 weights, with AVX-512 (and its BF16 dot products for bfloat16) or
// AVX2 + FMA where the CPU has them.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

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
// bench_matvec and bench_model: float32 up to 8 rows; bfloat16 up to 8 with AVX-512 BF16, where a batch-8 decode
// step ran 1.5-1.8x faster than through oneDNN's gemm, up to 4 on other CPUs with oneDNN's bfloat16 gemm (AVX-512
// without BF16); float16 has no CPU gemm in libtorch at all, nor bfloat16 on CPUs without AVX-512, where the kernel
// takes up to 8).
std::int64_t few_row_linear_max_rows(torch::ScalarType weight_dtype);

// The most rows for which the kernel reads a CodedBf16Weight (below): 0 on CPUs without AVX2; 4 with AVX-512 BF16,
// where more rows make a step compute-bound and the coded form would cost more than it saves (batch-8 decode 182-198
// tokens/s with it, 222-226 without); else few_row_linear_max_rows(bfloat16). Beyond it the kernel reads the weight.
std::int64_t coded_weight_max_rows();

// The most rows the kernel itself computes (its loops are unrolled for 1 to 8). few_row_linear and
// few_row_linear_into take that many whatever few_row_linear_max_rows says (tests and benchmarks run every row
// count on every CPU); the *_applies checks give the model's calls only those where the kernel is the faster path.
constexpr std::int64_t few_row_kernel_rows = 8;

// True when few_row_linear handles this call: CPU tensors, x's dtype equal to the weight's (float32, bfloat16 or
// float16), a contiguous [N, K] weight, x [..., K] with at most few_row_linear_max_rows rows, grad mode and
// autocast off.
bool few_row_linear_applies(const torch::Tensor& x, const torch::Tensor& weight);

// A bfloat16 weight in 12 bits per value instead of 16, for the decode kernel on CPUs with AVX2 or AVX-512.
//
// A decode step's time is the time to read its weights from memory, so reading fewer bytes is the one way left to
// make it faster. The high byte of a bfloat16 (its sign and 7 of its 8 exponent bits) takes few values in a model's
// weights: weights lie within a few binary orders of magnitude of their scale, so 16 high-byte values cover all but
// about one in 13,000 of transformers' N(0, 0.02) initialisation (a trained model's spread sets its own share;
// escaped_block_fraction reports it). Each block of 64 values keeps its 64 low bytes as they are and replaces its
// high bytes by 4-bit codes into the weight's table of its 16 most frequent high bytes: 96 bytes instead of 128.
// A block with a value outside the table is escaped: it stays in the stream as its 128 original bytes, so a row
// is still read front to back. The kernel rebuilds the exact bfloat16 values in registers (per 64 values one table
// shuffle and two byte interleaves with AVX-512, two and four with AVX2) and sums them in the same order as on the
// original tensor, so its results are bit for bit the same; only the bytes read differ.
//
// The coded copy is made once per weight (encode) and kept next to it: it adds 3/4 of the weight's size to memory.
// It is used only while the tensor it was made from is unchanged (same tensor, same version counter: an in-place
// update, such as merging an adapter, makes the kernel fall back to the tensor). It holds only a weak reference to
// that tensor, which keeps the tensor's object (so its address stays unique) but not its data.
class CodedBf16Weight {
 public:
  static constexpr std::int64_t block = 64;               // values per block
  static constexpr std::int64_t coded_block_bytes = 96;   // 64 low bytes, then 32 bytes of two 4-bit codes each
  static constexpr std::int64_t escaped_block_bytes = 128;  // the 64 values as they are

  // The coded form of a contiguous CPU bfloat16 [N, K] weight with K a multiple of 64, or null for any other
  // weight, and for one with more than `max_escaped` of its blocks escaped (by default a fifth: coding would not
  // pay).
  static std::shared_ptr<const CodedBf16Weight> encode(const torch::Tensor& weight, double max_escaped = 0.2);

  // True while `weight` is the tensor this was made from, unchanged since.
  bool encodes(const torch::Tensor& weight) const;
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t coded_bytes() const { return static_cast<std::int64_t>(bytes_.size()); }
  double escaped_block_fraction() const;

  // The kernel's view: where row n's blocks start, whether it has escaped blocks, and whether its block b is one.
  const std::uint8_t* row_data(std::int64_t n) const { return bytes_.data() + row_offsets_[n]; }
  bool row_has_escape(std::int64_t n) const { return row_escapes_[n] != 0; }
  bool escaped(std::int64_t n, std::int64_t b) const {
    return (escape_bits_[n * words_per_row_ + b / 64] >> (b % 64)) & 1u;
  }
  // The 16 high bytes by code, four times over (one copy per 128-bit lane of the kernel's byte shuffle).
  const std::uint8_t* table() const { return table_; }

  // The bfloat16 bits of value k of row n, decoded from the coded form (tests).
  std::uint16_t decoded(std::int64_t n, std::int64_t k) const;

 private:
  CodedBf16Weight() = default;
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> source_{
      c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>()};
  std::int64_t version_ = 0, rows_ = 0, cols_ = 0, words_per_row_ = 0;
  std::uint8_t table_[64] = {};
  std::vector<std::uint8_t> bytes_;
  std::vector<std::int64_t> row_offsets_;
  std::vector<std::uint8_t> row_escapes_;
  std::vector<std::uint64_t> escape_bits_;  // words_per_row_ words per row
};

// x [..., K] times weight [N, K]^T plus bias [N] (may be undefined): [..., N] in x's dtype. With `coded` (the
// weight's CodedBf16Weight, still encoding it) the AVX2 and AVX-512 paths read the coded form instead; the result is
// the same. The portable path ignores it.
torch::Tensor few_row_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             const CodedBf16Weight* coded = nullptr);

// The same kernel on raw float32 buffers, for the fused decode step (model/decode_step.cpp): x [rows, K]
// contiguous float32; y [rows, N] float32 receives each result rounded to the weight's dtype, as few_row_linear
// followed by .to(torch::kFloat) would. The caller checks few_row_linear_into_applies (CPU, contiguous float32,
// bfloat16 or float16 weight, 1..few_row_linear_max_rows rows) and the grad/autocast state; the call itself takes
// up to few_row_kernel_rows rows.
bool few_row_linear_into_applies(std::int64_t rows, const torch::Tensor& weight);
void few_row_linear_into(const float* x, std::int64_t rows, const torch::Tensor& weight, const torch::Tensor& bias,
                         float* y, const CodedBf16Weight* coded = nullptr);

}  // namespace vlm
