// The fused decode step of the decoder stack (layers.h, DecoderImpl::fused_decode).
//
// A decode step at batch 1 moves ~1 GB of weights through the few-row kernel and does almost nothing else, but the
// op-by-op layer issues some 80 libtorch calls per layer (norm casts and reductions, rotary, the cache append,
// attention, residual adds, the casts around every projection), each a few microseconds of dispatch and allocation
// on 896-wide rows: about 10 ms a token for a 24-layer model, as much as a third of the step. Here a layer is a
// handful of loops over float32 rows. Every value a libtorch op would store in the model's dtype W is rounded to W
// at the same point (simd::round_to), so bfloat16 and float16 steps follow the op-by-op path's arithmetic and
// differ from it only in float32 summation order.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "model/layers.h"
#include "model/matvec.h"
#include "model/simd.h"

namespace vlm {

// What the layers of one decode step share: the shapes, the rotary table and the mask widened to float32, and the
// scratch rows each layer writes.
struct DecodeStep {
  torch::ScalarType dtype;
  std::int64_t rows, hidden, heads, kv_heads, head_dim, intermediate;
  std::int64_t past;           // tokens cached before this step; the new one goes at index `past`
  float eps;
  const float* cos = nullptr;  // [rows, head_dim]
  const float* sin = nullptr;
  const float* mask = nullptr;  // [rows, past + 1] additive, or null
  KVCache* cache = nullptr;
  std::vector<float> normed, q, k, v, attended, projected, gate, up;
};

namespace {

using simd::round_to;
using simd::widen;

// ---------------------------------------------------------------------------------------------------------------
// Vector helpers over one head (D elements): q . k with k in W, and acc += p * v with v in W.

template <typename W>
float dot_portable(const float* q, const W* k, std::int64_t D) {
  float acc = 0.f;
  for (std::int64_t d = 0; d < D; ++d) acc += q[d] * widen(k[d]);
  return acc;
}

template <typename W>
void axpy_portable(float p, const W* v, float* acc, std::int64_t D) {
  for (std::int64_t d = 0; d < D; ++d) acc[d] += p * widen(v[d]);
}

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined source operand inside _mm512_reduce_add_ps, as in matvec.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

template <typename W>
VLM_AVX512 float dot_avx512(const float* q, const W* k, std::int64_t D) {
  __m512 acc = _mm512_setzero_ps();
  for (std::int64_t d = 0; d < D; d += 16) {
    const __mmask16 mask = simd::first_lanes(D - d);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, q + d), simd::load16(k + d, mask), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

template <typename W>
VLM_AVX512 void axpy_avx512(float p, const W* v, float* acc, std::int64_t D) {
  const __m512 pv = _mm512_set1_ps(p);
  for (std::int64_t d = 0; d < D; d += 16) {
    const __mmask16 mask = simd::first_lanes(D - d);
    const __m512 sum = _mm512_fmadd_ps(pv, simd::load16(v + d, mask), _mm512_maskz_loadu_ps(mask, acc + d));
    _mm512_mask_storeu_ps(acc + d, mask, sum);
  }
}

// dot_avx512 of q with 16 consecutive keys k[0..15] (D apart), each to the same bits.
template <typename W>
VLM_AVX512 void dot16_avx512(const float* q, const W* k, std::int64_t D, float* out) {
  __m512 acc[16];
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
  for (std::int64_t d = 0; d < D; d += 16) {
    const __mmask16 mask = simd::first_lanes(D - d);
    const __m512 qv = _mm512_maskz_loadu_ps(mask, q + d);
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(qv, simd::load16(k + j * D + d, mask), acc[j]);
  }
  simd::reduce_add16(acc, out);
}

// out = sum over j of p[j] * v[j] (v: S rows D apart), j in order and p[j] == 0 skipped, each step an FMA into the
// running sum as axpy_avx512's: the same bits, with the sums in registers instead of a store and load per key.
template <typename W>
VLM_AVX512 void weighted_sum_avx512(const float* p, const W* v, std::int64_t S, std::int64_t D, float* out) {
  for (std::int64_t d0 = 0; d0 < D; d0 += 64) {
    __mmask16 mask[4];
    __m512 acc[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const std::int64_t left = D - d0 - 16 * c;
      mask[c] = left > 0 ? simd::first_lanes(left) : __mmask16(0);
      acc[c] = _mm512_setzero_ps();
    }
    for (std::int64_t j = 0; j < S; ++j) {
      if (p[j] == 0.f) continue;
      const __m512 pj = _mm512_set1_ps(p[j]);
      const W* row = v + j * D + d0;
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        if (mask[c]) acc[c] = _mm512_fmadd_ps(pj, simd::load16(row + 16 * c, mask[c]), acc[c]);
      }
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) _mm512_mask_storeu_ps(out + d0 + 16 * c, mask[c], acc[c]);
  }
}

template <typename W>
VLM_AVX2 float dot_avx2(const float* q, const W* k, std::int64_t D) {
  const std::int64_t body = D - D % 8;
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t d = 0; d < body; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), simd::load8(k + d), acc);
  float sum = simd::reduce_add8(acc);
  for (std::int64_t d = body; d < D; ++d) sum += q[d] * widen(k[d]);
  return sum;
}

