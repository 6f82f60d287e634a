// CLIPImageProcessor (LLaVA-1.5) and BlipImageProcessor (BLIP, BLIP-2): transformers 5.23.0's PilBackend
// pipeline — resize (by the keys present in `size`), optional center crop, rescale, normalize — giving CHW float32.
// The two classes differ only in their defaults.
#include <cmath>

#include "base/error.h"
#include "processor/processor_common.h"

namespace vlm::processor_detail {

namespace {

struct SizeSpec {
  std::int64_t shortest_edge = 0, longest_edge = 0, height = 0, width = 0, max_height = 0, max_width = 0;
};

SizeSpec size_spec(const std::map<std::string, std::int64_t>& m) {
  SizeSpec s;
  auto get = [&](const char* key) {
    auto it = m.find(key);
    return it == m.end() ? std::int64_t{0} : it->second;
  };
  s.shortest_edge = get("shortest_edge");
  s.longest_edge = get("longest_edge");
  s.height = get("height");
  s.width = get("width");
  s.max_height = get("max_height");
  s.max_width = get("max_width");
  return s;
}

int to_int_size(double v) { return static_cast<int>(std::min(v, 2147483647.0)); }  // Python int() then the guard

// transformers' get_size_with_aspect_ratio((h, w), shortest_edge, longest_edge).
std::array<int, 2> size_with_aspect_ratio(std::int64_t height, std::int64_t width, std::int64_t size,
                                          std::int64_t max_size) {
  const double min_side = static_cast<double>(std::min(height, width));
  const double max_side = static_cast<double>(std::max(height, width));
  bool have_raw = false;
  double raw_size = 0;
  if (max_side / min_side * static_cast<double>(size) > static_cast<double>(max_size)) {
    raw_size = static_cast<double>(max_size) * min_side / max_side;
    size = static_cast<std::int64_t>(std::nearbyint(raw_size));  // Python round(): halves to even
    have_raw = true;
  }
  if ((height <= width && height == size) || (width <= height && width == size)) {
    return {static_cast<int>(height), static_cast<int>(width)};
  }
  if (width < height) {
    const double oh = have_raw ? raw_size * static_cast<double>(height) / static_cast<double>(width)
                               : static_cast<double>(size * height) / static_cast<double>(width);
    return {to_int_size(oh), static_cast<int>(size)};
  }
  const double ow = have_raw ? raw_size * static_cast<double>(width) / static_cast<double>(height)
                             : static_cast<double>(size * width) / static_cast<double>(height);
  return {static_cast<int>(size), to_int_size(ow)};
}

class ClipLikeImageProcessor : public ImageProcessor {
 public:
  ClipLikeImageProcessor(const PreprocessorConfig& config, const ImageProcessorOverrides& overrides, bool blip)
      : ImageProcessor(config.image_processor_type, overrides), settings_(read_common_settings(config)), blip_(blip) {
    // Class defaults: CLIP resizes the shortest edge to 224 and crops 224x224; BLIP squashes to 384x384.
    std::map<std::string, std::int64_t> size =
        blip ? std::map<std::string, std::int64_t>{{"height", 384}, {"width", 384}}
             : std::map<std::string, std::int64_t>{{"shortest_edge", 224}};
    if (!config.size.empty()) size = config.size;
    // An integer "size" means a square for BLIP but the shortest edge for CLIP (default_to_square = False).
    if (!blip && config.raw.has("size") && config.raw.raw().at("size").is_number_integer()) {
      size = {{"shortest_edge", config.size.at("height")}};
    }
    size_ = size_spec(size);
    std::map<std::string, std::int64_t> crop =
        blip ? std::map<std::string, std::int64_t>{} : std::map<std::string, std::int64_t>{{"height", 224}, {"width", 224}};
    if (!config.crop_size.empty()) crop = config.crop_size;
    // PreprocessorConfig defaults do_center_crop to false; CLIP's class default is true.
    do_center_crop_ = config.raw.has("do_center_crop") ? config.do_center_crop : !blip;

    for (const auto& [key, value] : size) {
      if (value < 0 || value > (1 << 20)) {
        fail(ErrorCode::invalid_argument, describe_key(config, "size") + " value '" + key + "' = " +
                                              std::to_string(value) + " is out of range (0..1048576)");
      }
    }
    if (settings_.do_resize) {
      const bool usable = (size_.shortest_edge > 0) || (size_.max_height > 0 && size_.max_width > 0) ||
                          (size_.height > 0 && size_.width > 0);
      if (!usable) {
        fail(ErrorCode::invalid_argument,
             describe_key(config, "size") +
                 " must hold {\"shortest_edge\"}, {\"shortest_edge\", \"longest_edge\"}, {\"height\", \"width\"} or "
                 "{\"max_height\", \"max_width\"} with positive values");
      }
    }
    if (do_center_crop_) {
      const auto h = crop.find("height"), w = crop.find("width");
      if (h == crop.end() || w == crop.end() || h->second < 1 || w->second < 1 || h->second > (1 << 20) ||
          w->second > (1 << 20)) {
        fail(ErrorCode::invalid_argument, describe_key(config, "crop_size") +
                                              " must be {\"height\": H, \"width\": W} with positive values when "
                                              "do_center_crop is true");
      }
      crop_height_ = h->second;
      crop_width_ = w->second;
    }
    tables_ = make_channel_tables(settings_);
  }

