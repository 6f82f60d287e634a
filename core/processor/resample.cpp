// A port of Pillow's convolution resampler (libImaging/Resample.c) and of its nearest-neighbour scaling
// (ImagingScaleAffine in Geometry.c), restricted to 8-bit RGB. Every floating-point expression keeps Pillow's
// operand order and types, because the fixed-point coefficients are rounded from them: a different but
// "equivalent" formula changes a pixel now and then.
#include "processor/resample.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "base/error.h"
#include "processor/parallel.h"

namespace vlm {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  // Pillow writes the window constants as float literals; they are promoted to double here too.
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::box: return {box_filter, 0.5};
    case ResampleFilter::bilinear: return {bilinear_filter, 1.0};
    case ResampleFilter::hamming: return {hamming_filter, 1.0};
    case ResampleFilter::bicubic: return {bicubic_filter, 2.0};
    case ResampleFilter::lanczos: return {lanczos_filter, 3.0};
    case ResampleFilter::nearest: break;
  }
  fail(ErrorCode::internal, "resample: no convolution filter for nearest");
}

// Per output position: first input index, number of taps, and `ksize` fixed-point weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> weights;
};

// precompute_coeffs + normalize_coeffs_8bpc for the default box (0, in_size).
Coefficients precompute_coefficients(int in_size, int out_size, const Filter& filter) {
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  const double support = filter.support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  const double inv_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      const double w = filter.fn((x + xmin - center + 0.5) * inv_filterscale);
      k[x] = w;
      ww += w;
    }
    if (ww != 0.0) {
      for (int x = 0; x < xmax; ++x) k[x] /= ww;
    }
    std::int32_t* out = &c.weights[static_cast<std::size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      out[x] = k[x] < 0 ? static_cast<int>(-0.5 + k[x] * (1 << kPrecisionBits))
                        : static_cast<int>(0.5 + k[x] * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline std::uint8_t clip8(std::int32_t v) {
  const std::int32_t s = v >> kPrecisionBits;  // arithmetic shift, as in Pillow
  return s < 0 ? 0 : (s > 255 ? 255 : static_cast<std::uint8_t>(s));
}

// Kernels up to this many taps (scale factors below about 3) run the horizontal pass directly; longer ones on a
// transposed image, where the row kernel vectorises (measured on 1024x768 -> 252x168, 512x384, 1036x756).
constexpr int kDirectHorizontalTaps = 13;

// The hot loops. Integer sums are exact, so accumulating whole rows at a time (which vectorises) gives the same
// bytes as Pillow's tap-by-tap order. An AVX2 build of each is chosen at run time where the CPU has it (by hand
// rather than with target_clones: ifunc resolvers run before the ThreadSanitizer runtime and crash it).
#define VLM_ACCUMULATE_ROW_BODY \
  for (std::size_t i = 0; i < n; ++i) acc[i] += src[i] * weight;
#define VLM_CLIP_ROW_BODY                                                                 \
  for (std::size_t i = 0; i < n; ++i) {                                                   \
    const std::int32_t s = acc[i] >> kPrecisionBits; /* arithmetic shift, as in clip8 */ \
    dst[i] = static_cast<std::uint8_t>(s < 0 ? 0 : (s > 255 ? 255 : s));                  \
  }

using AccumulateRowFn = void (*)(std::int32_t*, const std::uint8_t*, std::int32_t, std::size_t);
using ClipRowFn = void (*)(const std::int32_t*, std::uint8_t*, std::size_t);

void accumulate_row_generic(std::int32_t* acc, const std::uint8_t* src, std::int32_t weight, std::size_t n) {
  VLM_ACCUMULATE_ROW_BODY
}
void clip_row_generic(const std::int32_t* acc, std::uint8_t* dst, std::size_t n) { VLM_CLIP_ROW_BODY }

#if defined(__x86_64__) && defined(__GNUC__)
[[gnu::target("avx2")]] void accumulate_row_avx2(std::int32_t* acc, const std::uint8_t* src, std::int32_t weight,
                                                 std::size_t n) {
  VLM_ACCUMULATE_ROW_BODY
}
[[gnu::target("avx2")]] void clip_row_avx2(const std::int32_t* acc, std::uint8_t* dst, std::size_t n) {
  VLM_CLIP_ROW_BODY
}
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#else
constexpr AccumulateRowFn accumulate_row_avx2 = accumulate_row_generic;
constexpr ClipRowFn clip_row_avx2 = clip_row_generic;
bool cpu_has_avx2() { return false; }
#endif
#undef VLM_ACCUMULATE_ROW_BODY
#undef VLM_CLIP_ROW_BODY

void accumulate_row(std::int32_t* acc, const std::uint8_t* src, std::int32_t weight, std::size_t n) {
  static const AccumulateRowFn fn = cpu_has_avx2() ? accumulate_row_avx2 : accumulate_row_generic;
  fn(acc, src, weight, n);
}

void clip_row(const std::int32_t* acc, std::uint8_t* dst, std::size_t n) {
  static const ClipRowFn fn = cpu_has_avx2() ? clip_row_avx2 : clip_row_generic;
  fn(acc, dst, n);
}

// One resampling pass along the rows of `in` (rows `stride` bytes apart; row r is input index row_offset + r):
// output row j = clip(sum_k weight[j][k] * input row (first[j] + k)). Pillow's vertical pass; the horizontal pass
// runs it on a transposed image.
void convolve_rows(const std::uint8_t* in, std::size_t stride, int row_offset, const Coefficients& c, int out_rows,
                   std::uint8_t* out, int threads) {
  processor_detail::parallel_ranges(static_cast<std::size_t>(out_rows), threads, [&](std::size_t y0, std::size_t y1) {
    std::vector<std::int32_t> acc(stride);
    for (std::size_t yy = y0; yy < y1; ++yy) {
      const std::int32_t* k = &c.weights[yy * c.ksize];
      std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
      const int first = c.first[yy] - row_offset;
      for (int y = 0, n = c.count[yy]; y < n; ++y) {
        accumulate_row(acc.data(), in + static_cast<std::size_t>(first + y) * stride, k[y], stride);
      }
      clip_row(acc.data(), out + yy * stride, stride);
    }
  });
}

// dst (cols rows of `rows` RGB pixels) = the transpose of src (rows rows of `cols` RGB pixels, `stride` apart).
void transpose_rgb(const std::uint8_t* src, std::size_t stride, int rows, int cols, std::uint8_t* dst, int threads) {
  constexpr int kBlock = 32;
  const std::size_t dst_stride = static_cast<std::size_t>(rows) * 3;
  const std::size_t blocks = (static_cast<std::size_t>(cols) + kBlock - 1) / kBlock;
  // Captured by value: byte stores may alias anything, and would force reloads of captured references.
  processor_detail::parallel_ranges(blocks, threads, [=](std::size_t b0, std::size_t b1) {
    for (int y0 = 0; y0 < rows; y0 += kBlock) {
      const int y1 = std::min(rows, y0 + kBlock);
      for (std::size_t b = b0; b < b1; ++b) {
        const int x0 = static_cast<int>(b) * kBlock, x1 = std::min(cols, x0 + kBlock);
        // Contiguous writes, strided reads (the cheaper way round).
        for (int x = x0; x < x1; ++x) {
          std::uint8_t* d = dst + static_cast<std::size_t>(x) * dst_stride + static_cast<std::size_t>(y0) * 3;
          const std::uint8_t* s = src + static_cast<std::size_t>(y0) * stride + static_cast<std::size_t>(x) * 3;
          for (int y = y0; y < y1; ++y, d += 3, s += stride) {
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
          }
        }
      }
    }
  });
}

// One output pixel of the horizontal pass; kTaps > 0 fixes the tap count at compile time.
template <int kTaps>
inline void horizontal_pixel(const std::uint8_t* src, const std::int32_t* k, int n, std::uint8_t* dst) {
  std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
  const int taps = kTaps > 0 ? kTaps : n;
  for (int x = 0; x < taps; ++x) {
    s0 += src[x * 3 + 0] * k[x];
    s1 += src[x * 3 + 1] * k[x];
    s2 += src[x * 3 + 2] * k[x];
  }
  dst[0] = clip8(s0);
  dst[1] = clip8(s1);
  dst[2] = clip8(s2);
}

// Pillow's horizontal pass tap by tap, for short kernels where transposing costs more than it saves.
void resample_horizontal_direct(const std::uint8_t* in, std::size_t stride, int rows, const Coefficients& c,
                                int out_width, std::uint8_t* out, int threads) {
  const Coefficients* coeffs = &c;
  processor_detail::parallel_ranges(static_cast<std::size_t>(rows), threads, [=](std::size_t y0, std::size_t y1) {
    const int ksize = coeffs->ksize;
    const int* first = coeffs->first.data();
    const int* count = coeffs->count.data();
    const std::int32_t* weights = coeffs->weights.data();
    for (std::size_t y = y0; y < y1; ++y) {
      const std::uint8_t* line = in + y * stride;
      std::uint8_t* dst = out + y * static_cast<std::size_t>(out_width) * 3;
      for (int xx = 0; xx < out_width; ++xx) {
        const std::int32_t* k = weights + static_cast<std::size_t>(xx) * ksize;
        const std::uint8_t* src = line + static_cast<std::size_t>(first[xx]) * 3;
        const int n = count[xx];
        // Fixed tap counts unroll fully; the edges (fewer taps) take the general loop.
        if (n == ksize && ksize == 5) {
          horizontal_pixel<5>(src, k, 5, dst + xx * 3);
        } else if (n == ksize && ksize == 9) {
          horizontal_pixel<9>(src, k, 9, dst + xx * 3);
        } else if (n == ksize && ksize == 13) {
          horizontal_pixel<13>(src, k, 13, dst + xx * 3);
        } else {
          horizontal_pixel<0>(src, k, n, dst + xx * 3);
        }
      }
    }
  });
}

// Pillow's horizontal pass over `rows` rows of `in` (in_width pixels, `stride` apart) into out (rows x out_width).
void resample_horizontal(const std::uint8_t* in, std::size_t stride, int rows, int in_width, const Coefficients& c,
                         int out_width, std::uint8_t* out, int threads) {
  if (c.ksize <= kDirectHorizontalTaps) {
    resample_horizontal_direct(in, stride, rows, c, out_width, out, threads);
    return;
  }
  const std::size_t column = static_cast<std::size_t>(rows) * 3;
  std::vector<std::uint8_t> columns(static_cast<std::size_t>(in_width) * column);
  transpose_rgb(in, stride, rows, in_width, columns.data(), threads);
  std::vector<std::uint8_t> resampled(static_cast<std::size_t>(out_width) * column);
  convolve_rows(columns.data(), column, 0, c, out_width, resampled.data(), threads);
  transpose_rgb(resampled.data(), column, out_width, rows, out, threads);
}

// ImagingScaleAffine with a = (in/out, 0, 0, 0, in/out, 0): positions accumulate by repeated addition.
RgbImage resize_nearest(const RgbImage& in, int width, int height) {
  RgbImage out;
  out.width = width;
  out.height = height;
  out.pixels.assign(static_cast<std::size_t>(width) * height * 3, 0);  // Pillow fills unmapped pixels with 0
  const double a0 = static_cast<double>(static_cast<float>(in.width) - 0.0f) / width;
  const double a4 = static_cast<double>(static_cast<float>(in.height) - 0.0f) / height;
  auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
  std::vector<int> xin(width, -1);
  double xo = 0.0 + a0 * 0.5;
  for (int x = 0; x < width; ++x) {
    const int xi = coord(xo);
    if (xi >= 0 && xi < in.width) xin[x] = xi;
    xo += a0;
  }
  double yo = 0.0 + a4 * 0.5;
  for (int y = 0; y < height; ++y) {
    const int yi = coord(yo);
    if (yi >= 0 && yi < in.height) {
      std::uint8_t* dst = out.at(0, y);
      for (int x = 0; x < width; ++x) {
        if (xin[x] < 0) continue;
        const std::uint8_t* src = in.at(xin[x], yi);
        dst[x * 3 + 0] = src[0];
        dst[x * 3 + 1] = src[1];
        dst[x * 3 + 2] = src[2];
      }
    }
    yo += a4;
  }
  return out;
}

}  // namespace

ResampleFilter resample_filter_from_pil(int value, const std::string& where) {
  switch (value) {
    case 0: return ResampleFilter::nearest;
    case 1: return ResampleFilter::lanczos;
    case 2: return ResampleFilter::bilinear;
    case 3: return ResampleFilter::bicubic;
    case 4: return ResampleFilter::box;
    case 5: return ResampleFilter::hamming;
    default: break;
  }
  fail(ErrorCode::unsupported,
       where + ": resample = " + std::to_string(value) +
           " is not supported; use one of Pillow's 0 (NEAREST), 1 (LANCZOS), 2 (BILINEAR), 3 (BICUBIC), 4 (BOX), "
           "5 (HAMMING)");
}

const char* resample_filter_name(ResampleFilter filter) {
  switch (filter) {
    case ResampleFilter::nearest: return "nearest";
    case ResampleFilter::lanczos: return "lanczos";
    case ResampleFilter::bilinear: return "bilinear";
    case ResampleFilter::bicubic: return "bicubic";
    case ResampleFilter::box: return "box";
    case ResampleFilter::hamming: return "hamming";
  }
  return "?";
}

RgbImage resize_image(const RgbImage& image, int width, int height, ResampleFilter filter, int threads) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3) {
    fail(ErrorCode::invalid_argument, "resize: the input image is empty or its pixel buffer does not hold " +
                                          std::to_string(image.width) + "x" + std::to_string(image.height) +
                                          " RGB pixels");
  }
  if (width < 1 || height < 1) {
    fail(ErrorCode::invalid_argument, "resize: target size " + std::to_string(width) + "x" + std::to_string(height) +
                                          " must be at least 1x1");
  }
  // Pillow allocates coefficient tables of out_size * ksize doubles; refuse sizes that could not be allocated.
  constexpr int kMaxSide = 1 << 20;
  if (width > kMaxSide || height > kMaxSide) {
    fail(ErrorCode::limit_exceeded, "resize: target size " + std::to_string(width) + "x" + std::to_string(height) +
                                        " exceeds " + std::to_string(kMaxSide) + " pixels on a side");
  }
  if (width == image.width && height == image.height) return image;  // Image.resize returns a copy
  if (filter == ResampleFilter::nearest) return resize_nearest(image, width, height);

  const Filter f = filter_for(filter);
  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;
  RgbImage out;
  out.width = width;
  out.height = height;
  if (!need_horizontal) {
    const Coefficients vert = precompute_coefficients(image.height, height, f);
    out.pixels.resize(static_cast<std::size_t>(width) * height * 3);
    convolve_rows(image.pixels.data(), static_cast<std::size_t>(image.width) * 3, 0, vert, height, out.pixels.data(),
                  threads);
    return out;
  }
  const Coefficients horiz = precompute_coefficients(image.width, width, f);
  const std::size_t in_stride = static_cast<std::size_t>(image.width) * 3;
  out.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  if (!need_vertical) {
    resample_horizontal(image.pixels.data(), in_stride, height, image.width, horiz, width, out.pixels.data(), threads);
    return out;
  }
  const Coefficients vert = precompute_coefficients(image.height, height, f);
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
  // width does (python-pillow/Pillow#9549). The 8-bit intermediate image makes the order visible in the output.
  // The rule was recovered by comparing Image.resize with both two-step orders over many sizes.
  const bool vertical_first =
      height < image.height && (image.height - height) > 2 * (static_cast<long long>(image.width) - width);
  if (vertical_first) {
    std::vector<std::uint8_t> temp(in_stride * height);
    convolve_rows(image.pixels.data(), in_stride, 0, vert, height, temp.data(), threads);
    resample_horizontal(temp.data(), in_stride, height, image.width, horiz, width, out.pixels.data(), threads);
    return out;
  }
  // Only the input rows the vertical pass reads go through the horizontal pass.
  const int ybox_first = vert.first[0];
  const int ybox_last = vert.first[height - 1] + vert.count[height - 1];
  const std::size_t out_stride = static_cast<std::size_t>(width) * 3;
  std::vector<std::uint8_t> temp(out_stride * (ybox_last - ybox_first));
  resample_horizontal(image.pixels.data() + ybox_first * in_stride, in_stride, ybox_last - ybox_first, image.width,
                      horiz, width, temp.data(), threads);
  convolve_rows(temp.data(), out_stride, ybox_first, vert, height, out.pixels.data(), threads);
  return out;
}

}  // namespace vlm
