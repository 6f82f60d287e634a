#include "model/matvec.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <mutex>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "model/simd.h"

namespace vlm {

namespace {

using simd::widen;

// Each output column n of every row m: y[m, n] = sum_k x[m, k] * w[n, k] + bias[n], float32 accumulation. The bias
// has the weight's dtype W and is widened exactly; y is rounded once to W (to nearest even, as Tensor::to) and
// stored as W, or as the float32 value of that rounding when `y_float` is set (the fused decode step keeps its
// intermediates in float32). So a decode step needs no separate cast of either.
struct Job {
  const float* x;     // [rows, K]; for bfloat16 on AVX2 and AVX-512, in pair order (see pair_order)
  const c10::BFloat16* x_bf16;  // the same values as bfloat16 for the AVX-512 BF16 path, or null
  const void* bias;   // W [N] or null
  void* y;            // W or float32 [rows, N]
  std::int64_t rows, K, N;
  bool y_float;
  const CodedBf16Weight* coded = nullptr;  // the weight's coded form (AVX2 and above), or null
};

template <typename W>
inline float bias_of(const Job& job, std::int64_t n) {
  return job.bias ? widen(static_cast<const W*>(job.bias)[n]) : 0.f;
}
template <typename W>
inline void store(const Job& job, std::int64_t m, std::int64_t n, float value) {
  if (job.y_float) static_cast<float*>(job.y)[m * job.N + n] = simd::round_to<W>(value);
  else static_cast<W*>(job.y)[m * job.N + n] = W(value);
}

template <typename W>
void columns_portable(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  for (std::int64_t n = n0; n < n1; ++n) {
    const W* row = w + n * job.K;
    for (std::int64_t m = 0; m < job.rows; ++m) {
      const float* x = job.x + m * job.K;
      float acc = 0.f;
      for (std::int64_t k = 0; k < job.K; ++k) acc += widen(row[k]) * x[k];
      store<W>(job, m, n, acc + bias_of<W>(job, n));
    }
  }
}

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined source operand inside _mm512_reduce_add_ps's extract.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
using simd::load16;

// The AVX-512 loops ask for the weights 4 KB ahead of the ones they read: the hardware prefetcher alone left the
// streaming rate from memory 10-25 % lower on a 2-core Zen 5 EPYC (bench_matvec --stream-mb 800, six alternating
// runs: bfloat16 896 x 4864 33.5 -> 40.4 GB/s, LM head 37 -> 45, float32 896 x 4864 36.8 -> 40.5).
constexpr std::int64_t prefetch_bytes = 4096;

// ROWS rows of x at once, so each weight row is read from memory once for all of them; two accumulators per row
// hide the FMA latency.
template <int ROWS, typename W>
VLM_AVX512 void columns_avx512(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  const std::int64_t K = job.K;
  for (std::int64_t n = n0; n < n1; ++n) {
    const W* row = w + n * K;
    __m512 acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) acc0[m] = acc1[m] = _mm512_setzero_ps();
    std::int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      const char* ahead = reinterpret_cast<const char*>(row + k) + prefetch_bytes;  // 32 weights: 1 or 2 lines
      _mm_prefetch(ahead, _MM_HINT_T0);
      if constexpr (sizeof(W) == 4) _mm_prefetch(ahead + 64, _MM_HINT_T0);
      const __m512 w0 = load16(row + k, 0xFFFF), w1 = load16(row + k + 16, 0xFFFF);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) {
        const float* x = job.x + m * K + k;
        acc0[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), acc0[m]);
        acc1[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), acc1[m]);
      }
    }
    for (; k < K; k += 16) {
      const std::int64_t left = K - k;
      const __mmask16 mask = simd::first_lanes(left);
      const __m512 w0 = load16(row + k, mask);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) acc0[m] = _mm512_fmadd_ps(w0, load16(job.x + m * K + k, mask), acc0[m]);
    }
    const float b = bias_of<W>(job, n);
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) store<W>(job, m, n, _mm512_reduce_add_ps(_mm512_add_ps(acc0[m], acc1[m])) + b);
  }
}

