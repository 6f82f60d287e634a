// Internal to the core: the element conversions and the AVX-512 and AVX2 helpers shared by the CPU decode kernels
// (model/matvec.cpp, model/decode_step.cpp, generate/greedy_pick.cpp). Every kernel that uses them checks
// cpu_has_avx512() / cpu_has_avx2_fma() at run time and keeps a portable path; the helpers carry their own target
// attributes, so the files need no -m flags.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vlm::simd {

// The most capable instruction set the kernels may use (KernelIsa in matvec.h: 0 portable, 1 AVX2, 2 AVX-512,
// 3 AVX-512 with BF16 dot products); lowered by tests to run every path on one machine.
inline std::atomic<int> isa_limit{3};

inline float widen(float v) { return v; }
inline float widen(c10::BFloat16 v) { return static_cast<float>(v); }
inline float widen(c10::Half v) { return static_cast<float>(v); }

// `v` rounded to W (to nearest even, as Tensor::to) and widened back: what a libtorch op computing in float32 and
// storing W leaves in its output.
template <typename W>
inline float round_to(float v) {
  return widen(W(v));
}
template <>
inline float round_to<float>(float v) {
  return v;
}

#if defined(__x86_64__)
#define VLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

inline bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has && isa_limit.load(std::memory_order_relaxed) >= 2;
}

// AVX-512 BF16 (Intel Cooper Lake and Sapphire Rapids on, AMD Zen 4 on): vdpbf16ps multiplies bfloat16 pairs
// exactly and adds them to float32 lanes, rounding each addition to nearest even (denormals flushed to zero).
#define VLM_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

inline bool cpu_has_avx512_bf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has && cpu_has_avx512() && isa_limit.load(std::memory_order_relaxed) >= 3;
}

// Lanes of p selected by mask, widened to float32 (the others zero).
VLM_AVX512 inline __m512 load16(const float* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
VLM_AVX512 inline __m512 load16(const c10::BFloat16* p, __mmask16 mask) {
  // bfloat16 is the high half of a float32: widen to 32 bits and shift into place.
  const __m256i raw = _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}
VLM_AVX512 inline __m512 load16(const c10::Half* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

// exp of 16 (exp16) or 8 (exp8) float32 values, each computed in float64 and rounded once to float32: within half
// an ulp plus a few thousandths of the exact value, so equal to glibc's expf (itself within 0.502 ulp) except where
// the exact value lies almost halfway between two floats. Overflow gives inf, underflow 0 or the rounded denormal,
// NaN stays NaN. x = n ln2 + r with |r| <= ln2 / 2, e^r by its Taylor series to r^11 (remainder below 1e-13
// relative), times 2^n. The argument is first clamped where float32's result is already inf (x > 88.73) or 0
// (x < -103.98), so float64 never overflows.
namespace exp_detail {
inline constexpr double log2e = 1.4426950408889634, ln2 = 0.6931471805599453;
inline constexpr float lowest = -150.f, highest = 100.f;
// 1/11!, 1/10!, ..., 1/1!, 1/0!: Horner's order.
inline constexpr double taylor[] = {1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0,
                                    1.0 / 720.0,      1.0 / 120.0,     1.0 / 24.0,      1.0 / 6.0,     0.5,
                                    1.0,              1.0};
}  // namespace exp_detail

VLM_AVX512 inline __m512d exp8d(__m512d x) {
  using namespace exp_detail;
  const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(log2e)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(ln2), x);
  __m512d p = _mm512_set1_pd(taylor[0]);
  for (std::size_t i = 1; i < std::size(taylor); ++i) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(taylor[i]));
  return _mm512_scalef_pd(p, n);
}
VLM_AVX512 inline __m512 exp16(__m512 x) {
  const __m512 clamped = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(exp_detail::lowest)),
                                       _mm512_set1_ps(exp_detail::highest));
  const __m256 low = _mm512_cvtpd_ps(exp8d(_mm512_cvtps_pd(_mm512_castps512_ps256(clamped))));
  const __m256 high = _mm512_cvtpd_ps(
      exp8d(_mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(clamped), 1)))));
  const __m512 e = _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(low)), _mm256_castps_pd(high), 1));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), e, x);
}

// round_to<W> on 16 lanes.
template <typename W>
VLM_AVX512 inline __m512 round16(__m512 v) {
  if constexpr (std::is_same_v<W, c10::BFloat16>) {
    // c10::BFloat16(float): to nearest even on the upper 16 bits; NaN stays NaN.
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_and_si512(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))),
                                             _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_castsi512_ps(rounded), v);
  } else if constexpr (std::is_same_v<W, c10::Half>) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    return v;
  }
}

