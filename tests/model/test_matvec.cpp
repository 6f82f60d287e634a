// The few-row decode kernel (model/matvec.h) against a float64 reference: every row count it takes, K with and
// without a 16- and 32-element tail (and long enough for the four-column path), with and without bias, float32 /
// bfloat16 / float16 weights, on every instruction set the CPU has (portable, AVX2, AVX-512, AVX-512 BF16); and
// when Projection routes to it.
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "model/layers.h"
#include "model/matvec.h"
#include "model/registry.h"
#include "model/simd.h"
#include "test_util.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;

namespace {
// The exact product of the (already rounded) inputs, in float64.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto y = torch::matmul(x.to(torch::kDouble), w.to(torch::kDouble).t());
  return b.defined() ? y + b.to(torch::kDouble) : y;
}

// sum_k |x[m, k] w[n, k]| + |b[n]| in float64: the scale of a float32 sum's rounding error, whatever its order.
torch::Tensor magnitude(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return reference(x.abs(), w.abs(), b.defined() ? b.abs() : b);
}

// Half a unit in the last place of `dtype` (bfloat16: 8 significant bits, float16: 11, no smaller than its
// subnormal spacing) at each value of v, in float64.
torch::Tensor half_ulp(const torch::Tensor& v, torch::ScalarType dtype) {
  const double bits = dtype == torch::kHalf ? 11 : 8, min_exponent = dtype == torch::kHalf ? -14 : -126;
  auto exponent = torch::floor(torch::log2(v.abs().clamp_min(1e-300))).clamp_min(min_exponent);
  return torch::pow(2.0, exponent - bits);
}
}  // namespace

// Every instruction set this CPU can run, best last (the kernel paths differ in how they split K).
std::vector<KernelIsa> isas_here() {
  const auto best = kernel_isa();
  std::vector<KernelIsa> isas;
  for (auto isa : {KernelIsa::portable, KernelIsa::avx2, KernelIsa::avx512, KernelIsa::avx512_bf16}) {
    if (static_cast<int>(isa) <= static_cast<int>(best)) isas.push_back(isa);
  }
  return isas;
}

// Restores the best instruction set when a test case ends, also when it fails.
struct IsaLimit {
  explicit IsaLimit(KernelIsa isa) { CHECK(limit_kernel_isa(isa) == isa); }
  ~IsaLimit() { limit_kernel_isa(KernelIsa::avx512_bf16); }
};

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined source operand inside _mm512_reduce_add_ps, as in matvec.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// simd::reduce_add16 on 16 vectors of 16 floats, and _mm512_reduce_add_ps of each.
VLM_AVX512 void reduce_both(const float* values, float* got, float* want) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) {
    acc[j] = _mm512_loadu_ps(values + 16 * j);
    want[j] = _mm512_reduce_add_ps(acc[j]);
  }
  vlm::simd::reduce_add16(acc, got);
}

// simd::exp16 / exp8 and round16 / round8 over an array (whole vectors; n a multiple of 16).
VLM_AVX512 void exp_avx512(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 16) _mm512_storeu_ps(out + i, vlm::simd::exp16(_mm512_loadu_ps(x + i)));
}
VLM_AVX2 void exp_avx2(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) _mm256_storeu_ps(out + i, vlm::simd::exp8(_mm256_loadu_ps(x + i)));
}
template <typename W>
VLM_AVX512 void round_avx512(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 16) _mm512_storeu_ps(out + i, vlm::simd::round16<W>(_mm512_loadu_ps(x + i)));
}
template <typename W>
VLM_AVX2 void round_avx2(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) _mm256_storeu_ps(out + i, vlm::simd::round8<W>(_mm256_loadu_ps(x + i)));
}
#endif