// Calls f(std::integral_constant<int, R>) with R = rows (1..8), so each row count gets its own unrolled kernel.
template <typename F>
void with_row_count(std::int64_t rows, F&& f) {
  switch (rows) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

template <typename W>
void columns_avx512_dispatch(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  with_row_count(job.rows, [&](auto rows) { columns_avx512<decltype(rows)::value>(job, w, n0, n1); });
}

// bfloat16 weights on AVX-512 BF16, for x whose values are all bfloat16 values (job.x_bf16; run() checks): vdpbf16ps
// multiplies 32 weight/x pairs exactly and adds them into 16 float32 lanes, so a 64-byte block of weights costs one
// load and one instruction per row instead of two widening steps and two FMAs. The sum is a float32 accumulation
// of exact products, as the other paths', in another order.
//
// The weights come from a row source (PlainRow: the tensor's row; CodedRow: a CodedBf16Weight's) 64 values at a
// time as two vectors, values 0-31 and 32-63. Two blocks per step go into four accumulators per row of x, so the
// dot products' latency chains do not hold up the coded form's decoding: with two accumulators the coded kernel
// streamed the 896 x 151936 head at 47-49 GB/s-of-bfloat16 against 66 with four (bench_matvec --stream-mb 800,
// 2-core Zen 5). The plain rows gain nothing from four but use the same order, so both sources give the same bits.

// The tensor's row n as it is.
struct PlainRow {
  const c10::BFloat16* values;
  static constexpr bool exact_blocks = false;  // K may end in a part block
  // Blocks b and b + 1: 256 bytes, 4 lines.
  VLM_AVX512 __attribute__((always_inline)) void prefetch_pair(std::int64_t b) const {
    const char* ahead = reinterpret_cast<const char*>(values + b * 64) + prefetch_bytes;
#pragma GCC unroll 4
    for (int line = 0; line < 4; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T0);
  }
  VLM_AVX512 __attribute__((always_inline)) void load(std::int64_t b, __m512i& w0, __m512i& w1) const {
    w0 = _mm512_loadu_si512(values + b * 64);
    w1 = _mm512_loadu_si512(values + b * 64 + 32);
  }
};

// Row n of a CodedBf16Weight, read front to back. A coded block's 64 low bytes and its 64 high bytes (looked up
// from their codes) interleave into the two vectors with vpunpcklbw / vpunpckhbw, which pair bytes 0-7 of each
// 128-bit lane (low) and 8-15 (high); encode stores the bytes in the order that makes those vectors the block's
// values 0-31 and 32-63. With ESCAPES (the row has escaped blocks) each block's size is checked.
template <bool ESCAPES>
struct CodedRow {
  const CodedBf16Weight* coded;
  std::int64_t n;
  __m512i table, nibble;
  mutable const std::uint8_t* next;  // the next block to load
  static constexpr bool exact_blocks = true;
  VLM_AVX512 __attribute__((always_inline)) void prefetch_pair(std::int64_t) const {  // 192 bytes, 3 lines
    const char* ahead = reinterpret_cast<const char*>(next) + prefetch_bytes;
#pragma GCC unroll 3
    for (int line = 0; line < 3; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T0);
  }
  // Blocks are loaded in order, b = 0, 1, ...
  VLM_AVX512 __attribute__((always_inline)) void load(std::int64_t b, __m512i& w0, __m512i& w1) const {
    const std::uint8_t* block = next;
    if (ESCAPES && coded->escaped(n, b)) {
      next += CodedBf16Weight::escaped_block_bytes;
      w0 = _mm512_loadu_si512(block);
      w1 = _mm512_loadu_si512(block + 64);
      return;
    }
    next += CodedBf16Weight::coded_block_bytes;
    const __m512i low = _mm512_loadu_si512(block);
    const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64));
    // Bytes 0-31: the low 4 bits of each code byte; 32-63: the high 4 bits.
    const __m512i index =
        _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(codes), _mm256_srli_epi16(codes, 4), 1), nibble);
    const __m512i high = _mm512_shuffle_epi8(table, index);
    w0 = _mm512_unpacklo_epi8(low, high);
    w1 = _mm512_unpackhi_epi8(low, high);
  }
};

// Output column n for every row of x: block pairs into acc0-3, a last whole block into acc0-1, a part block (plain
// rows only) masked into acc0; the sum (acc0 + acc1) + (acc2 + acc3).
template <int ROWS, typename Row>
VLM_AVX512_BF16 inline void bf16_column(const Job& job, const Row& row, std::int64_t n) {
  if constexpr (ROWS > 4) {
    // Four accumulators for each of more than 4 rows would not fit the 32 registers: rows 0-3 first, then the
    // others over the same weight row, which the first pass left in the first-level cache. Each row's sum is then
    // the one a one-row call gives.
    bf16_column<4>(job, Row(row), n);
    Job rest = job;
    rest.rows = ROWS - 4;
    rest.x_bf16 += 4 * job.K;
    if (job.y_float) rest.y = static_cast<float*>(job.y) + 4 * job.N;
    else rest.y = static_cast<c10::BFloat16*>(job.y) + 4 * job.N;
    bf16_column<ROWS - 4>(rest, Row(row), n);
    return;
  }
  const std::int64_t K = job.K, blocks = K / 64;
  __m512 acc[4][ROWS];
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) acc[a][m] = _mm512_setzero_ps();
  }
  std::int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    row.prefetch_pair(b);
    __m512i w0, w1, w2, w3;
    row.load(b, w0, w1);
    row.load(b + 1, w2, w3);
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) {
      const c10::BFloat16* x = job.x_bf16 + m * K + b * 64;
      acc[0][m] = _mm512_dpbf16_ps(acc[0][m], (__m512bh)w0, (__m512bh)_mm512_loadu_si512(x));
      acc[1][m] = _mm512_dpbf16_ps(acc[1][m], (__m512bh)w1, (__m512bh)_mm512_loadu_si512(x + 32));
      acc[2][m] = _mm512_dpbf16_ps(acc[2][m], (__m512bh)w2, (__m512bh)_mm512_loadu_si512(x + 64));
      acc[3][m] = _mm512_dpbf16_ps(acc[3][m], (__m512bh)w3, (__m512bh)_mm512_loadu_si512(x + 96));
    }
  }
  if (b < blocks) {
    __m512i w0, w1;
    row.load(b, w0, w1);
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) {
      const c10::BFloat16* x = job.x_bf16 + m * K + b * 64;
      acc[0][m] = _mm512_dpbf16_ps(acc[0][m], (__m512bh)w0, (__m512bh)_mm512_loadu_si512(x));
      acc[1][m] = _mm512_dpbf16_ps(acc[1][m], (__m512bh)w1, (__m512bh)_mm512_loadu_si512(x + 32));
    }
  }
  if constexpr (!Row::exact_blocks) {
    for (std::int64_t k = blocks * 64; k < K; k += 32) {
      const std::int64_t left = K - k;
      const __mmask32 mask = left >= 32 ? ~__mmask32(0) : static_cast<__mmask32>((1u << left) - 1u);
      const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi16(mask, row.values + k);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) {
        const __m512bh x = (__m512bh)_mm512_maskz_loadu_epi16(mask, job.x_bf16 + m * K + k);
        acc[0][m] = _mm512_dpbf16_ps(acc[0][m], w0, x);
      }
    }
  }
  const float bias = bias_of<c10::BFloat16>(job, n);
