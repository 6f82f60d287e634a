#include "processor/image_processor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "base/fs.h"
#include "processor/parallel.h"
#include "processor/processor_common.h"

namespace vlm {

namespace processor_detail {

std::string describe_key(const PreprocessorConfig& config, const std::string& key) { return config.raw.describe(key); }

std::string size_text(std::int64_t height, std::int64_t width) {
  return std::to_string(height) + "x" + std::to_string(width) + " (height x width)";
}

CommonSettings read_common_settings(const PreprocessorConfig& config) {
  CommonSettings s;
  s.do_resize = config.do_resize;
  s.do_rescale = config.do_rescale;
  s.do_normalize = config.do_normalize;
  s.rescale_factor = config.rescale_factor;
  if (!std::isfinite(s.rescale_factor)) {
    fail(ErrorCode::invalid_argument, describe_key(config, "rescale_factor") + " must be a finite number (usually 1/255)");
  }
  const std::pair<const std::vector<double>*, std::array<double, 3>*> lists[] = {{&config.image_mean, &s.mean},
                                                                                  {&config.image_std, &s.std}};
  const char* names[] = {"image_mean", "image_std"};
  for (int i = 0; i < 2; ++i) {
    const auto& values = *lists[i].first;
    if (values.empty()) continue;  // absent: the class default (OpenAI CLIP statistics)
    if (values.size() != 3) {
      fail(ErrorCode::invalid_argument, describe_key(config, names[i]) + " must have 3 values (R, G, B), got " +
                                            std::to_string(values.size()));
    }
    for (int c = 0; c < 3; ++c) {
      if (!std::isfinite(values[c]) || (i == 1 && values[c] == 0.0)) {
        fail(ErrorCode::invalid_argument, describe_key(config, names[i]) + " value " + std::to_string(c) +
                                              " must be a finite number" + (i == 1 ? " other than 0" : ""));
      }
      (*lists[i].second)[c] = values[c];
    }
  }
  s.resample = resample_filter_from_pil(config.resample, describe_key(config, "resample"));
  return s;
}

ChannelTables make_channel_tables(const CommonSettings& s) {
  ChannelTables t{};
  for (int c = 0; c < 3; ++c) {
    // np.array(mean, dtype=float32): the statistics are rounded to float32 before use.
    const float mean = static_cast<float>(s.mean[c]);
    const float std = static_cast<float>(s.std[c]);
    for (int v = 0; v < 256; ++v) {
      float x = s.do_rescale ? static_cast<float>(static_cast<double>(v) * s.rescale_factor) : static_cast<float>(v);
      if (s.do_normalize) x = (x - mean) / std;
      t[c][v] = x;
    }
  }
  return t;
}

void check_output_pixels(std::int64_t height, std::int64_t width, const std::string& label, const char* what) {
  constexpr std::int64_t kMaxPixels = std::int64_t{1} << 28;  // 268M pixels: 3 GB of float32 values
  if (height < 1 || width < 1) {
    fail(ErrorCode::invalid_argument, label + ": the " + std::string(what) + " size " + size_text(height, width) +
                                          " is empty; check the size settings in preprocessor_config.json");
  }
  if (height > kMaxPixels / width) {
    fail(ErrorCode::limit_exceeded, label + ": the " + std::string(what) + " size " + size_text(height, width) +
                                        " exceeds " + std::to_string(kMaxPixels) +
                                        " pixels; lower max_pixels/size in preprocessor_config.json or the overrides");
  }
}

}  // namespace processor_detail

using namespace processor_detail;

std::array<int, 2> qwen_smart_resize(std::int64_t height, std::int64_t width, std::int64_t factor,
                                     std::int64_t min_pixels, std::int64_t max_pixels, const std::string& label) {
  if (height < 1 || width < 1) {
    fail(ErrorCode::invalid_argument, label + " is empty: " + size_text(height, width));
  }
  if (factor < 1 || min_pixels < 1 || max_pixels < 1) {
    fail(ErrorCode::invalid_argument, "smart_resize: factor (" + std::to_string(factor) + "), min_pixels (" +
                                          std::to_string(min_pixels) + ") and max_pixels (" +
                                          std::to_string(max_pixels) + ") must be positive");
  }
  const double h = static_cast<double>(height), w = static_cast<double>(width), f = static_cast<double>(factor);
  const double ratio = std::max(h, w) / std::min(h, w);
  if (ratio > 200) {
    fail(ErrorCode::invalid_argument, label + " is " + size_text(height, width) + ": its aspect ratio " +
                                          std::to_string(ratio) +
                                          " is above 200, which Qwen2-VL's processor refuses; crop or pad it first");
  }
  // Python's round() rounds halves to even, as nearbyint does in the default rounding mode.
  double h_bar = std::nearbyint(h / f) * f;
  double w_bar = std::nearbyint(w / f) * f;
  const double pixels = static_cast<double>(height * width);  // an exact integer product, as in Python
  if (h_bar * w_bar > static_cast<double>(max_pixels)) {
    const double beta = std::sqrt(pixels / static_cast<double>(max_pixels));
    h_bar = std::max(f, std::floor(h / beta / f) * f);
    w_bar = std::max(f, std::floor(w / beta / f) * f);
  } else if (h_bar * w_bar < static_cast<double>(min_pixels)) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / pixels);
    h_bar = std::ceil(h * beta / f) * f;
    w_bar = std::ceil(w * beta / f) * f;
  }
  constexpr double kMaxSide = 1 << 20;
  if (h_bar < 1 || w_bar < 1 || h_bar > kMaxSide || w_bar > kMaxSide) {
    fail(ErrorCode::invalid_argument, label + " (" + size_text(height, width) + ") would be resized to " +
                                          std::to_string(static_cast<long long>(h_bar)) + "x" +
                                          std::to_string(static_cast<long long>(w_bar)) +
                                          "; check min_pixels/max_pixels (" + std::to_string(min_pixels) + "/" +
                                          std::to_string(max_pixels) + ")");
  }
  return {static_cast<int>(h_bar), static_cast<int>(w_bar)};
}