template <typename W>
VLM_AVX2 void axpy_avx2(float p, const W* v, float* acc, std::int64_t D) {
  const std::int64_t body = D - D % 8;
  const __m256 pv = _mm256_set1_ps(p);
  for (std::int64_t d = 0; d < body; d += 8) {
    _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(pv, simd::load8(v + d), _mm256_loadu_ps(acc + d)));
  }
  for (std::int64_t d = body; d < D; ++d) acc[d] += p * widen(v[d]);
}
#endif

template <typename W>
float dot(const float* q, const W* k, std::int64_t D) {
#if defined(__x86_64__)
  if (simd::cpu_has_avx512()) return dot_avx512(q, k, D);
  if (simd::cpu_has_avx2_fma()) return dot_avx2(q, k, D);
#endif
  return dot_portable(q, k, D);
}

template <typename W>
void axpy(float p, const W* v, float* acc, std::int64_t D) {
#if defined(__x86_64__)
  if (simd::cpu_has_avx512()) return axpy_avx512(p, v, acc, D);
  if (simd::cpu_has_avx2_fma()) return axpy_avx2(p, v, acc, D);
#endif
  axpy_portable(p, v, acc, D);
}

// Asks for `bytes` from p on into the cache (each 64-byte line once).
inline void prefetch_bytes(const void* p, std::int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 0, 3);
}

// scores[h * S + j] = q_h . k_j for the `group` query heads q (D apart) and keys k_0..k_{S-1} (D apart); each block
// of 16 keys stays in the L1 cache for all heads. The keys two blocks ahead, and the block's values (read after
// the softmax), are asked for as the block is scored: the cache of a layer was last touched a whole decode step
// ago, and without this attention waited on memory (23.7-24.6 against 23.4-24.2 ms a bfloat16 step at 556
// positions, four runs of alternating steps on a 2-core Zen 5 EPYC).
template <typename W>
void head_scores(const float* q, std::int64_t group, const W* keys, const W* values, std::int64_t S, std::int64_t D,
                 float* scores) {
  const std::int64_t row_bytes = D * static_cast<std::int64_t>(sizeof(W));
#if defined(__x86_64__)
  const bool avx512 = simd::cpu_has_avx512();
#endif
  for (std::int64_t j0 = 0; j0 < S; j0 += 16) {
    const std::int64_t n = std::min<std::int64_t>(16, S - j0);
    if (j0 + 32 < S) prefetch_bytes(keys + (j0 + 32) * D, std::min<std::int64_t>(16, S - j0 - 32) * row_bytes);
    prefetch_bytes(values + j0 * D, n * row_bytes);
#if defined(__x86_64__)
    if (avx512 && n == 16) {
      for (std::int64_t h = 0; h < group; ++h) dot16_avx512(q + h * D, keys + j0 * D, D, scores + h * S + j0);
      continue;
    }
#endif
    for (std::int64_t j = j0; j < j0 + n; ++j) {
      for (std::int64_t h = 0; h < group; ++h) scores[h * S + j] = dot(q + h * D, keys + j * D, D);
    }
  }
}