#pragma GCC unroll 8
  for (int m = 0; m < ROWS; ++m) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0][m], acc[1][m]), _mm512_add_ps(acc[2][m], acc[3][m]));
    store<c10::BFloat16>(job, m, n, _mm512_reduce_add_ps(sum) + bias);
  }
}

// The same for CPUs with AVX-512 but no BF16 dot products, and for x that is not all bfloat16 values: each vector
// of 32 weights from the row source becomes float32 by one shift (its even elements) and one mask (its odd ones),
// multiplied with x in pair order per 32 values (pair_order). A block's two vectors go into the accumulator pairs
// 0-1 and 2-3 (up to 4 rows of x; more rows share one pair, for the registers), a part block past the last whole
// one (plain rows only) into 0-1: a whole 32 in pair order, the rest 16 at a time in place.
template <int ROWS>
VLM_AVX512 __attribute__((always_inline)) inline void fma_pairs(const Job& job, std::int64_t k, __m512i raw,
                                                                __m512 (&even)[ROWS], __m512 (&odd)[ROWS]) {
  const __m512 w_even = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
  const __m512 w_odd = _mm512_castsi512_ps(_mm512_and_si512(raw, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
#pragma GCC unroll 8
  for (int m = 0; m < ROWS; ++m) {
    const float* x = job.x + m * job.K + k;
    even[m] = _mm512_fmadd_ps(w_even, _mm512_loadu_ps(x), even[m]);
    odd[m] = _mm512_fmadd_ps(w_odd, _mm512_loadu_ps(x + 16), odd[m]);
  }
}

template <int ROWS, typename Row>
VLM_AVX512 inline void bf16_column_fma(const Job& job, const Row& row, std::int64_t n) {
  constexpr int A = ROWS <= 4 ? 4 : 2;
  const std::int64_t K = job.K, blocks = K / 64;
  __m512 acc[A][ROWS];
#pragma GCC unroll 4
  for (int a = 0; a < A; ++a) {
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) acc[a][m] = _mm512_setzero_ps();
  }
  std::int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    row.prefetch_pair(b);
    __m512i w0, w1, w2, w3;
    row.load(b, w0, w1);
    row.load(b + 1, w2, w3);
    fma_pairs<ROWS>(job, b * 64, w0, acc[0], acc[1]);
    fma_pairs<ROWS>(job, b * 64 + 32, w1, acc[2 % A], acc[3 % A]);
    fma_pairs<ROWS>(job, b * 64 + 64, w2, acc[0], acc[1]);
    fma_pairs<ROWS>(job, b * 64 + 96, w3, acc[2 % A], acc[3 % A]);
  }
  if (b < blocks) {
    __m512i w0, w1;
    row.load(b, w0, w1);
    fma_pairs<ROWS>(job, b * 64, w0, acc[0], acc[1]);
    fma_pairs<ROWS>(job, b * 64 + 32, w1, acc[2 % A], acc[3 % A]);
  }
  if constexpr (!Row::exact_blocks) {
    std::int64_t k = blocks * 64;
    if (k + 32 <= K) {
      fma_pairs<ROWS>(job, k, _mm512_loadu_si512(row.values + k), acc[0], acc[1]);
      k += 32;
    }
    for (; k < K; k += 16) {
      const __mmask16 mask = simd::first_lanes(K - k);
      const __m512 w0 = load16(row.values + k, mask);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) acc[0][m] = _mm512_fmadd_ps(w0, load16(job.x + m * K + k, mask), acc[0][m]);
    }
  }
  const float bias = bias_of<c10::BFloat16>(job, n);
#pragma GCC unroll 8
  for (int m = 0; m < ROWS; ++m) {
    __m512 sum = _mm512_add_ps(acc[0][m], acc[1][m]);
    if constexpr (A == 4) sum = _mm512_add_ps(sum, _mm512_add_ps(acc[2][m], acc[3][m]));
    store<c10::BFloat16>(job, m, n, _mm512_reduce_add_ps(sum) + bias);
  }
}

// Output columns n0..n1 of a bfloat16 weight on AVX-512, from the tensor's rows or, with job.coded, from the coded
// ones. Two copies of one loop: the column function of the BF16 one may only be inlined into a function compiled
// for AVX-512 BF16, and a call per row would cost the LM head several percent.
template <int ROWS>
VLM_AVX512_BF16 void columns_avx512_bf16(const Job& job, const c10::BFloat16* w, std::int64_t n0, std::int64_t n1) {
  const CodedBf16Weight* coded = job.coded;
  // run() passes no copy beyond coded_weight_max_rows() (4 here); the check keeps the coded rows out of the
  // two-pass instantiations.
  if (!coded || ROWS > 4) {
    for (std::int64_t n = n0; n < n1; ++n) bf16_column<ROWS>(job, PlainRow{w + n * job.K}, n);
    return;
  }
  const __m512i table = _mm512_loadu_si512(coded->table()), nibble = _mm512_set1_epi8(0x0F);
  for (std::int64_t n = n0; n < n1; ++n) {
    // Most rows have no escaped block and skip the check.
    const std::uint8_t* data = coded->row_data(n);
    if (coded->row_has_escape(n)) bf16_column<ROWS>(job, CodedRow<true>{coded, n, table, nibble, data}, n);
    else bf16_column<ROWS>(job, CodedRow<false>{coded, n, table, nibble, data}, n);
  }
}

