#include "generate/greedy_pick.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "base/error.h"
#include "model/simd.h"

namespace vlm {

namespace {

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined source operand inside the _mm512_reduce_* intrinsics, as in matvec.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// low += lanes 0-7 of sum, high += lanes 8-15, in float64.
VLM_AVX512 inline void add_widened(__m512 sum, __m512d& low, __m512d& high) {
  low = _mm512_add_pd(low, _mm512_cvtps_pd(_mm512_castps512_ps256(sum)));
  high = _mm512_add_pd(high,
                       _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(sum), 1))));
}

// The maximum's index and log_softmax there for one row, or false (a NaN, no finite maximum, an index beyond
// int32) for the caller's libtorch path. The second pass sums exp(x - max), as log_softmax does (in its own order);
// log_softmax at the maximum is then -log(sum).
VLM_AVX512 bool pick_row_avx512(const float* x, std::int64_t V, std::int64_t& index, float& log_prob) {
  if (V > std::numeric_limits<std::int32_t>::max() - 16) return false;
  const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
  __m512 best = minus_inf;
  __m512i best_at = _mm512_setzero_si512();
  __m512i at = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  __mmask16 nan = 0;
  for (std::int64_t j = 0; j < V; j += 16) {
    const __m512 v = _mm512_mask_loadu_ps(minus_inf, simd::first_lanes(V - j), x + j);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __mmask16 greater = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);  // strictly: a lane keeps its first maximum
    best = _mm512_mask_mov_ps(best, greater, v);
    best_at = _mm512_mask_mov_epi32(best_at, greater, at);
    at = _mm512_add_epi32(at, step);
  }
  if (nan) return false;
  const float top = _mm512_reduce_max_ps(best);
  if (!std::isfinite(top)) return false;
  index = _mm512_mask_reduce_min_epi32(_mm512_cmp_ps_mask(best, _mm512_set1_ps(top), _CMP_EQ_OQ), best_at);
  const __m512 top_v = _mm512_set1_ps(top);
  // float32 lanes over blocks of 256 scores, each block's sums added into float64 lanes: the error of a 151936-wide
  // float32 sum (1e-5 relative, more than libtorch's) stays out of the result.
  __m512d total0 = _mm512_setzero_pd(), total1 = _mm512_setzero_pd();
  constexpr std::int64_t block = 256;
  for (std::int64_t b = 0; b < V; b += block) {
    const std::int64_t end = std::min(V, b + block);
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    std::int64_t j = b;
    for (; j + 32 <= end; j += 32) {
      sum0 = _mm512_add_ps(sum0, simd::exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), top_v)));
      sum1 = _mm512_add_ps(sum1, simd::exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j + 16), top_v)));
    }
    for (; j < end; j += 16) {  // masked-off lanes read -inf: exp gives 0
      const __m512 v = _mm512_mask_loadu_ps(minus_inf, simd::first_lanes(end - j), x + j);
      sum0 = _mm512_add_ps(sum0, simd::exp16(_mm512_sub_ps(v, top_v)));
    }
    add_widened(sum0, total0, total1);
    add_widened(sum1, total0, total1);
  }
  log_prob = static_cast<float>(-std::log(_mm512_reduce_add_pd(_mm512_add_pd(total0, total1))));
  return true;
}

// pick_row_avx512 in 8 lanes; the scores past the last whole 8 in scalar code.
VLM_AVX2 bool pick_row_avx2(const float* x, std::int64_t V, std::int64_t& index, float& log_prob) {
  if (V > std::numeric_limits<std::int32_t>::max() - 8) return false;
  const std::int64_t body = V - V % 8;
  __m256 best = _mm256_set1_ps(-INFINITY);
  __m256i best_at = _mm256_setzero_si256();
  __m256i at = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i step = _mm256_set1_epi32(8);
  __m256 nan = _mm256_setzero_ps();
  for (std::int64_t j = 0; j < body; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256 greater = _mm256_cmp_ps(v, best, _CMP_GT_OQ);  // strictly: a lane keeps its first maximum
    best = _mm256_blendv_ps(best, v, greater);
    best_at = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(best_at), _mm256_castsi256_ps(at), greater));
    at = _mm256_add_epi32(at, step);
  }
  if (_mm256_movemask_ps(nan) != 0) return false;
  float lanes[8];
  std::int32_t lane_at[8];
  _mm256_storeu_ps(lanes, best);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lane_at), best_at);
  float top = -INFINITY;
  std::int64_t top_at = -1;
  for (int i = 0; i < 8; ++i) {
    if (lanes[i] > top || (lanes[i] == top && top_at >= 0 && lane_at[i] < top_at)) {
      top = lanes[i];
      top_at = lane_at[i];
    }
  }
  for (std::int64_t j = body; j < V; ++j) {  // later than every lane's index: only a larger value wins
    if (std::isnan(x[j])) return false;
    if (x[j] > top) {
      top = x[j];
      top_at = j;
    }
  }
  if (!std::isfinite(top)) return false;
  index = top_at;
  const __m256 top_v = _mm256_set1_ps(top);
  __m256d total = _mm256_setzero_pd();
  constexpr std::int64_t block = 256;
  for (std::int64_t b = 0; b < body; b += block) {
    const std::int64_t end = std::min(body, b + block);
    __m256 sum = _mm256_setzero_ps();
    for (std::int64_t j = b; j < end; j += 8) {
      sum = _mm256_add_ps(sum, simd::exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), top_v)));
    }
    total = _mm256_add_pd(total, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(sum)),
                                               _mm256_cvtps_pd(_mm256_extractf128_ps(sum, 1))));
  }
  double lanes_sum[4];
  _mm256_storeu_pd(lanes_sum, total);
  double sum = (lanes_sum[0] + lanes_sum[1]) + (lanes_sum[2] + lanes_sum[3]);
  for (std::int64_t j = body; j < V; ++j) sum += std::exp(static_cast<double>(x[j]) - top);
  log_prob = static_cast<float>(-std::log(sum));
  return true;
}
#endif

}  // namespace

GreedyPick greedy_pick(const torch::Tensor& scores) {
  if (scores.dim() != 2 || scores.scalar_type() != torch::kFloat) {
    fail(ErrorCode::internal, "greedy_pick: scores must be a float32 [rows, V] tensor, not " +
                                  c10::str(scores.scalar_type()) + " " + c10::str(scores.sizes()));
  }
  const auto rows = scores.size(0), V = scores.size(1);
  GreedyPick pick{torch::empty({rows}, torch::kLong), torch::empty({rows}, torch::kFloat)};
  auto* index = pick.index.data_ptr<std::int64_t>();
  auto* log_prob = pick.log_prob.data_ptr<float>();
  torch::Tensor host = scores.device().is_cpu() ? scores.contiguous() : torch::Tensor();
  for (std::int64_t r = 0; r < rows; ++r) {
#if defined(__x86_64__)
    if (host.defined() && V > 0) {
      const float* row = host.data_ptr<float>() + r * V;
      if (simd::cpu_has_avx512() ? pick_row_avx512(row, V, index[r], log_prob[r])
                                 : simd::cpu_has_avx2_fma() && pick_row_avx2(row, V, index[r], log_prob[r])) {
        continue;
      }
    }
#endif
    const auto row = scores.select(0, r);
    const auto at = row.argmax();
    index[r] = at.item<std::int64_t>();
    log_prob[r] = torch::log_softmax(row, -1).index({at}).item<float>();
  }
  return pick;
}

}  // namespace vlm