// out = sum over j of p[j] * values_j, in order of j, skipping p[j] == 0.
template <typename W>
void weighted_sum(const float* p, const W* values, std::int64_t S, std::int64_t D, float* out) {
#if defined(__x86_64__)
  if (simd::cpu_has_avx512()) return weighted_sum_avx512(p, values, S, D, out);
#endif
  std::fill(out, out + D, 0.f);
  for (std::int64_t j = 0; j < S; ++j) {
    if (p[j] != 0.f) axpy(p[j], values + j * D, out, D);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The layer's passes. Each mirrors one op-by-op block of DecoderLayerImpl::forward and names where that block
// rounds to W.

// RMSNormImpl::forward: float32 statistics, x * rsqrt(mean(x^2) + eps) rounded to W, times the weight, rounded.
template <typename W>
void rms_norm(const float* x, const torch::Tensor& weight, float eps, std::int64_t rows, std::int64_t dim,
              float* out) {
  const W* w = weight.data_ptr<W>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    double sum = 0.0;
    for (std::int64_t i = 0; i < dim; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float scale = 1.f / std::sqrt(static_cast<float>(sum / static_cast<double>(dim)) + eps);
    for (std::int64_t i = 0; i < dim; ++i) o[i] = round_to<W>(widen(w[i]) * round_to<W>(xr[i] * scale));
  }
}

// ProjectionImpl::forward on float32 rows whose values are W's: the few-row kernel when it takes the call; with
// adapters, or more rows than it takes, the Projection's own forward on a W tensor of the rows.
void project(ProjectionImpl& projection, const float* x, std::int64_t rows, float* y, torch::ScalarType dtype) {
  const auto& weight = projection.weight;
  const bool kernel = projection.adapters().empty() && weight.scalar_type() == dtype &&
                      (!projection.bias.defined() || projection.bias.scalar_type() == dtype) &&
                      few_row_linear_into_applies(rows, weight);
  if (kernel) return few_row_linear_into(x, rows, weight, projection.bias, y, projection.coded_weight());
  auto in = torch::from_blob(const_cast<float*>(x), {rows, projection.in_features()}, torch::kFloat).to(dtype);
  auto out = projection.forward(in).to(torch::kFloat).contiguous();
  std::memcpy(y, out.data_ptr<float>(), sizeof(float) * static_cast<std::size_t>(out.numel()));
}

// apply_rotary on [rows, heads, D]: x * cos + rotate_half(x) * sin, each product and the sum rounded to W.
template <typename W>
void rotate(float* x, std::int64_t rows, std::int64_t heads, std::int64_t D, const float* cos, const float* sin) {
  const std::int64_t half = D / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* c = cos + r * D;
    const float* s = sin + r * D;
    for (std::int64_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * D;
      for (std::int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = round_to<W>(round_to<W>(a * c[i]) + round_to<W>(-b * s[i]));
        v[i + half] = round_to<W>(round_to<W>(b * c[i + half]) + round_to<W>(a * s[i + half]));
      }
    }
  }
}

// The new token's keys and values into the cache at index `past`.
template <typename W>
void store_kv(const DecodeStep& step, const KVCache::Slots& slots) {
  const auto capacity = slots.keys.size(2), D = step.head_dim;
  W* keys = slots.keys.data_ptr<W>();
  W* values = slots.values.data_ptr<W>();
  for (std::int64_t r = 0; r < step.rows; ++r) {
    for (std::int64_t g = 0; g < step.kv_heads; ++g) {
      const std::int64_t at = ((r * step.kv_heads + g) * capacity + step.past) * D;
      const float* k = step.k.data() + (r * step.kv_heads + g) * D;
      const float* v = step.v.data() + (r * step.kv_heads + g) * D;
      for (std::int64_t d = 0; d < D; ++d) {
        keys[at + d] = W(k[d]);
        values[at + d] = W(v[d]);
      }
    }
  }
}

// The attention probabilities of one head from its raw scores s[0..S): each score rounded to W, scaled (rounded),
// plus the mask (rounded); softmax in float32, the probabilities rounded to W.
template <typename W>
inline float scaled_score(float raw, float scale, const float* mask, std::int64_t j) {
  const float x = round_to<W>(round_to<W>(raw) * scale);
  return mask ? round_to<W>(x + mask[j]) : x;
}

template <typename W>
void probabilities_portable(float* s, std::int64_t S, float scale, const float* mask) {
  float top = -INFINITY;
  for (std::int64_t j = 0; j < S; ++j) {
    s[j] = scaled_score<W>(s[j], scale, mask, j);
    top = std::max(top, s[j]);
  }
  float sum = 0.f;
  for (std::int64_t j = 0; j < S; ++j) {
    s[j] = std::exp(s[j] - top);
    sum += s[j];
  }
  const float inverse = 1.f / sum;
  for (std::int64_t j = 0; j < S; ++j) s[j] = round_to<W>(s[j] * inverse);
}

#if defined(__x86_64__)
// The same 16 scores at a time, with simd::exp16 for std::exp and the sum in 16 lanes (libtorch's softmax also
// sums in vector lanes, in its own order).
template <typename W>
VLM_AVX512 void probabilities_avx512(float* s, std::int64_t S, float scale, const float* mask) {
  const __m512 scale_v = _mm512_set1_ps(scale);
  __m512 top = _mm512_set1_ps(-INFINITY);
  for (std::int64_t j = 0; j < S; j += 16) {
    const __mmask16 lanes = simd::first_lanes(S - j);
    __m512 x = simd::round16<W>(_mm512_mul_ps(simd::round16<W>(_mm512_maskz_loadu_ps(lanes, s + j)), scale_v));
    if (mask) x = simd::round16<W>(_mm512_add_ps(x, _mm512_maskz_loadu_ps(lanes, mask + j)));
    _mm512_mask_storeu_ps(s + j, lanes, x);
    top = _mm512_mask_max_ps(top, lanes, top, x);
  }
  const __m512 top_v = _mm512_set1_ps(_mm512_reduce_max_ps(top));
  __m512 sum = _mm512_setzero_ps();
  for (std::int64_t j = 0; j < S; j += 16) {
    const __mmask16 lanes = simd::first_lanes(S - j);
    const __m512 e = simd::exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, s + j), top_v));
    _mm512_mask_storeu_ps(s + j, lanes, e);
    sum = _mm512_mask_add_ps(sum, lanes, sum, e);
  }
  const __m512 inverse = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(sum));
  for (std::int64_t j = 0; j < S; j += 16) {
    const __mmask16 lanes = simd::first_lanes(S - j);
    _mm512_mask_storeu_ps(s + j, lanes, simd::round16<W>(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, s + j), inverse)));
  }
}