template <int ROWS>
VLM_AVX512 void columns_avx512_bf16_fma(const Job& job, const c10::BFloat16* w, std::int64_t n0, std::int64_t n1) {
  const CodedBf16Weight* coded = job.coded;
  if (!coded) {
    for (std::int64_t n = n0; n < n1; ++n) bf16_column_fma<ROWS>(job, PlainRow{w + n * job.K}, n);
    return;
  }
  const __m512i table = _mm512_loadu_si512(coded->table()), nibble = _mm512_set1_epi8(0x0F);
  for (std::int64_t n = n0; n < n1; ++n) {
    const std::uint8_t* data = coded->row_data(n);
    if (coded->row_has_escape(n)) bf16_column_fma<ROWS>(job, CodedRow<true>{coded, n, table, nibble, data}, n);
    else bf16_column_fma<ROWS>(job, CodedRow<false>{coded, n, table, nibble, data}, n);
  }
}

// Sixteen consecutive weights widened to float32 as two vectors, elements 0-7 and 8-15 (bfloat16 has its own
// loops below).
VLM_AVX2 inline void load16_avx2(const float* p, __m256& a, __m256& b) {
  a = _mm256_loadu_ps(p);
  b = _mm256_loadu_ps(p + 8);
}
VLM_AVX2 inline void load16_avx2(const c10::Half* p, __m256& a, __m256& b) {
  a = simd::load8(p);
  b = simd::load8(p + 8);
}
// The x rows in the order the bfloat16 loops widen weights (group 16: fma16_avx2; 32: bf16_column_fma): every
// whole group as its even elements, then its odd ones; the tail past the last whole group stays in place.
void pair_order(const float* x, std::int64_t rows, std::int64_t K, std::int64_t group, float* out) {
  const std::int64_t body = K - K % group, half = group / 2;
  for (std::int64_t m = 0; m < rows; ++m) {
    const float* src = x + m * K;
    float* dst = out + m * K;
    for (std::int64_t k = 0; k < body; k += group) {
      for (std::int64_t i = 0; i < half; ++i) {
        dst[k + i] = src[k + 2 * i];
        dst[k + half + i] = src[k + 2 * i + 1];
      }
    }
    for (std::int64_t k = body; k < K; ++k) dst[k] = src[k];
  }
}

// The same on AVX2 + FMA: 8 lanes, the tail of K (below 16) in scalar code. Up to 4 rows keep two accumulators each;
// more rows share one (two chained FMAs per block), because 16 accumulators plus the weights spill out of the 16
// AVX2 registers: on a 2-core AVX2 EPYC that took 8 rows of the 896 x 151936 head from 44.8 to 37.9 ms in
// bfloat16 and from 55.3 to 41.8 ms in float32 (bench_matvec; bfloat16 keeps that split in bf16_columns_avx2).
template <int ROWS, typename W>
VLM_AVX2 void columns_avx2(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  const std::int64_t K = job.K, body = K - K % 16;
  for (std::int64_t n = n0; n < n1; ++n) {
    const W* row = w + n * K;
    __m256 acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) acc0[m] = acc1[m] = _mm256_setzero_ps();
    for (std::int64_t k = 0; k < body; k += 16) {
      __m256 w0, w1;
      load16_avx2(row + k, w0, w1);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) {
        const float* x = job.x + m * K + k;
        if constexpr (ROWS <= 4) {
          acc0[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), acc0[m]);
          acc1[m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), acc1[m]);
        } else {
          acc0[m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), acc0[m]));
        }
      }
    }
    const float b = bias_of<W>(job, n);
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) {
      float sum = simd::reduce_add8(_mm256_add_ps(acc0[m], acc1[m]));
      const float* x = job.x + m * K;
      for (std::int64_t k = body; k < K; ++k) sum += widen(row[k]) * x[k];
      store<W>(job, m, n, sum + b);
    }
  }
}

// One or two rows of x (batch-1 and batch-2 decoding) and weight rows of at least 2 KB: four output columns at a
// time, so four weight rows stream from memory at once and each x vector is loaded once for all four. On a 2-core
// AVX2 EPYC (bench_matvec, 3 alternating runs) this took float32 896 x 4864 from 1.26-1.36 ms to 1.04-1.22 ms and
// 4864 x 896 from 1.21-1.39 to 0.92-1.02 (bfloat16: 0.87-1.02 to 0.52-1.00), but made bfloat16 896 x 4864 (1.8 KB
// rows) slower, 0.59-0.80 to 1.25-1.44 ms; shorter rows keep one column at a time. (float32 and float16 only now:
// bfloat16 has its own loop below.)
template <int ROWS, typename W>
VLM_AVX2 void columns4_avx2(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  constexpr int C = 4;
  const std::int64_t K = job.K, body = K - K % 16;
  std::int64_t n = n0;
  for (; n + C <= n1; n += C) {
    const W* rows[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) rows[c] = w + (n + c) * K;
    __m256 acc[ROWS][C];
#pragma GCC unroll 2
    for (int m = 0; m < ROWS; ++m) {
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[m][c] = _mm256_setzero_ps();
    }
    for (std::int64_t k = 0; k < body; k += 16) {
      __m256 xa[ROWS], xb[ROWS];
#pragma GCC unroll 2
      for (int m = 0; m < ROWS; ++m) {
        xa[m] = _mm256_loadu_ps(job.x + m * K + k);
        xb[m] = _mm256_loadu_ps(job.x + m * K + k + 8);
      }
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        __m256 wa, wb;
        load16_avx2(rows[c] + k, wa, wb);
#pragma GCC unroll 2
        for (int m = 0; m < ROWS; ++m) acc[m][c] = _mm256_fmadd_ps(wb, xb[m], _mm256_fmadd_ps(wa, xa[m], acc[m][c]));
      }
    }
    for (int c = 0; c < C; ++c) {
      const float b = bias_of<W>(job, n + c);
      for (int m = 0; m < ROWS; ++m) {
        float sum = simd::reduce_add8(acc[m][c]);
        const float* x = job.x + m * K;
        for (std::int64_t k = body; k < K; ++k) sum += widen(rows[c][k]) * x[k];
        store<W>(job, m, n + c, sum + b);
      }
    }
  }
  if (n < n1) columns_avx2<ROWS>(job, w, n, n1);
}