TEST_CASE("few_row_linear equals the float64 product for every row count, tail, dtype and instruction set") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (auto isa : isas_here()) {
    IsaLimit limit(isa);
    const std::string isa_name = kernel_isa_name(isa);
    CAPTURE(isa_name);
    for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
      for (std::int64_t k : {1, 15, 16, 31, 32, 33, 64, 97, 100, 896, 1030}) {
        for (std::int64_t n : {1, 7, 130}) {
          auto w = torch::randn({n, k}).to(dtype);
          auto b = torch::randn({n}).to(dtype);
          // Every row count the kernel computes, also those a model gives libtorch's gemm instead.
          for (std::int64_t rows = 1; rows <= few_row_kernel_rows; ++rows) {
            auto x = torch::randn({rows, 1, k}).to(dtype);
            CHECK(few_row_linear_applies(x, w) == (rows <= few_row_linear_max_rows(dtype)));
            for (bool with_bias : {false, true}) {
              auto y = few_row_linear(x, w, with_bias ? b : torch::Tensor());
              const std::string dtype_name = c10::toString(dtype);
              CAPTURE(dtype_name);
              CAPTURE(k);
              CAPTURE(n);
              CAPTURE(rows);
              REQUIRE(y.sizes() == torch::IntArrayRef({rows, 1, n}));
              REQUIRE((y.scalar_type() == dtype));
              auto want = reference(x, w, with_bias ? b : torch::Tensor());
              // float32 accumulation (error ~ sqrt(k) ulp of the terms), then one rounding to the output dtype.
              const double scale = std::sqrt(static_cast<double>(k)) + 1;
              const double tol = dtype == torch::kFloat ? 1e-5 * scale
                                 : dtype == torch::kHalf ? 1e-2 * scale
                                                         : 4e-2 * scale;
              CHECK((y.to(torch::kDouble) - want).abs().max().item<double>() <= tol);
              if (dtype != torch::kFloat) {
                // Bias widened and output rounded once inside the kernel: y is the float32 product rounded to
                // nearest, so within half an ulp of it. The slack covers only the summation order, which differs
                // between the kernels (bfloat16 on AVX2 reads x in pair order); a second rounding, such as a bias
                // added after the product was rounded, would miss by up to a whole ulp.
                auto wide = few_row_linear(x.to(torch::kFloat), w.to(torch::kFloat),
                                           with_bias ? b.to(torch::kFloat) : torch::Tensor())
                                .to(torch::kDouble);
                auto order_slack = 1e-6 * magnitude(x, w, with_bias ? b : torch::Tensor());
                auto miss = (y.to(torch::kDouble) - wide).abs() - half_ulp(wide, dtype) - order_slack;
                CHECK(miss.max().item<double>() <= 0);
              }
              // The raw entry of the fused decode step: float32 rows of the same values, rounded like y.
              auto xf = x.to(torch::kFloat).reshape({rows, k}).contiguous();
              auto raw = torch::empty({rows, n}, torch::kFloat);
              few_row_linear_into(xf.data_ptr<float>(), rows, w, with_bias ? b : torch::Tensor(),
                                  raw.data_ptr<float>());
              CHECK(torch::equal(raw, y.reshape({rows, n}).to(torch::kFloat)));
            }
          }
        }
      }
    }
  }
}

#if defined(__x86_64__)
TEST_CASE("simd::reduce_add16 gives each vector's _mm512_reduce_add_ps, bit for bit") {
  if (!simd::cpu_has_avx512()) {
    MESSAGE("this CPU has no AVX-512: reduce_add16 is not used here");
    return;
  }
  torch::manual_seed(5);
  // Magnitudes over many binades, so that a different order of the additions would round differently.
  auto values = (torch::randn({16, 16}) * torch::exp(4 * torch::randn({16, 16}))).contiguous();
  std::vector<float> got(16), want(16);
  reduce_both(values.data_ptr<float>(), got.data(), want.data());
  int same = 0;
  for (int j = 0; j < 16; ++j) same += std::memcmp(&got[j], &want[j], sizeof(float)) == 0;
  CHECK(same == 16);
}