// The same in 8 lanes; the tail past the last whole 8 in scalar code.
template <typename W>
VLM_AVX2 void probabilities_avx2(float* s, std::int64_t S, float scale, const float* mask) {
  const std::int64_t body = S - S % 8;
  const __m256 scale_v = _mm256_set1_ps(scale);
  __m256 top_v = _mm256_set1_ps(-INFINITY);
  for (std::int64_t j = 0; j < body; j += 8) {
    __m256 x = simd::round8<W>(_mm256_mul_ps(simd::round8<W>(_mm256_loadu_ps(s + j)), scale_v));
    if (mask) x = simd::round8<W>(_mm256_add_ps(x, _mm256_loadu_ps(mask + j)));
    _mm256_storeu_ps(s + j, x);
    top_v = _mm256_max_ps(top_v, x);
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, top_v);
  float top = *std::max_element(lanes, lanes + 8);
  for (std::int64_t j = body; j < S; ++j) {
    s[j] = scaled_score<W>(s[j], scale, mask, j);
    top = std::max(top, s[j]);
  }
  const __m256 top_b = _mm256_set1_ps(top);
  __m256 sum_v = _mm256_setzero_ps();
  for (std::int64_t j = 0; j < body; j += 8) {
    const __m256 e = simd::exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), top_b));
    _mm256_storeu_ps(s + j, e);
    sum_v = _mm256_add_ps(sum_v, e);
  }
  float sum = simd::reduce_add8(sum_v);
  for (std::int64_t j = body; j < S; ++j) {
    s[j] = std::exp(s[j] - top);
    sum += s[j];
  }
  const float inverse = 1.f / sum;
  const __m256 inverse_v = _mm256_set1_ps(inverse);
  for (std::int64_t j = 0; j < body; j += 8) {
    _mm256_storeu_ps(s + j, simd::round8<W>(_mm256_mul_ps(_mm256_loadu_ps(s + j), inverse_v)));
  }
  for (std::int64_t j = body; j < S; ++j) s[j] = round_to<W>(s[j] * inverse);
}
#endif