template <typename W>
void columns_avx2_dispatch(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  const bool long_rows = job.K * static_cast<std::int64_t>(sizeof(W)) >= 2048;
  with_row_count(job.rows, [&](auto rows) {
    constexpr int R = decltype(rows)::value;
    if constexpr (R <= 2) {
      if (long_rows) return columns4_avx2<R>(job, w, n0, n1);
    }
    columns_avx2<R>(job, w, n0, n1);
  });
}

// bfloat16 weights on AVX2 + FMA. bfloat16 is the high half of a float32, so one 256-bit vector holds sixteen
// weights two to a lane: shifting each lane left by 16 bits gives elements 0, 2, .., 14 as float32, clearing its low
// half gives 1, 3, .., 15, against x in pair order per 16 values. That is one load and two single-cycle operations
// for sixteen values, against two zero-extending loads and two shifts; on Zen 1, whose AVX2 units are 128 bits
// wide, the widening and not memory limited bfloat16 rows of 1.8 KB.
//
// The loops take the weights 64 values (four such vectors) at a time from a row source, as the AVX-512 ones do:
// PlainRows256 (the tensor's rows) or CodedRows256 (a CodedBf16Weight's, decoded in registers); both are summed in
// one order, that of columns_avx2 above.
template <int ROWS>
VLM_AVX2 __attribute__((always_inline)) inline void fma16_avx2(const Job& job, std::int64_t k, __m256i raw,
                                                               __m256 (&acc0)[ROWS], __m256 (&acc1)[ROWS]) {
  const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
  const __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(raw, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
#pragma GCC unroll 8
  for (int m = 0; m < ROWS; ++m) {
    const float* x = job.x + m * job.K + k;
    if constexpr (ROWS <= 4) {
      acc0[m] = _mm256_fmadd_ps(even, _mm256_loadu_ps(x), acc0[m]);
      acc1[m] = _mm256_fmadd_ps(odd, _mm256_loadu_ps(x + 8), acc1[m]);
    } else {
      acc0[m] = _mm256_fmadd_ps(odd, _mm256_loadu_ps(x + 8), _mm256_fmadd_ps(even, _mm256_loadu_ps(x), acc0[m]));
    }
  }
}

struct PlainRows256 {
  const c10::BFloat16* w;
  std::int64_t K;
  static constexpr bool exact_blocks = false;  // K may end in a part block
  struct Row {
    const c10::BFloat16* values;
  };
  struct Context {};
  Row row(std::int64_t n) const { return {w + n * K}; }
  VLM_AVX2 __attribute__((always_inline)) Context context() const { return {}; }
  VLM_AVX2 __attribute__((always_inline)) void load4(const Context&, Row& row, std::int64_t b,
                                                     __m256i (&v)[4]) const {
    const auto* src = reinterpret_cast<const __m256i*>(row.values + b * 64);
    _mm_prefetch(reinterpret_cast<const char*>(src) + prefetch_bytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(src) + prefetch_bytes + 64, _MM_HINT_T0);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_si256(src + i);
  }
};

// A coded block in 256-bit halves: the interleaves of its first 32 byte slots (encode's order) give values 0-15 and
// 32-47, those of the other 32 values 16-31 and 48-63.
struct CodedRows256 {
  const CodedBf16Weight* coded;
  static constexpr bool exact_blocks = true;
  struct Row {
    const std::uint8_t* next;  // the next block to load
    std::int64_t n;
    bool escapes;
  };
  struct Context {
    __m256i table, nibble;
  };
  Row row(std::int64_t n) const { return {coded->row_data(n), n, coded->row_has_escape(n)}; }
  VLM_AVX2 __attribute__((always_inline)) Context context() const {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(coded->table())), _mm256_set1_epi8(0x0F)};
  }
  // Blocks are loaded in order, b = 0, 1, ...
  VLM_AVX2 __attribute__((always_inline)) void load4(const Context& c, Row& row, std::int64_t b,
                                                     __m256i (&v)[4]) const {
    const auto* src = reinterpret_cast<const __m256i*>(row.next);
    // A block spans up to three lines.
    _mm_prefetch(reinterpret_cast<const char*>(src) + prefetch_bytes, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(src) + prefetch_bytes + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(src) + prefetch_bytes + 127, _MM_HINT_T0);
    if (row.escapes && coded->escaped(row.n, b)) {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_si256(src + i);
      row.next += CodedBf16Weight::escaped_block_bytes;
      return;
    }
    const __m256i low0 = _mm256_loadu_si256(src), low1 = _mm256_loadu_si256(src + 1);
    const __m256i codes = _mm256_loadu_si256(src + 2);
    const __m256i high0 = _mm256_shuffle_epi8(c.table, _mm256_and_si256(codes, c.nibble));
    const __m256i high1 = _mm256_shuffle_epi8(c.table, _mm256_and_si256(_mm256_srli_epi16(codes, 4), c.nibble));
    v[0] = _mm256_unpacklo_epi8(low0, high0);
    v[1] = _mm256_unpacklo_epi8(low1, high1);
    v[2] = _mm256_unpackhi_epi8(low0, high0);
    v[3] = _mm256_unpackhi_epi8(low1, high1);
    row.next += CodedBf16Weight::coded_block_bytes;
  }
};