std::array<int, 2> shortest_edge_size(std::int64_t height, std::int64_t width, std::int64_t shortest_edge) {
  const bool portrait = width <= height;
  const std::int64_t short_side = portrait ? width : height, long_side = portrait ? height : width;
  // int(requested * long / short): an exact integer product divided in double, truncated toward zero.
  const double new_long = static_cast<double>(shortest_edge * long_side) / static_cast<double>(short_side);
  const auto long_out = static_cast<std::int64_t>(new_long);
  if (long_out > std::numeric_limits<int>::max() || shortest_edge > std::numeric_limits<int>::max()) {
    fail(ErrorCode::limit_exceeded, "shortest-edge resize of " + size_text(height, width) + " to " +
                                        std::to_string(shortest_edge) + " gives a side above 2^31");
  }
  if (portrait) return {static_cast<int>(long_out), static_cast<int>(shortest_edge)};
  return {static_cast<int>(shortest_edge), static_cast<int>(long_out)};
}

std::unique_ptr<ImageProcessor> ImageProcessor::create(const PreprocessorConfig& config,
                                                       const ImageProcessorOverrides& overrides) {
  const std::string& type = config.image_processor_type;
  // transformers 5 names the Pillow classes "...Pil" and the torchvision ones without a suffix (older files say
  // "...Fast"); vlmrt runs the Pillow arithmetic for all of them.
  std::string base = type;
  for (const char* suffix : {"Fast", "Pil"}) {
    const std::string s = suffix;
    if (base.size() > s.size() && base.compare(base.size() - s.size(), s.size(), s) == 0) {
      base.resize(base.size() - s.size());
      break;
    }
  }
  if (base == "Qwen2VLImageProcessor" || base == "Qwen2_5_VLImageProcessor") return make_qwen2_vl(config, overrides);
  if (base == "CLIPImageProcessor") return make_clip_like(config, overrides, /*blip_defaults=*/false);
  if (base == "BlipImageProcessor") return make_clip_like(config, overrides, /*blip_defaults=*/true);
  if (type.empty()) {
    fail(ErrorCode::invalid_argument, describe_key(config, "image_processor_type") +
                                          " is missing; vlmrt needs it to choose the image processor "
                                          "(Qwen2VLImageProcessor, CLIPImageProcessor or BlipImageProcessor)");
  }
  fail(ErrorCode::unsupported, describe_key(config, "image_processor_type") + " is \"" + type +
                                   "\", which vlmrt does not implement; supported: Qwen2VLImageProcessor, "
                                   "CLIPImageProcessor, BlipImageProcessor (and their Fast/Pil variants)");
}

std::unique_ptr<ImageProcessor> ImageProcessor::load(const std::string& path, const ImageProcessorOverrides& overrides) {
  std::string file = path;
  if (is_directory(path)) {
    file = join_path(path, "preprocessor_config.json");
    if (!path_exists(file)) {
      fail(ErrorCode::not_found, "no preprocessor_config.json in " + path +
                                     "; pass the checkpoint folder that holds it or the file itself");
    }
  }
  return create(PreprocessorConfig::load(file), overrides);
}

ProcessedImages ImageProcessor::process(const RgbImage& image) const {
  const RgbImage* one = &image;
  return process_images(&one, 1);
}

ProcessedImages ImageProcessor::process(const std::vector<RgbImage>& images) const {
  std::vector<const RgbImage*> pointers;
  pointers.reserve(images.size());
  for (const auto& img : images) pointers.push_back(&img);
  return process_images(pointers.data(), pointers.size());
}

ProcessedImages ImageProcessor::process_images(const RgbImage* const* images, std::size_t count) const {
  if (count == 0) fail(ErrorCode::invalid_argument, type_ + ": no images to process");
  ProcessedImages result;
  result.images.resize(count);
  std::vector<std::size_t> offsets(count + 1, 0);
  for (std::size_t i = 0; i < count; ++i) {
    const RgbImage& img = *images[i];
    const std::string label = "image " + std::to_string(i);
    if (img.width <= 0 || img.height <= 0) {
      fail(ErrorCode::invalid_argument, label + " is empty (" + std::to_string(img.width) + "x" +
                                            std::to_string(img.height) + " pixels)");
    }
    if (img.pixels.size() != static_cast<std::size_t>(img.width) * img.height * 3) {
      fail(ErrorCode::invalid_argument, label + " declares " + std::to_string(img.width) + "x" +
                                            std::to_string(img.height) + " pixels but holds " +
                                            std::to_string(img.pixels.size()) + " bytes instead of width*height*3");
    }
    result.images[i] = plan(img.height, img.width, label);
    const auto count = static_cast<std::size_t>(result.images[i].rows * row_size(result.images[i]));
    offsets[i + 1] = offsets[i] + count;
  }
  result.shape = batch_shape(result.images);
  result.pixel_values.resize(offsets.back());
  const int threads = num_threads_ > 0 ? num_threads_ : available_threads();
  const int inner = std::max(1, threads / static_cast<int>(std::min<std::size_t>(count, 1 << 16)));
  parallel_for(count, threads, [&](std::size_t i) {
    process_into(*images[i], result.images[i], result.pixel_values.data() + offsets[i], inner);
  });
  return result;
}

}  // namespace vlm