namespace {
std::uint32_t bits_of(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
float from_bits(std::uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}
// Distance in ulps between two finite floats of one sign (or both zero).
std::int64_t ulps_apart(float a, float b) {
  return std::abs(static_cast<std::int64_t>(bits_of(a)) - static_cast<std::int64_t>(bits_of(b)));
}
}  // namespace

TEST_CASE("simd::exp16 and exp8 round the exact exponential once, as glibc's expf nearly always does") {
  // Arguments across the whole range, through overflow (above 88.72) and into float32's denormals (below -87.34)
  // and 0 (below -103.97), and the special values.
  std::vector<float> x;
  for (int i = 0; i < 200000; ++i) x.push_back(-110.f + 205.f * static_cast<float>(i) / 200000.f);
  for (float v : {0.f, -0.f, 1.f, -1.f, 1e-30f, -1e-30f, 88.72f, 88.73f, -87.33f, -103.9f, -104.f, 1e30f, -1e30f,
                  INFINITY, -INFINITY, NAN}) {
    x.push_back(v);
  }
  while (x.size() % 16 != 0) x.push_back(0.5f);
  std::vector<float> got(x.size());
  std::vector<std::pair<std::string, void (*)(const float*, float*, std::size_t)>> paths;
  if (simd::cpu_has_avx512()) paths.emplace_back("avx512", exp_avx512);
  if (simd::cpu_has_avx2_fma()) paths.emplace_back("avx2", exp_avx2);
  if (paths.empty()) MESSAGE("this CPU has neither AVX-512 nor AVX2: exp16 and exp8 are not used here");
  for (const auto& [name, exp_path] : paths) {
    CAPTURE(name);
    exp_path(x.data(), got.data(), x.size());
    std::size_t same_as_rounded_exact = 0, same_as_libm = 0;
    std::int64_t worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float exact = static_cast<float>(std::exp(static_cast<double>(x[i])));  // float64, rounded once
      const float libm = std::exp(x[i]);
      CAPTURE(x[i]);
      if (std::isnan(x[i])) {
        CHECK(std::isnan(got[i]));
        continue;
      }
      REQUIRE_FALSE(std::isnan(got[i]));
      REQUIRE(std::signbit(got[i]) == false);
      same_as_rounded_exact += bits_of(got[i]) == bits_of(exact);
      same_as_libm += bits_of(got[i]) == bits_of(libm);
      if (std::isinf(exact) || std::isinf(got[i])) {
        CHECK(got[i] == exact);
      } else {
        worst = std::max(worst, ulps_apart(got[i], exact));
      }
    }
    const double n = static_cast<double>(x.size() - 1);  // less the NaN
    MESSAGE(name << ": equal to the rounded float64 exponential " << 100 * same_as_rounded_exact / n
                 << " %, to expf " << 100 * same_as_libm / n << " %, at most " << worst << " ulp apart");
    CHECK(worst <= 1);
    CHECK(same_as_rounded_exact >= 0.9999 * n);
    CHECK(same_as_libm >= 0.999 * n);
  }
}

TEST_CASE("simd::round16 and round8 round to bfloat16 and float16 as c10's conversions do, bit for bit") {
  // Random bit patterns (every exponent, NaNs and infinities among them), the halfway cases and the edges.
  std::vector<float> x;
  std::uint32_t state = 12345;
  for (int i = 0; i < 100000; ++i) {
    state = state * 1664525u + 1013904223u;
    x.push_back(from_bits(state));
  }
  for (std::uint32_t b : {0x3F808000u, 0x3F818000u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x477FF000u, 0x477FEFFFu, 0x33000000u,
                          0x00000001u, 0x80000000u, 0x7F800000u, 0x7FC00000u, 0x7F800001u}) {
    x.push_back(from_bits(b));
  }
  while (x.size() % 16 != 0) x.push_back(1.f);
  std::vector<float> got(x.size());
  auto check = [&](const std::string& name, auto round_path, auto round_scalar) {
    CAPTURE(name);
    round_path(x.data(), got.data(), x.size());
    std::size_t same = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float want = round_scalar(x[i]);
      same += std::isnan(want) ? std::isnan(got[i]) : bits_of(got[i]) == bits_of(want);
    }
    CHECK(same == x.size());
  };
  auto bf16 = [](float v) { return simd::round_to<c10::BFloat16>(v); };
  auto fp16 = [](float v) { return simd::round_to<c10::Half>(v); };
  if (simd::cpu_has_avx512()) {
    check("avx512 bfloat16", round_avx512<c10::BFloat16>, bf16);
    check("avx512 float16", round_avx512<c10::Half>, fp16);
  }
  if (simd::cpu_has_avx2_fma()) {
    check("avx2 bfloat16", round_avx2<c10::BFloat16>, bf16);
    check("avx2 float16", round_avx2<c10::Half>, fp16);
  }
}
#endif