template <int ROWS, typename Rows>
VLM_AVX2 void bf16_columns_avx2(const Job& job, const Rows& rows, std::int64_t n0, std::int64_t n1) {
  const std::int64_t K = job.K, blocks = K / 64, body = K - K % 16;
  const auto context = rows.context();
  for (std::int64_t n = n0; n < n1; ++n) {
    auto row = rows.row(n);
    __m256 acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) acc0[m] = acc1[m] = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < blocks; ++b) {
      __m256i v[4];
      rows.load4(context, row, b, v);
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) fma16_avx2<ROWS>(job, b * 64 + 16 * g, v[g], acc0, acc1);
    }
    if constexpr (!Rows::exact_blocks) {
      for (std::int64_t k = blocks * 64; k < body; k += 16) {
        fma16_avx2<ROWS>(job, k, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row.values + k)), acc0, acc1);
      }
    }
    const float b = bias_of<c10::BFloat16>(job, n);
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) {
      float sum = simd::reduce_add8(_mm256_add_ps(acc0[m], acc1[m]));
      if constexpr (!Rows::exact_blocks) {
        for (std::int64_t k = body; k < K; ++k) sum += widen(row.values[k]) * job.x[m * K + k];
      }
      store<c10::BFloat16>(job, m, n, sum + b);
    }
  }
}

// On a 2-core Zen 5 EPYC run at AVX2 (bench_matvec --stream-mb 800 --isa avx2), four columns at a time
// (columns4_avx2's order) streamed the 4864 x 896 down projection at 35-38 GB/s from the tensor and 36-38 from the
// coded form, one at a time at 40-41 and 51-52; so bfloat16 takes one column at a time at every shape.
template <typename Rows>
void bf16_columns_avx2_dispatch(const Job& job, const Rows& rows, std::int64_t n0, std::int64_t n1) {
  with_row_count(job.rows, [&](auto count) { bf16_columns_avx2<decltype(count)::value>(job, rows, n0, n1); });
}
#endif

template <typename W>
void run_columns(const Job& job, const W* w) {
  // Chunks of whole output columns per thread; small enough that every thread gets work on the narrow k/v
  // projections, large enough that the fork costs nothing next to the memory traffic.
  at::parallel_for(0, job.N, 64, [&](std::int64_t n0, std::int64_t n1) {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<W, c10::BFloat16>) {
      if (job.x_bf16) {
        return with_row_count(job.rows, [&](auto rows) { columns_avx512_bf16<decltype(rows)::value>(job, w, n0, n1); });
      }
      if (simd::cpu_has_avx512()) {
        return with_row_count(job.rows, [&](auto rows) {
          columns_avx512_bf16_fma<decltype(rows)::value>(job, w, n0, n1);
        });
      }
      if (simd::cpu_has_avx2_fma()) {
        if (job.coded) return bf16_columns_avx2_dispatch(job, CodedRows256{job.coded}, n0, n1);
        return bf16_columns_avx2_dispatch(job, PlainRows256{w, job.K}, n0, n1);
      }
    } else {
      if (simd::cpu_has_avx512()) return columns_avx512_dispatch(job, w, n0, n1);
      if (simd::cpu_has_avx2_fma()) return columns_avx2_dispatch(job, w, n0, n1);
    }
#endif
    columns_portable(job, w, n0, n1);
  });
}

// The weights the kernel reads: float32, bfloat16 or float16, [N, K] contiguous on the CPU.
bool kernel_weight(const torch::Tensor& weight) {
  const auto dtype = weight.scalar_type();
  return (dtype == torch::kFloat || dtype == torch::kBFloat16 || dtype == torch::kHalf) && weight.device().is_cpu() &&
         weight.dim() == 2 && weight.is_contiguous();
}

// The shapes, dtypes and devices the kernel computes (up to few_row_kernel_rows rows), whatever the autograd state.
bool kernel_takes(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!kernel_weight(weight) || x.scalar_type() != weight.scalar_type() || !x.device().is_cpu()) return false;
  if (x.dim() == 0 || x.size(-1) != weight.size(1)) return false;
  return x.numel() > 0 && x.numel() / weight.size(1) <= few_row_kernel_rows;
}

void run(const float* x, std::int64_t rows, const torch::Tensor& weight, const torch::Tensor& bias, void* y,
         bool y_float, const CodedBf16Weight* coded) {
  const auto dtype = weight.scalar_type();
  torch::Tensor b = bias;
  // A module's own bias already fits; skip the dispatcher calls of a no-op to() on every decode projection.
  if (b.defined() && (b.scalar_type() != dtype || !b.device().is_cpu() || !b.is_contiguous())) {
    b = b.to(torch::kCPU, dtype).contiguous();
  }
  const auto K = weight.size(1);
  const c10::BFloat16* x_bf16 = nullptr;
#if defined(__x86_64__)
  // x as bfloat16 for the AVX-512 BF16 path, taken only when that loses nothing: every x value must be a bfloat16
  // value (the activations of a bfloat16 model are), else the float32 path below keeps x as it is.
  // A float32 is a bfloat16 value when its low 16 bits are zero; its high 16 bits are then that bfloat16.
  thread_local std::vector<c10::BFloat16> narrowed;
  if (dtype == torch::kBFloat16 && simd::cpu_has_avx512_bf16()) {
    const auto count = static_cast<std::size_t>(rows * K);
    narrowed.resize(count);
    std::uint32_t low_bits = 0;
    for (std::size_t i = 0; i < count; ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, x + i, sizeof bits);
      low_bits |= bits & 0xFFFFu;
      narrowed[i] = c10::BFloat16(static_cast<std::uint16_t>(bits >> 16), c10::BFloat16::from_bits());
    }
    if (low_bits == 0) x_bf16 = narrowed.data();
  }
  // Reordered once per call (at most 8 x K floats), so each weight vector is widened by one load and two operations:
  // per 32 values on AVX-512 (bf16_column_fma), per 16 on AVX2 (fma16_avx2).
  thread_local std::vector<float> paired;
  const std::int64_t pair_group = simd::cpu_has_avx512() ? 32 : simd::cpu_has_avx2_fma() ? 16 : 0;
  if (dtype == torch::kBFloat16 && !x_bf16 && pair_group) {
    paired.resize(static_cast<std::size_t>(rows * K));
    pair_order(x, rows, K, pair_group, paired.data());
    x = paired.data();
  }