template <typename W>
void probabilities(float* s, std::int64_t S, float scale, const float* mask) {
#if defined(__x86_64__)
  if (simd::cpu_has_avx512()) return probabilities_avx512<W>(s, S, scale, mask);
  if (simd::cpu_has_avx2_fma()) return probabilities_avx2<W>(s, S, scale, mask);
#endif
  probabilities_portable<W>(s, S, scale, mask);
}

// attention() for one query per row: scores q . k rounded to W, scaled (rounded), plus the mask (rounded); softmax
// in float32, probabilities rounded to W; their sum over the values rounded to W. One task per (row, KV head): its
// `group` query heads read that head's keys and values once, as the grouped matmul does.
template <typename W>
void attend(DecodeStep& step, const KVCache::Slots& slots) {
  const auto D = step.head_dim, S = step.past + 1, capacity = slots.keys.size(2);
  const auto group = step.heads / step.kv_heads;
  // libtorch multiplies a W tensor by a double scalar after converting the scalar to W.
  const float scale = round_to<W>(static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))));
  const W* keys = slots.keys.data_ptr<W>();
  const W* values = slots.values.data_ptr<W>();
  at::parallel_for(0, step.rows * step.kv_heads, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> scores(static_cast<std::size_t>(group * S));
    for (std::int64_t unit = begin; unit < end; ++unit) {
      const std::int64_t r = unit / step.kv_heads, g = unit % step.kv_heads;
      const W* K = keys + (r * step.kv_heads + g) * capacity * D;
      const W* V = values + (r * step.kv_heads + g) * capacity * D;
      const float* mask = step.mask ? step.mask + r * S : nullptr;
      const float* q = step.q.data() + (r * step.heads + g * group) * D;
      head_scores(q, group, K, V, S, D, scores.data());
      for (std::int64_t h = 0; h < group; ++h) {
        float* s = scores.data() + h * S;
        probabilities<W>(s, S, scale, mask);
        float* out = step.attended.data() + (r * step.heads + g * group + h) * D;
        weighted_sum(s, V, S, D, out);
        for (std::int64_t d = 0; d < D; ++d) out[d] = round_to<W>(out[d]);
      }
    }
  });
}

// x += y, rounded to W (the residual adds).
template <typename W>
void add_into(float* x, const float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = round_to<W>(x[i] + y[i]);
}

// SiLU as libtorch 1.13 computes it in W: x / (1 + exp(-x)). Its bfloat16 kernel rounds after each of exp, add
// and divide; float16 goes through float32 (layers.cpp, half_safe) and rounds once.
template <typename W>
inline float silu(float x) {
  return round_to<W>(x / (1.f + std::exp(-x)));
}
template <>
inline float silu<c10::BFloat16>(float x) {
  using B = c10::BFloat16;
  return round_to<B>(x / round_to<B>(1.f + round_to<B>(std::exp(-x))));
}

// gate = silu(gate) * up, each rounded to W, as silu() and the scalar loop below; the exponential comes from
// simd::exp16 / exp8 (float64, rounded once) in place of std::exp, the rest is the same float32 operations.
#if defined(__x86_64__)
template <typename W>
VLM_AVX512 void silu_times_up_avx512(float* gate, const float* up, std::int64_t count) {
  const __m512 one = _mm512_set1_ps(1.f);
  for (std::int64_t i = 0; i < count; i += 16) {
    const __mmask16 mask = simd::first_lanes(count - i);
    const __m512 x = _mm512_maskz_loadu_ps(mask, gate + i);
    const __m512 e = simd::exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    __m512 activated;
    if constexpr (std::is_same_v<W, c10::BFloat16>) {
      activated = simd::round16<W>(_mm512_div_ps(x, simd::round16<W>(_mm512_add_ps(one, simd::round16<W>(e)))));
    } else {
      activated = simd::round16<W>(_mm512_div_ps(x, _mm512_add_ps(one, e)));
    }
    const __m512 product = simd::round16<W>(_mm512_mul_ps(activated, _mm512_maskz_loadu_ps(mask, up + i)));
    _mm512_mask_storeu_ps(gate + i, mask, product);
  }
}