TEST_CASE("few_row_linear_into keeps float32 rows that are not bfloat16 values as they are") {
  // Pairs (1 + 3/1024, 1) against weights (1, -1): the exact sum is 3/1024 per pair, 3 over 1024 pairs. Rounding x
  // to bfloat16 first (what the AVX-512 BF16 path would do to any x) would give 1 + 3/1024 -> 1 and a sum of 0.
  const std::int64_t K = 2048;
  auto x = torch::ones({1, K});
  x.index_put_({0, torch::indexing::Slice(0, K, 2)}, 1.0f + 3.0f / 1024.0f);
  auto w = torch::ones({3, K});
  w.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, K, 2)}, -1.0f);
  auto wb = w.to(torch::kBFloat16);
  for (auto isa : isas_here()) {
    IsaLimit limit(isa);
    const std::string isa_name = kernel_isa_name(isa);
    CAPTURE(isa_name);
    auto y = torch::empty({1, 3}, torch::kFloat);
    few_row_linear_into(x.data_ptr<float>(), 1, wb, torch::Tensor(), y.data_ptr<float>());
    CHECK(torch::equal(y, torch::full({1, 3}, 3.0f)));
    // Rows of bfloat16 values give the same result on every path (here exactly 0).
    auto xb = x.to(torch::kBFloat16).to(torch::kFloat);
    few_row_linear_into(xb.data_ptr<float>(), 1, wb, torch::Tensor(), y.data_ptr<float>());
    CHECK(torch::equal(y, torch::zeros({1, 3})));
  }
}

TEST_CASE("few_row_linear applies only to inference-shaped CPU calls") {
  auto w = torch::randn({8, 32});
  auto x = torch::randn({1, 32});
  {
    torch::NoGradGuard no_grad;
    CHECK(few_row_linear_applies(x, w));
    CHECK(few_row_linear_applies(torch::randn({8, 32}), w));
    CHECK_FALSE(few_row_linear_applies(torch::randn({9, 32}), w));                          // gemm is as fast
    // 4 on AVX-512 CPUs without BF16 (oneDNN's gemm), else 8
    const auto bf16_rows = few_row_linear_max_rows(torch::kBFloat16);
    CHECK((bf16_rows == 4 || bf16_rows == 8));
    CHECK(few_row_linear_applies(torch::randn({bf16_rows, 32}).to(torch::kBFloat16), w.to(torch::kBFloat16)));
    CHECK_FALSE(few_row_linear_applies(torch::randn({bf16_rows + 1, 32}).to(torch::kBFloat16), w.to(torch::kBFloat16)));
    // The kernel itself computes up to 8 rows whatever the policy above; a 9th is an error.
    CHECK(few_row_linear(torch::randn({8, 32}).to(torch::kBFloat16), w.to(torch::kBFloat16), torch::Tensor()).size(0) == 8);
    CHECK_THROWS_AS(few_row_linear(torch::randn({9, 32}), w, torch::Tensor()), vlm::Error);
    auto y9 = torch::empty({9, 8});
    CHECK_THROWS_AS(few_row_linear_into(torch::randn({9, 32}).data_ptr<float>(), 9, w, torch::Tensor(), y9.data_ptr<float>()),
                    vlm::Error);
    CHECK_THROWS_AS(few_row_linear_into(x.data_ptr<float>(), 1, w.to(torch::kDouble), torch::Tensor(), y9.data_ptr<float>()),
                    vlm::Error);
    CHECK_FALSE(few_row_linear_applies(x.to(torch::kBFloat16), w));                         // mixed dtypes
    CHECK_FALSE(few_row_linear_applies(x.to(torch::kDouble), w.to(torch::kDouble)));        // no kernel
    CHECK_FALSE(few_row_linear_applies(x, w.t().contiguous().t()));                         // strided weight
    CHECK_FALSE(few_row_linear_applies(torch::randn({1, 31}), w));                          // wrong K
    CHECK_THROWS_AS(few_row_linear(torch::randn({1, 31}), w, torch::Tensor()), vlm::Error);
  }
  CHECK_FALSE(few_row_linear_applies(x, w));  // grad mode on: autograd needs torch::linear
}