#endif
  if (rows > coded_weight_max_rows() || (coded && !coded->encodes(weight))) coded = nullptr;
  const Job job{x, x_bf16, b.defined() ? b.data_ptr() : nullptr, y, rows, K, weight.size(0), y_float, coded};
  if (dtype == torch::kFloat) run_columns(job, weight.data_ptr<float>());
  else if (dtype == torch::kBFloat16) run_columns(job, weight.data_ptr<c10::BFloat16>());
  else run_columns(job, weight.data_ptr<c10::Half>());
}

}  // namespace

KernelIsa kernel_isa() {
  if (simd::cpu_has_avx512_bf16()) return KernelIsa::avx512_bf16;
  if (simd::cpu_has_avx512()) return KernelIsa::avx512;
  if (simd::cpu_has_avx2_fma()) return KernelIsa::avx2;
  return KernelIsa::portable;
}

KernelIsa limit_kernel_isa(KernelIsa most) {
  simd::isa_limit.store(static_cast<int>(most));
  return kernel_isa();
}

const char* kernel_isa_name(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::avx512: return "avx512";
    case KernelIsa::avx512_bf16: return "avx512_bf16";
    case KernelIsa::avx2: return "avx2";
    default: return "portable";
  }
}

std::optional<KernelIsa> kernel_isa_named(std::string_view name) {
  for (auto isa : {KernelIsa::portable, KernelIsa::avx2, KernelIsa::avx512, KernelIsa::avx512_bf16}) {
    if (name == kernel_isa_name(isa)) return isa;
  }
  return std::nullopt;
}

std::int64_t coded_weight_max_rows() {
  if (kernel_isa() < KernelIsa::avx2) return 0;
  // More rows make the AVX-512 BF16 step compute-bound, and its second pass would decode each coded row again.
  return kernel_isa() == KernelIsa::avx512_bf16 ? 4 : few_row_linear_max_rows(torch::kBFloat16);
}

std::int64_t few_row_linear_max_rows(torch::ScalarType weight_dtype) {
  switch (weight_dtype) {
    case torch::kFloat: return 8;
    // With AVX-512 BF16 the kernel's two passes of 4 rows beat oneDNN's gemm up to 8 rows; on other CPUs with
    // oneDNN's bfloat16 gemm it is as fast beyond 4; without it libtorch's fallback is a scalar loop.
    case torch::kBFloat16: return simd::cpu_has_avx512_bf16() || !simd::cpu_has_onednn_bf16() ? 8 : 4;
    case torch::kHalf: return 8;
    default: return 0;
  }
}

bool few_row_linear_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  // Inference only: autograd and autocast go through torch::linear.
  return kernel_takes(x, weight) && x.numel() / weight.size(1) <= few_row_linear_max_rows(weight.scalar_type()) &&
         !torch::GradMode::is_enabled() && !at::autocast::is_cpu_enabled();
}

torch::Tensor few_row_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                             const CodedBf16Weight* coded) {
  if (!kernel_takes(x, weight)) {
    fail(ErrorCode::internal, "few_row_linear: x " + c10::str(x.sizes()) + " " + c10::str(x.scalar_type()) +
                                  " and weight " + c10::str(weight.sizes()) + " " + c10::str(weight.scalar_type()) +
                                  " are outside the kernel's shapes and dtypes");
  }
  const auto N = weight.size(0), K = weight.size(1), rows = x.numel() / K;
  auto xf = x.reshape({rows, K}).to(torch::kFloat).contiguous();
  auto y = torch::empty({rows, N}, torch::TensorOptions().dtype(weight.scalar_type()));
  run(xf.data_ptr<float>(), rows, weight, bias, y.data_ptr(), /*y_float=*/false, coded);
  auto shape = x.sizes().vec();
  shape.back() = N;
  return y.view(shape);
}

bool few_row_linear_into_applies(std::int64_t rows, const torch::Tensor& weight) {
  return rows > 0 && rows <= few_row_linear_max_rows(weight.scalar_type()) && kernel_weight(weight);
}

void few_row_linear_into(const float* x, std::int64_t rows, const torch::Tensor& weight, const torch::Tensor& bias,
                         float* y, const CodedBf16Weight* coded) {
  if (rows < 1 || rows > few_row_kernel_rows || !kernel_weight(weight)) {
    fail(ErrorCode::internal, "few_row_linear_into: " + std::to_string(rows) + " rows and weight " +
                                  c10::str(weight.sizes()) + " " + c10::str(weight.scalar_type()) +
                                  " are outside the kernel's shapes and dtypes");
  }
  run(x, rows, weight, bias, y, /*y_float=*/true, coded);
}

// ---------------------------------------------------------------------------------------------------------------
// CodedBf16Weight

namespace {

// Where value t (0..63) of a block goes in its 64 byte slots: the coded kernel's vpunpcklbw / vpunpckhbw pair slots
// 16j..16j+7 of each 128-bit lane j into values 8j..8j+7 of the first vector (the block's values 0-31) and slots
// 16j+8..16j+15 into the second (values 32-63).
constexpr std::int64_t slot_of(std::int64_t t) {
  const std::int64_t half = t / 32, u = t % 32;
  return 16 * (u / 8) + 8 * half + u % 8;
}

// Slot s's code: slots 0-31 in the low 4 bits of code byte s, slots 32-63 in the high 4 bits of byte s - 32.
inline std::uint8_t code_at(const std::uint8_t* codes, std::int64_t slot) {
  return slot < 32 ? (codes[slot] & 0x0F) : static_cast<std::uint8_t>(codes[slot - 32] >> 4);
}

}  // namespace

