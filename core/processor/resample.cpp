// A port of Pillow's convolution resampler (libImaging/Resample.c) and of its nearest-neighbour scaling
// (ImagingScaleAffine in Geometry.c), restricted to 8-bit RGB. Every floating-point expression keeps Pillow's
// operand order and types, because the fixed-point coefficients are rounded from them: a different but
// "equivalent" formula changes a pixel now and then.
#include "processor/resample.h"

#include <cmath>
#include <cstdint>
#include <limits>
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

// Horizontal pass over input rows [row0, row0 + rows): out has `rows` rows of out_width pixels.
void resample_horizontal(const RgbImage& in, int row0, int rows, const Coefficients& c, int out_width,
                         std::vector<std::uint8_t>& out, int threads) {
  out.resize(static_cast<std::size_t>(rows) * out_width * 3);
  processor_detail::parallel_ranges(static_cast<std::size_t>(rows), threads, [&](std::size_t y0, std::size_t y1) {
    for (std::size_t y = y0; y < y1; ++y) {
      const std::uint8_t* line = in.at(0, row0 + static_cast<int>(y));
      std::uint8_t* dst = out.data() + y * out_width * 3;
      for (int xx = 0; xx < out_width; ++xx) {
        const std::int32_t* k = &c.weights[static_cast<std::size_t>(xx) * c.ksize];
        const std::uint8_t* src = line + static_cast<std::size_t>(c.first[xx]) * 3;
        std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int x = 0, n = c.count[xx]; x < n; ++x) {
          s0 += src[x * 3 + 0] * k[x];
          s1 += src[x * 3 + 1] * k[x];
          s2 += src[x * 3 + 2] * k[x];
        }
        dst[xx * 3 + 0] = clip8(s0);
        dst[xx * 3 + 1] = clip8(s1);
        dst[xx * 3 + 2] = clip8(s2);
      }
    }
  });
}

// Vertical pass: `in` rows are `stride` bytes; row r of `in` is input row (row_offset + r).
void resample_vertical(const std::uint8_t* in, std::size_t stride, int row_offset, const Coefficients& c,
                       int out_height, std::uint8_t* out, int threads) {
  processor_detail::parallel_ranges(static_cast<std::size_t>(out_height), threads, [&](std::size_t y0, std::size_t y1) {
    // Integer sums are exact, so accumulating row by row (vectorisable) equals Pillow's tap-by-tap order.
    std::vector<std::int32_t> acc(stride);
    for (std::size_t yy = y0; yy < y1; ++yy) {
      const std::int32_t* k = &c.weights[yy * c.ksize];
      std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
      const int first = c.first[yy] - row_offset;
      for (int y = 0, n = c.count[yy]; y < n; ++y) {
        const std::uint8_t* src = in + static_cast<std::size_t>(first + y) * stride;
        const std::int32_t w = k[y];
        for (std::size_t i = 0; i < stride; ++i) acc[i] += src[i] * w;
      }
      std::uint8_t* dst = out + yy * stride;
      for (std::size_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
    }
  });
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
    resample_vertical(image.pixels.data(), static_cast<std::size_t>(image.width) * 3, 0, vert, height,
                      out.pixels.data(), threads);
    return out;
  }
  const Coefficients horiz = precompute_coefficients(image.width, width, f);
  if (!need_vertical) {
    resample_horizontal(image, 0, image.height, horiz, width, out.pixels, threads);
    return out;
  }
  const Coefficients vert = precompute_coefficients(image.height, height, f);
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
  // width does (python-pillow/Pillow#9549). The 8-bit intermediate image makes the order visible in the output.
  // The rule was recovered by comparing Image.resize with both two-step orders over many sizes.
  const bool vertical_first =
      height < image.height && (image.height - height) > 2 * (static_cast<long long>(image.width) - width);
  if (vertical_first) {
    RgbImage temp;
    temp.width = image.width;
    temp.height = height;
    temp.pixels.resize(static_cast<std::size_t>(image.width) * height * 3);
    resample_vertical(image.pixels.data(), static_cast<std::size_t>(image.width) * 3, 0, vert, height,
                      temp.pixels.data(), threads);
    resample_horizontal(temp, 0, height, horiz, width, out.pixels, threads);
    return out;
  }
  // Only the input rows the vertical pass reads go through the horizontal pass.
  const int ybox_first = vert.first[0];
  const int ybox_last = vert.first[height - 1] + vert.count[height - 1];
  std::vector<std::uint8_t> temp;
  resample_horizontal(image, ybox_first, ybox_last - ybox_first, horiz, width, temp, threads);
  out.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  resample_vertical(temp.data(), static_cast<std::size_t>(width) * 3, ybox_first, vert, height, out.pixels.data(),
                    threads);
  return out;
}

}  // namespace vlm