TEST_CASE("Projection gives the same decode-step output through the kernel as through linear") {
  torch::manual_seed(5);
  Projection p(64, 40, true);
  p->weight.copy_(torch::randn({40, 64}));
  p->bias.copy_(torch::randn({40}));
  auto x = torch::randn({2, 1, 64});
  torch::Tensor through_linear;
  {
    torch::NoGradGuard no_grad;
    through_linear = torch::linear(x, p->weight, p->bias);
    auto through_kernel = p(x);
    CHECK(torch::allclose(through_kernel, through_linear, 1e-5, 1e-5));
  }
  // With grad mode on the projection keeps linear (autograd), and the numbers agree.
  CHECK(torch::allclose(p(x).detach(), through_linear, 1e-5, 1e-5));
}

// ---------------------------------------------------------------------------------------------------------------
// CodedBf16Weight: the 12-bit form of a bfloat16 weight that the decode kernel reads on AVX2 and AVX-512.

namespace {
// A bfloat16 [n, k] weight whose values take 16 high bytes (sign and top exponent bits: 0x38-0x3F and 0xB8-0xBF,
// magnitudes from 2^-15 to 2) with random low bytes, so the table is those 16; and values outside them planted in
// some rows: zeros of both signs, a subnormal, a large value, an infinity. Row 1 gets one in every block; rows 3
// and n - 1 in one block each.
torch::Tensor weight_with_outliers(std::int64_t n, std::int64_t k) {
  auto high = torch::randint(0, 16, {n, k}, torch::kInt);
  high = torch::where(high < 8, high + 0x38, high - 8 + 0xB8);
  auto low = torch::randint(0, 256, {n, k}, torch::kInt);
  auto w = (high * 256 + low).to(torch::kShort).view(torch::kBFloat16).contiguous();
  auto plant = [&](std::int64_t row, std::int64_t col, float value) {
    if (row < n && col < k) w.index_put_({row, col}, value);
  };
  for (std::int64_t b = 0; b * 64 < k; ++b) plant(1, b * 64 + (b * 13) % 64, b % 2 ? 1e4f : -3e-39f);
  plant(3, k - 1, -0.0f);
  plant(3, k - 2, 0.0f);
  plant(n - 1, k / 2, std::numeric_limits<float>::infinity());
  return w;
}

std::uint16_t bits_at(const torch::Tensor& w, std::int64_t n, std::int64_t k) {
  std::uint16_t bits;
  std::memcpy(&bits, w.data_ptr<c10::BFloat16>() + n * w.size(1) + k, sizeof bits);
  return bits;
}
}  // namespace

