// Qwen2VLImageProcessor (also used by Qwen2.5-VL), as transformers 5.23.0's Qwen2VLImageProcessorPil computes it:
// smart_resize -> Pillow resize -> rescale -> normalize -> patchify. The patch rows come in merge-window order
// (grid_h/m, grid_w/m, m, m) and each row is (channel, temporal copy, patch row, patch col).
#include <cstring>

#include "base/error.h"
#include "processor/processor_common.h"

namespace vlm::processor_detail {

namespace {

// Qwen2VLImageProcessorPil class defaults.
constexpr std::int64_t kDefaultMinPixels = 56 * 56;
constexpr std::int64_t kDefaultMaxPixels = 28 * 28 * 1280;

class Qwen2VLImageProcessor : public ImageProcessor {
 public:
  Qwen2VLImageProcessor(const PreprocessorConfig& config, const ImageProcessorOverrides& overrides)
      : ImageProcessor(config.image_processor_type, overrides), settings_(read_common_settings(config)) {
    // size {"shortest_edge", "longest_edge"} holds the pixel budget; min_pixels / max_pixels keys (older files,
    // and what users set) take precedence, then the caller's overrides.
    std::map<std::string, std::int64_t> size = {{"shortest_edge", kDefaultMinPixels},
                                                {"longest_edge", kDefaultMaxPixels}};
    if (!config.size.empty()) size = config.size;
    if (config.min_pixels) size["shortest_edge"] = *config.min_pixels;
    if (config.max_pixels) size["longest_edge"] = *config.max_pixels;
    if (overrides.min_pixels) size["shortest_edge"] = *overrides.min_pixels;
    if (overrides.max_pixels) size["longest_edge"] = *overrides.max_pixels;
    const auto se = size.find("shortest_edge"), le = size.find("longest_edge");
    if (settings_.do_resize) {
      if (se == size.end() || le == size.end() || se->second == 0 || le->second == 0) {
        fail(ErrorCode::invalid_argument,
             describe_key(config, "size") +
                 " must give the pixel budget as {\"shortest_edge\": min_pixels, \"longest_edge\": max_pixels} "
                 "(or set min_pixels and max_pixels), both non-zero");
      }
      min_pixels_ = se->second;
      max_pixels_ = le->second;
      if (min_pixels_ < 1 || max_pixels_ < 1) {
        fail(ErrorCode::invalid_argument, describe_key(config, "min_pixels") + "/max_pixels must be positive, got " +
                                              std::to_string(min_pixels_) + "/" + std::to_string(max_pixels_));
      }
    }
    patch_ = config.patch_size.value_or(14);
    temporal_ = config.temporal_patch_size.value_or(2);
    merge_ = config.merge_size.value_or(2);
    const std::pair<const char*, int> checks[] = {{"patch_size", patch_}, {"temporal_patch_size", temporal_},
                                                  {"merge_size", merge_}};
    for (const auto& [key, value] : checks) {
      if (value < 1 || value > 4096) {
        fail(ErrorCode::invalid_argument,
             describe_key(config, key) + " must be between 1 and 4096, got " + std::to_string(value));
      }
    }
    tables_ = make_channel_tables(settings_);
  }

  const char* family() const override { return "qwen2_vl"; }

  ProcessedImageInfo plan(int height, int width, const std::string& label) const override {
    ProcessedImageInfo info;
    info.input_height = height;
    info.input_width = width;
    const std::int64_t factor = static_cast<std::int64_t>(patch_) * merge_;
    int rh = height, rw = width;
    if (settings_.do_resize) {
      const auto hw = qwen_smart_resize(height, width, factor, min_pixels_, max_pixels_, label);
      rh = hw[0];
      rw = hw[1];
    } else if (height % factor != 0 || width % factor != 0) {
      fail(ErrorCode::invalid_argument, label + " is " + size_text(height, width) +
                                            " and do_resize is false, so both sides must be multiples of "
                                            "patch_size*merge_size = " + std::to_string(factor));
    }
    check_output_pixels(rh, rw, label, "resized");
    info.resized_height = info.output_height = rh;
    info.resized_width = info.output_width = rw;
    const std::int64_t gh = rh / patch_, gw = rw / patch_;
    info.grid_thw = {1, gh, gw};
    info.rows = gh * gw;
    info.num_image_tokens = info.grid_thw[0] * gh * gw / (static_cast<std::int64_t>(merge_) * merge_);
    return info;
  }

 protected:
  std::int64_t row_size(const ProcessedImageInfo&) const override {
    return 3 * static_cast<std::int64_t>(temporal_) * patch_ * patch_;
  }

  std::vector<std::int64_t> batch_shape(const std::vector<ProcessedImageInfo>& infos) const override {
    std::int64_t rows = 0;
    for (const auto& i : infos) rows += i.rows;
    return {rows, row_size(infos.front())};
  }

  void process_into(const RgbImage& image, const ProcessedImageInfo& info, float* out, int threads) const override {
    RgbImage resized;
    const RgbImage* src = &image;
    if (info.resized_height != image.height || info.resized_width != image.width) {
      resized = resize_image(image, info.resized_width, info.resized_height, settings_.resample, threads);
      src = &resized;
    }
    const int p = patch_, m = merge_, t_count = temporal_;
    const int gh = static_cast<int>(info.grid_thw[1]), gw = static_cast<int>(info.grid_thw[2]);
    const std::size_t plane = static_cast<std::size_t>(p) * p;           // one channel of one frame
    const std::size_t row = 3 * static_cast<std::size_t>(t_count) * plane;  // one patch
    float* dst = out;
    for (int bh = 0; bh < gh / m; ++bh) {
      for (int bw = 0; bw < gw / m; ++bw) {
        for (int mh = 0; mh < m; ++mh) {
          for (int mw = 0; mw < m; ++mw) {
            const int y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
            for (int c = 0; c < 3; ++c) {
              const auto& table = tables_[c];
              float* frame0 = dst + static_cast<std::size_t>(c) * t_count * plane;
              for (int py = 0; py < p; ++py) {
                const std::uint8_t* px = src->at(x0, y0 + py) + c;
                float* line = frame0 + static_cast<std::size_t>(py) * p;
                for (int qx = 0; qx < p; ++qx) line[qx] = table[px[qx * 3]];
              }
              // The image is repeated temporal_patch_size times (a single frame).
              for (int t = 1; t < t_count; ++t) std::memcpy(frame0 + t * plane, frame0, plane * sizeof(float));
            }
            dst += row;
          }
        }
      }
    }
  }

 private:
  CommonSettings settings_;
  ChannelTables tables_{};
  std::int64_t min_pixels_ = kDefaultMinPixels, max_pixels_ = kDefaultMaxPixels;
  int patch_ = 14, temporal_ = 2, merge_ = 2;
};

}  // namespace

std::unique_ptr<ImageProcessor> make_qwen2_vl(const PreprocessorConfig& config, const ImageProcessorOverrides& o) {
  return std::make_unique<Qwen2VLImageProcessor>(config, o);
}

}  // namespace vlm::processor_detail