std::shared_ptr<const CodedBf16Weight> CodedBf16Weight::encode(const torch::Tensor& weight, double max_escaped) {
  if (!weight.defined() || weight.scalar_type() != torch::kBFloat16 || !weight.device().is_cpu() ||
      weight.dim() != 2 || !weight.is_contiguous() || weight.size(1) % block != 0 || weight.numel() == 0) {
    return nullptr;
  }
  const std::int64_t N = weight.size(0), K = weight.size(1), blocks = K / block;
  const auto* bits = reinterpret_cast<const std::uint16_t*>(weight.data_ptr<c10::BFloat16>());

  // The 16 most frequent high bytes, by count (ties: the smaller byte first, so the table is deterministic).
  std::vector<std::int64_t> count(256, 0);
  std::mutex count_mutex;
  at::parallel_for(0, N * K, 1 << 20, [&](std::int64_t begin, std::int64_t end) {
    std::int64_t local[256] = {};
    for (std::int64_t i = begin; i < end; ++i) ++local[bits[i] >> 8];
    std::lock_guard<std::mutex> lock(count_mutex);
    for (int h = 0; h < 256; ++h) count[h] += local[h];
  });
  std::vector<int> order(256);
  for (int i = 0; i < 256; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return count[a] > count[b]; });
  std::shared_ptr<CodedBf16Weight> coded(new CodedBf16Weight());
  std::int16_t code_of[256];
  std::fill(std::begin(code_of), std::end(code_of), std::int16_t(-1));
  for (int c = 0; c < 16; ++c) {
    for (int lane = 0; lane < 4; ++lane) coded->table_[16 * lane + c] = static_cast<std::uint8_t>(order[c]);
    if (count[order[c]] > 0) code_of[order[c]] = static_cast<std::int16_t>(c);
  }
  coded->rows_ = N;
  coded->cols_ = K;
  coded->words_per_row_ = (blocks + 63) / 64;

  // First the escaped blocks, which set each row's size; then the rows, each at its offset.
  coded->row_escapes_.assign(static_cast<std::size_t>(N), 0);
  coded->escape_bits_.assign(static_cast<std::size_t>(N * coded->words_per_row_), 0);
  std::vector<std::int64_t> escaped_in_row(static_cast<std::size_t>(N), 0);
  at::parallel_for(0, N, 64, [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t n = n0; n < n1; ++n) {
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint16_t* values = bits + n * K + b * block;
        bool escape = false;
        for (std::int64_t t = 0; t < block; ++t) escape |= code_of[values[t] >> 8] < 0;
        if (!escape) continue;
        coded->escape_bits_[n * coded->words_per_row_ + b / 64] |= std::uint64_t(1) << (b % 64);
        coded->row_escapes_[n] = 1;
        ++escaped_in_row[n];
      }
    }
  });
  std::int64_t escaped = 0, offset = 0;
  coded->row_offsets_.resize(static_cast<std::size_t>(N));
  for (std::int64_t n = 0; n < N; ++n) {
    coded->row_offsets_[n] = offset;
    offset += blocks * coded_block_bytes + escaped_in_row[n] * (escaped_block_bytes - coded_block_bytes);
    escaped += escaped_in_row[n];
  }
  if (static_cast<double>(escaped) > max_escaped * static_cast<double>(N * blocks)) return nullptr;

  coded->bytes_.assign(static_cast<std::size_t>(offset), 0);
  at::parallel_for(0, N, 64, [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t n = n0; n < n1; ++n) {
      std::uint8_t* out = coded->bytes_.data() + coded->row_offsets_[n];
      for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint16_t* values = bits + n * K + b * block;
        if (coded->escaped(n, b)) {
          std::memcpy(out, values, escaped_block_bytes);
          out += escaped_block_bytes;
          continue;
        }
        std::uint8_t* codes = out + block;
        for (std::int64_t t = 0; t < block; ++t) {
          const std::int64_t slot = slot_of(t);
          const auto code = static_cast<std::uint8_t>(code_of[values[t] >> 8]);
          out[slot] = static_cast<std::uint8_t>(values[t] & 0xFF);
          if (slot < 32) codes[slot] = static_cast<std::uint8_t>(codes[slot] | code);
          else codes[slot - 32] = static_cast<std::uint8_t>(codes[slot - 32] | (code << 4));
        }
        out += coded_block_bytes;
      }
    }
  });
  coded->source_ = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(weight.getIntrusivePtr());
  coded->version_ = weight._version();
  return coded;
}

bool CodedBf16Weight::encodes(const torch::Tensor& weight) const {
  return !source_.expired() && weight.unsafeGetTensorImpl() == source_._unsafe_get_target() &&
         weight._version() == version_;
}

double CodedBf16Weight::escaped_block_fraction() const {
  std::int64_t escaped = 0;
  for (auto word : escape_bits_) escaped += __builtin_popcountll(word);
  const auto blocks = rows_ * (cols_ / block);
  return blocks ? static_cast<double>(escaped) / static_cast<double>(blocks) : 0.0;
}

std::uint16_t CodedBf16Weight::decoded(std::int64_t n, std::int64_t k) const {
  const std::int64_t target = k / block;
  const std::uint8_t* data = row_data(n);
  for (std::int64_t b = 0; b < target; ++b) data += escaped(n, b) ? escaped_block_bytes : coded_block_bytes;
  std::uint16_t value;
  if (escaped(n, target)) {
    std::memcpy(&value, data + 2 * (k % block), sizeof value);
    return value;
  }
  const std::int64_t slot = slot_of(k % block);
  return static_cast<std::uint16_t>(data[slot] | (table_[code_at(data + block, slot)] << 8));
}

}  // namespace vlm