TEST_CASE("CodedBf16Weight holds every value of the weight, escaped blocks included") {
  torch::manual_seed(11);
  for (std::int64_t k : {64, 192, 896}) {
    CAPTURE(k);
    auto w = weight_with_outliers(9, k);
    auto coded = CodedBf16Weight::encode(w, /*max_escaped=*/1.0);
    REQUIRE(coded);
    CHECK(coded->rows() == 9);
    CHECK(coded->cols() == k);
    CHECK(coded->encodes(w));
    for (std::int64_t n = 0; n < 9; ++n) {
      for (std::int64_t c = 0; c < k; ++c) {
        if (coded->decoded(n, c) != bits_at(w, n, c)) {
          CAPTURE(n);
          CAPTURE(c);
          FAIL("decoded value differs");
        }
      }
    }
    // Row 1 has an outlier in every block, rows 3 and 8 in one block each.
    const std::int64_t blocks = k / 64;
    for (std::int64_t b = 0; b < blocks; ++b) CHECK(coded->escaped(1, b));
    CHECK(coded->row_has_escape(1));
    CHECK(coded->row_has_escape(3));
    CHECK(coded->row_has_escape(8));
    CHECK_FALSE(coded->row_has_escape(0));
    CHECK(coded->escaped(3, (k - 1) / 64));
    CHECK(coded->escaped(8, (k / 2) / 64));
    // Coded blocks take 96 bytes and escaped ones 128.
    std::int64_t escaped = 0;
    for (std::int64_t n = 0; n < 9; ++n) {
      for (std::int64_t b = 0; b < blocks; ++b) escaped += coded->escaped(n, b);
    }
    CHECK(coded->coded_bytes() == 9 * blocks * 96 + escaped * 32);
    CHECK(coded->escaped_block_fraction() == doctest::Approx(static_cast<double>(escaped) / (9.0 * blocks)));
  }
}

TEST_CASE("few_row_linear reads the coded form to the same bits as the weight itself, at every instruction set") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(12);
  for (auto isa : isas_here()) {
    IsaLimit limit(isa);
    const std::string isa_name = kernel_isa_name(isa);
    CAPTURE(isa_name);
    // 64 (one block), 192 (odd block count: the last block alone), 896 and 4864 (the issue model's widths).
    for (std::int64_t k : {64, 192, 896, 4864}) {
      for (std::int64_t n : {1, 9, 130}) {
        auto w = weight_with_outliers(n, k);
        auto b = torch::randn({n}).to(torch::kBFloat16);
        auto coded = CodedBf16Weight::encode(w, /*max_escaped=*/1.0);
        REQUIRE(coded);
        for (std::int64_t rows = 1; rows <= few_row_kernel_rows; ++rows) {
          auto x = torch::randn({rows, 1, k}).to(torch::kBFloat16);
          for (bool with_bias : {false, true}) {
            CAPTURE(k);
            CAPTURE(n);
            CAPTURE(rows);
            CAPTURE(with_bias);
            const auto bias = with_bias ? b : torch::Tensor();
            auto plain = few_row_linear(x, w, bias);
            auto through_coded = few_row_linear(x, w, bias, coded.get());
            CHECK(torch::equal(plain, through_coded));
            auto xf = x.to(torch::kFloat).reshape({rows, k}).contiguous();
            auto raw = torch::empty({rows, n}, torch::kFloat);
            few_row_linear_into(xf.data_ptr<float>(), rows, w, bias, raw.data_ptr<float>(), coded.get());
            CHECK(torch::equal(raw, plain.reshape({rows, n}).to(torch::kFloat)));
          }
        }
      }
    }
  }
}