// The mask of the first min(left, 16) lanes.
inline __mmask16 first_lanes(std::int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

// The sums of the 16 lanes of each of acc[0..15] into out[0..15], by the same additions as _mm512_reduce_add_ps
// (GCC's: the upper 256 bits onto the lower, then the upper 128 onto the lower, then lanes 2, 3 onto 0, 1, then
// lane 1 onto 0), so to the same bits, but four rounds of shuffles and adds for all sixteen in place of sixteen
// serial reductions (the decode step's attention scores, 16 keys at a time).
VLM_AVX512 inline void reduce_add16(const __m512* acc, float* out) {
  __m512 halves[8], quarters[4], pairs[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {  // lanes 0-7: acc[2i]'s upper + lower 256 bits; lanes 8-15: acc[2i + 1]'s
    const __m512 x = acc[2 * i], y = acc[2 * i + 1];
    halves[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // 128-bit lane c: acc[4i + c]'s upper + lower 128 bits of those
    const __m512 x = halves[2 * i], y = halves[2 * i + 1];
    quarters[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                                _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {  // in 128-bit lane c: lanes 0, 1 + 2, 3 of quarters[2i][c], then of [2i + 1][c]
    const __m512 x = quarters[2 * i], y = quarters[2 * i + 1];
    pairs[i] = _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Lane 4c + i: lane 0 + lane 1 of quarters[i]'s 128-bit lane c, the sum of acc[4i + c]; transposed into place.
  const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(pairs[0], pairs[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_ps(pairs[0], pairs[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i transpose = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(transpose, sums));
}

// AVX2 with FMA (x86-64 CPUs without AVX-512: AMD Zen 1-3, Intel client parts). Every such CPU also has F16C,
// which the float16 load uses.
#define VLM_AVX2 __attribute__((target("avx2,fma,f16c")))

inline bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has && isa_limit.load(std::memory_order_relaxed) >= 1;
}

// Eight consecutive elements widened to float32.
VLM_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
VLM_AVX2 inline __m256 load8(const c10::BFloat16* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}
VLM_AVX2 inline __m256 load8(const c10::Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// exp8 and round8: exp16 and round16 on 8 lanes.
VLM_AVX2 inline __m256d exp4d(__m256d x) {
  using namespace exp_detail;
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(log2e)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(ln2), x);
  __m256d p = _mm256_set1_pd(taylor[0]);
  for (std::size_t i = 1; i < std::size(taylor); ++i) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(taylor[i]));
  // 2^n from its exponent bits; |n| <= 217 after the clamp, inside float64's normal range.
  const __m256i biased = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)), _mm256_set1_epi64x(1023));
  return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_slli_epi64(biased, 52)));
}
VLM_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(exp_detail::lowest)),
                                       _mm256_set1_ps(exp_detail::highest));
  const __m128 low = _mm256_cvtpd_ps(exp4d(_mm256_cvtps_pd(_mm256_castps256_ps128(clamped))));
  const __m128 high = _mm256_cvtpd_ps(exp4d(_mm256_cvtps_pd(_mm256_extractf128_ps(clamped, 1))));
  return _mm256_blendv_ps(_mm256_set_m128(high, low), x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
template <typename W>
VLM_AVX2 inline __m256 round8(__m256 v) {
  if constexpr (std::is_same_v<W, c10::BFloat16>) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_and_si256(_mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))),
                                             _mm256_set1_epi32(static_cast<int>(0xFFFF0000u)));
    return _mm256_blendv_ps(_mm256_castsi256_ps(rounded), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  } else if constexpr (std::is_same_v<W, c10::Half>) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  } else {
    return v;
  }
}

VLM_AVX2 inline float reduce_add8(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// libtorch's own test before it hands a bfloat16 matmul to oneDNN (mkldnn_bf16_device_check); without it the
// product runs in a scalar loop.
inline bool cpu_has_onednn_bf16() {
  static const bool has = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq");
  return has;
}
#else
inline bool cpu_has_onednn_bf16() { return false; }
inline bool cpu_has_avx512() { return false; }
inline bool cpu_has_avx512_bf16() { return false; }
inline bool cpu_has_avx2_fma() { return false; }
#endif

}  // namespace vlm::simd