  const char* family() const override { return blip_ ? "blip" : "clip"; }

  ProcessedImageInfo plan(int height, int width, const std::string& label) const override {
    ProcessedImageInfo info;
    info.input_height = height;
    info.input_width = width;
    std::array<int, 2> resized = {height, width};
    if (settings_.do_resize) {
      // PilBackend.resize checks the keys in this order.
      if (size_.shortest_edge > 0 && size_.longest_edge > 0) {
        resized = size_with_aspect_ratio(height, width, size_.shortest_edge, size_.longest_edge);
      } else if (size_.shortest_edge > 0) {
        resized = shortest_edge_size(height, width, size_.shortest_edge);
      } else if (size_.max_height > 0 && size_.max_width > 0) {
        const double scale = std::min(static_cast<double>(size_.max_height) / height,
                                      static_cast<double>(size_.max_width) / width);
        resized = {to_int_size(height * scale), to_int_size(width * scale)};
      } else {
        resized = {static_cast<int>(size_.height), static_cast<int>(size_.width)};
      }
    }
    check_output_pixels(resized[0], resized[1], label + " (" + size_text(height, width) + ")", "resized");
    info.resized_height = info.output_height = resized[0];
    info.resized_width = info.output_width = resized[1];
    if (do_center_crop_) {
      info.output_height = static_cast<int>(crop_height_);
      info.output_width = static_cast<int>(crop_width_);
    }
    info.rows = 1;
    return info;
  }

 protected:
  std::int64_t row_size(const ProcessedImageInfo& info) const override {
    return 3 * static_cast<std::int64_t>(info.output_height) * info.output_width;
  }

  std::vector<std::int64_t> batch_shape(const std::vector<ProcessedImageInfo>& infos) const override {
    const auto& first = infos.front();
    for (std::size_t i = 1; i < infos.size(); ++i) {
      if (infos[i].output_height != first.output_height || infos[i].output_width != first.output_width) {
        fail(ErrorCode::invalid_argument,
             "image " + std::to_string(i) + " comes out at " + size_text(infos[i].output_height, infos[i].output_width) +
                 " but image 0 at " + size_text(first.output_height, first.output_width) +
                 "; without a center crop the images of one batch must give the same size (process them separately)");
      }
    }
    return {static_cast<std::int64_t>(infos.size()), 3, first.output_height, first.output_width};
  }

  void process_into(const RgbImage& image, const ProcessedImageInfo& info, float* out, int threads) const override {
    RgbImage resized;
    const RgbImage* src = &image;
    if (info.resized_height != image.height || info.resized_width != image.width) {
      resized = resize_image(image, info.resized_width, info.resized_height, settings_.resample, threads);
      src = &resized;
    }
    const std::int64_t in_h = info.resized_height, in_w = info.resized_width;
    const std::int64_t out_h = info.output_height, out_w = info.output_width;
    // transformers' center_crop: the window starts at top = (H - crop) // 2 (floor division). When the image is
    // smaller, it is first centred at ceil((crop - H) / 2) in a zero canvas, which puts the window at the same
    // image coordinates; the pixels outside the image are that zero padding.
    auto floor_div2 = [](std::int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
    const std::int64_t top = do_center_crop_ ? floor_div2(in_h - out_h) : 0;
    const std::int64_t left = do_center_crop_ ? floor_div2(in_w - out_w) : 0;
    const std::size_t plane = static_cast<std::size_t>(out_h) * out_w;
    for (int c = 0; c < 3; ++c) {
      const auto& table = tables_[c];
      const float zero = table[0];  // the padding is the byte 0 before rescale/normalize
      float* dst = out + c * plane;
      for (std::int64_t y = 0; y < out_h; ++y) {
        const std::int64_t sy = y + top;
        for (std::int64_t x = 0; x < out_w; ++x) {
          const std::int64_t sx = x + left;
          dst[y * out_w + x] = (sy < 0 || sy >= in_h || sx < 0 || sx >= in_w)
                                   ? zero
                                   : table[src->at(static_cast<int>(sx), static_cast<int>(sy))[c]];
        }
      }
    }
  }

 private:
  CommonSettings settings_;
  bool blip_;
  ChannelTables tables_{};
  SizeSpec size_;
  bool do_center_crop_ = false;
  std::int64_t crop_height_ = 0, crop_width_ = 0;
};

}  // namespace

std::unique_ptr<ImageProcessor> make_clip_like(const PreprocessorConfig& config, const ImageProcessorOverrides& o,
                                               bool blip_defaults) {
  return std::make_unique<ClipLikeImageProcessor>(config, o, blip_defaults);
}

}  // namespace vlm::processor_detail