TEST_CASE("The AVX2 and AVX-512 paths read the coded copy up to coded_weight_max_rows, the portable path never") {
  // The weight's memory is changed behind its version counter's back (every sign flipped), so the copy still
  // counts as current: a result from the copy keeps the old values' sums, one from the weight is negated.
  torch::NoGradGuard no_grad;
  torch::manual_seed(16);
  for (auto isa : isas_here()) {
    IsaLimit limit(isa);
    const std::string isa_name = kernel_isa_name(isa);
    CAPTURE(isa_name);
    const bool copies_read = static_cast<int>(isa) >= static_cast<int>(KernelIsa::avx2);
    CHECK((coded_weight_max_rows() > 0) == copies_read);
    for (std::int64_t rows : {std::int64_t{1}, coded_weight_max_rows(), few_row_kernel_rows}) {
      if (rows < 1) continue;
      const bool reads_copy = copies_read && rows <= coded_weight_max_rows();
      for (std::int64_t k : {192, 4864}) {
        CAPTURE(rows);
        CAPTURE(k);
        auto w = weight_with_outliers(33, k);
        auto coded = CodedBf16Weight::encode(w, /*max_escaped=*/1.0);
        REQUIRE(coded);
        auto x = torch::randn({rows, 1, k}).to(torch::kBFloat16);
        // float32 rows that are not bfloat16 values: the AVX-512 BF16 CPU takes its widening path for them.
        auto x_wide = torch::randn({rows, k});
        auto into = [&](const CodedBf16Weight* copy) {
          auto y = torch::empty({rows, 33}, torch::kFloat);
          few_row_linear_into(x_wide.data_ptr<float>(), rows, w, torch::Tensor(), y.data_ptr<float>(), copy);
          return y;
        };
        const auto before = few_row_linear(x, w, torch::Tensor());
        const auto before_wide = into(nullptr);
        auto* bits = reinterpret_cast<std::uint16_t*>(w.data_ptr<c10::BFloat16>());
        for (std::int64_t i = 0; i < w.numel(); ++i) bits[i] ^= 0x8000;
        REQUIRE(coded->encodes(w));
        CHECK(torch::equal(few_row_linear(x, w, torch::Tensor()), -before));
        CHECK(torch::equal(few_row_linear(x, w, torch::Tensor(), coded.get()), reads_copy ? before : -before));
        CHECK(torch::equal(into(coded.get()), reads_copy ? before_wide : -before_wide));
      }
    }
  }
}

TEST_CASE("few_row_linear's bfloat16 sums on AVX-512 BF16 stay within float32 accumulation of the exact product") {
  // The coded and plain rows share one summation order (four accumulators over block pairs); pin it against the
  // float64 product so a change to that order cannot make both wrong together.
  if (kernel_isa() != KernelIsa::avx512_bf16) return;
  torch::NoGradGuard no_grad;
  torch::manual_seed(13);
  for (std::int64_t k : {64, 192, 4864}) {
    auto w = weight_with_outliers(40, k);
    w.index_put_({39, k / 2}, 1.0f);  // finite: the tolerance below is relative to the terms' magnitude
    auto coded = CodedBf16Weight::encode(w, /*max_escaped=*/1.0);
    REQUIRE(coded);
    auto x = torch::randn({2, 1, k}).to(torch::kBFloat16);
    auto y = few_row_linear(x, w, torch::Tensor(), coded.get()).to(torch::kDouble);
    auto want = reference(x, w, torch::Tensor());
    auto miss = (y - want).abs() - half_ulp(want, torch::kBFloat16) - 1e-6 * magnitude(x, w, torch::Tensor());
    CHECK(miss.max().item<double>() <= 0);
  }
}

TEST_CASE("CodedBf16Weight::encode takes only bfloat16 [N, K] CPU weights with K a multiple of 64 that code well") {
  torch::manual_seed(14);
  auto w = (torch::randn({8, 128}) * 0.02).to(torch::kBFloat16);
  CHECK(CodedBf16Weight::encode(w));
  CHECK_FALSE(CodedBf16Weight::encode(w.to(torch::kFloat)));
  CHECK_FALSE(CodedBf16Weight::encode(w.to(torch::kHalf)));
  CHECK_FALSE(CodedBf16Weight::encode(w.narrow(1, 0, 96).contiguous()));       // K not a multiple of 64
  CHECK_FALSE(CodedBf16Weight::encode(w.t().contiguous().t()));                // not contiguous
  CHECK_FALSE(CodedBf16Weight::encode(w.reshape({8, 2, 64})));                 // not 2-D
  CHECK_FALSE(CodedBf16Weight::encode(torch::Tensor()));
  // Values spread over far more than 16 high bytes: most blocks would be escaped, so coding would not pay; unless
  // the caller allows it.
  auto spread = torch::nan_to_num(torch::randint(-32000, 32000, {8, 128}, torch::kShort).view(torch::kBFloat16), 0, 0, 0);
  CHECK_FALSE(CodedBf16Weight::encode(spread));
  auto forced = CodedBf16Weight::encode(spread, /*max_escaped=*/1.0);
  REQUIRE(forced);
  CHECK(forced->escaped_block_fraction() > 0.9);
  auto x = torch::randn({1, 128}).to(torch::kBFloat16);
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(few_row_linear(x, spread, torch::Tensor(), forced.get()),
                     few_row_linear(x, spread, torch::Tensor())));
}