template <typename W>
VLM_AVX2 void silu_times_up_avx2(float* gate, const float* up, std::int64_t count) {
  const __m256 one = _mm256_set1_ps(1.f);
  std::int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 x = _mm256_loadu_ps(gate + i);
    const __m256 e = simd::exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    __m256 activated;
    if constexpr (std::is_same_v<W, c10::BFloat16>) {
      activated = simd::round8<W>(_mm256_div_ps(x, simd::round8<W>(_mm256_add_ps(one, simd::round8<W>(e)))));
    } else {
      activated = simd::round8<W>(_mm256_div_ps(x, _mm256_add_ps(one, e)));
    }
    _mm256_storeu_ps(gate + i, simd::round8<W>(_mm256_mul_ps(activated, _mm256_loadu_ps(up + i))));
  }
  for (; i < count; ++i) gate[i] = round_to<W>(silu<W>(gate[i]) * up[i]);
}
#endif

// act(gate) * up, each rounded to W; SiLU inline, other activations through the module's own function.
template <typename W>
void gate_times_up(const GatedMLPImpl& mlp, float* gate, const float* up, std::int64_t rows, std::int64_t n,
                   torch::ScalarType dtype) {
  const auto count = rows * n;
  const auto& name = mlp.activation_name();
  if (name == "silu" || name == "swish") {
#if defined(__x86_64__)
    if (simd::cpu_has_avx512()) return silu_times_up_avx512<W>(gate, up, count);
    if (simd::cpu_has_avx2_fma()) return silu_times_up_avx2<W>(gate, up, count);
#endif
    for (std::int64_t i = 0; i < count; ++i) gate[i] = round_to<W>(silu<W>(gate[i]) * up[i]);
    return;
  }
  auto activated = mlp.activation()(torch::from_blob(gate, {rows, n}, torch::kFloat).to(dtype));
  auto widened = activated.to(torch::kFloat).contiguous();
  std::memcpy(gate, widened.data_ptr<float>(), sizeof(float) * static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) gate[i] = round_to<W>(gate[i] * up[i]);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
template <typename W>
static void layer_step(DecodeStep& step, float* hidden, std::int64_t layer_index, RMSNormImpl& input_norm,
                       RMSNormImpl& post_norm, ProjectionImpl& q_proj, ProjectionImpl& k_proj, ProjectionImpl& v_proj,
                       ProjectionImpl& o_proj, GatedMLPImpl& mlp) {
  const auto rows = step.rows, H = step.hidden, D = step.head_dim;
  rms_norm<W>(hidden, input_norm.weight, step.eps, rows, H, step.normed.data());
  project(q_proj, step.normed.data(), rows, step.q.data(), step.dtype);
  project(k_proj, step.normed.data(), rows, step.k.data(), step.dtype);
  project(v_proj, step.normed.data(), rows, step.v.data(), step.dtype);
  rotate<W>(step.q.data(), rows, step.heads, D, step.cos, step.sin);
  rotate<W>(step.k.data(), rows, step.kv_heads, D, step.cos, step.sin);
  const auto slots = step.cache->extend(layer_index, 1, rows, step.kv_heads, D,
                                        torch::TensorOptions().dtype(step.dtype));
  if (slots.length != step.past + 1) {
    fail(ErrorCode::internal, "decode step: layer " + std::to_string(layer_index) + " caches " +
                                  std::to_string(slots.length) + " tokens, expected " +
                                  std::to_string(step.past + 1));
  }
  store_kv<W>(step, slots);
  attend<W>(step, slots);
  project(o_proj, step.attended.data(), rows, step.projected.data(), step.dtype);
  add_into<W>(hidden, step.projected.data(), rows * H);

  rms_norm<W>(hidden, post_norm.weight, step.eps, rows, H, step.normed.data());
  project(*mlp.gate_proj, step.normed.data(), rows, step.gate.data(), step.dtype);
  project(*mlp.up_proj, step.normed.data(), rows, step.up.data(), step.dtype);
  gate_times_up<W>(mlp, step.gate.data(), step.up.data(), rows, step.intermediate, step.dtype);
  project(*mlp.down_proj, step.gate.data(), rows, step.projected.data(), step.dtype);
  add_into<W>(hidden, step.projected.data(), rows * H);
}

void DecoderLayerImpl::decode_step(DecodeStep& step, float* hidden, std::int64_t layer_index) {
  auto& attn = *self_attn_;
  switch (step.dtype) {
    case torch::kFloat:
      return layer_step<float>(step, hidden, layer_index, *input_layernorm_, *post_attention_layernorm_,
                               *attn.q_proj, *attn.k_proj, *attn.v_proj, *attn.o_proj, *mlp_);
    case torch::kBFloat16:
      return layer_step<c10::BFloat16>(step, hidden, layer_index, *input_layernorm_, *post_attention_layernorm_,
                                       *attn.q_proj, *attn.k_proj, *attn.v_proj, *attn.o_proj, *mlp_);
    case torch::kHalf:
      return layer_step<c10::Half>(step, hidden, layer_index, *input_layernorm_, *post_attention_layernorm_,
                                   *attn.q_proj, *attn.k_proj, *attn.v_proj, *attn.o_proj, *mlp_);
    default:
      fail(ErrorCode::internal, std::string("decode step: no fused path for ") + c10::toString(step.dtype));
  }
}

bool DecoderImpl::fused_decode_applies(const torch::Tensor& x, const CosSin& rope, const torch::Tensor& mask,
                                       const KVCache* cache) const {
  if (!fused_decode || cache == nullptr || layers_.empty()) return false;
  if (torch::GradMode::is_enabled() || at::autocast::is_cpu_enabled()) return false;
  if (!x.device().is_cpu() || x.dim() != 3 || x.size(1) != 1 || x.size(2) != config_.hidden_size) return false;
  const auto dtype = x.scalar_type();
  if (dtype != torch::kFloat && dtype != torch::kBFloat16 && dtype != torch::kHalf) return false;
  if (norm_->weight.scalar_type() != dtype) return false;
  for (const auto& layer : layers_) {
    if (!layer->norms_are(dtype)) return false;
  }
  const auto rows = x.size(0), D = config_.head_dim;
  if (D % 2 != 0 || config_.num_kv_heads <= 0 || config_.num_heads % config_.num_kv_heads != 0) return false;
  if (cache->length() > 0 && cache->batch_size() != rows) return false;
  auto fits = [&](const torch::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.dim() == 3 && t.size(1) == 1 && t.size(2) == D &&
           (t.size(0) == rows || t.size(0) == 1);
  };
  if (!fits(rope.cos) || !fits(rope.sin)) return false;
  return !mask.defined() || (mask.device().is_cpu() && mask.numel() == rows * (cache->length() + 1));
}

torch::Tensor DecoderImpl::decode_step(const torch::Tensor& x, const CosSin& rope, const torch::Tensor& mask,
                                       KVCache& cache) {
  const auto rows = x.size(0), H = config_.hidden_size, D = config_.head_dim;
  DecodeStep step;
  step.dtype = x.scalar_type();
  step.rows = rows;
  step.hidden = H;
  step.heads = config_.num_heads;
  step.kv_heads = config_.num_kv_heads;
  step.head_dim = D;
  step.intermediate = config_.intermediate_size;
  step.past = cache.length();
  step.eps = static_cast<float>(config_.rms_norm_eps);
  step.cache = &cache;

  // The residual stream, a float32 copy (x itself is the caller's embeddings).
  auto hidden = torch::empty({rows, H}, torch::kFloat);
  hidden.copy_(x.reshape({rows, H}));
  auto widen_rows = [&](const torch::Tensor& t, std::int64_t width) {
    return t.expand({rows, 1, width}).reshape({rows, width}).to(torch::kFloat).contiguous();
  };
  const auto cos = widen_rows(rope.cos, D), sin = widen_rows(rope.sin, D);
  step.cos = cos.data_ptr<float>();
  step.sin = sin.data_ptr<float>();
  torch::Tensor mask_rows;
  if (mask.defined()) {
    mask_rows = mask.reshape({rows, step.past + 1}).to(torch::kFloat).contiguous();
    step.mask = mask_rows.data_ptr<float>();
  }
  auto size = [](std::int64_t n) { return static_cast<std::size_t>(n); };
  step.normed.resize(size(rows * H));
  step.q.resize(size(rows * step.heads * D));
  step.k.resize(size(rows * step.kv_heads * D));
  step.v.resize(size(rows * step.kv_heads * D));
  step.attended.resize(size(rows * step.heads * D));
  step.projected.resize(size(rows * H));
  step.gate.resize(size(rows * step.intermediate));
  step.up.resize(size(rows * step.intermediate));

  float* h = hidden.data_ptr<float>();
  for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->decode_step(step, h, static_cast<std::int64_t>(i));
  return norm_(hidden.to(step.dtype).view({rows, 1, H}));
}

}  // namespace vlm