TEST_CASE("A coded copy stops being used once its weight changes") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(15);
  Projection p(128, 32, false);
  p->weight = (torch::randn({32, 128}) * 0.02).to(torch::kBFloat16);
  p->set_coded_weight(CodedBf16Weight::encode(p->weight));
  REQUIRE(p->coded_weight() != nullptr);
  auto x = torch::randn({1, 1, 128}).to(torch::kBFloat16);
  CHECK(torch::equal(p(x), few_row_linear(x, p->weight, torch::Tensor())));
  // In place (as merging an adapter does): the version counter moves and the copy is no longer used.
  p->weight.add_(0.5);
  CHECK(p->coded_weight() == nullptr);
  CHECK(torch::equal(p(x), few_row_linear(x, p->weight, torch::Tensor())));
  // A new tensor in its place: likewise.
  p->set_coded_weight(CodedBf16Weight::encode(p->weight));
  REQUIRE(p->coded_weight() != nullptr);
  p->weight = p->weight.clone();
  CHECK(p->coded_weight() == nullptr);
  // The copy holds no strong reference to its weight: replacing the weight frees the old one's data.
  auto weight = (torch::randn({32, 128}) * 0.02).to(torch::kBFloat16);
  auto of_weight = CodedBf16Weight::encode(weight);
  REQUIRE(of_weight);
  CHECK(weight.use_count() == 1);
  CHECK(of_weight->encodes(weight));
  weight = torch::Tensor();
  CHECK_FALSE(of_weight->encodes(torch::zeros({32, 128}, torch::kBFloat16)));
  // run() checks again: a stale copy passed by hand is ignored as well.
  auto stale = CodedBf16Weight::encode((torch::randn({32, 128}) * 0.02).to(torch::kBFloat16));
  CHECK(torch::equal(few_row_linear(x, p->weight, torch::Tensor(), stale.get()),
                     few_row_linear(x, p->weight, torch::Tensor())));
}

TEST_CASE("Coded weights serve decode steps of as many rows as the kernel reads them for") {
  const auto most = coded_weight_max_rows();
  REQUIRE(most >= 1);
  CHECK(most <= few_row_linear_max_rows(torch::kBFloat16));
  CHECK(most == (kernel_isa() == KernelIsa::avx512_bf16 ? 4 : few_row_linear_max_rows(torch::kBFloat16)));
  CHECK(coded_weights_serve(1));
  CHECK(coded_weights_serve(most));
  CHECK_FALSE(coded_weights_serve(most + 1));  // a batch of more rows goes through libtorch's gemm
  // VLMRT_CODED_WEIGHTS=0 turns them off; any other value, or none, leaves them on.
  const char* before = std::getenv("VLMRT_CODED_WEIGHTS");
  const std::string saved = before ? before : "";
  setenv("VLMRT_CODED_WEIGHTS", "0", 1);
  CHECK_FALSE(coded_weights_allowed_by_environment());
  setenv("VLMRT_CODED_WEIGHTS", "1", 1);
  CHECK(coded_weights_allowed_by_environment());
  unsetenv("VLMRT_CODED_WEIGHTS");
  CHECK(coded_weights_allowed_by_environment());
  if (before) setenv("VLMRT_CODED_WEIGHTS", saved.c_str(), 1);
}
