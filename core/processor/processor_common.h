// Internal: settings and arithmetic shared by the image processor families.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/hf_files.h"
#include "processor/image_processor.h"
#include "processor/resample.h"

namespace vlm::processor_detail {

// transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, the class default of all three families.
inline const std::array<double, 3> kClipMean = {0.48145466, 0.4578275, 0.40821073};
inline const std::array<double, 3> kClipStd = {0.26862954, 0.26130258, 0.27577711};

// The options every family reads, with the class defaults applied and validated.
struct CommonSettings {
  bool do_resize = true, do_rescale = true, do_normalize = true;
  double rescale_factor = 1.0 / 255.0;
  std::array<double, 3> mean = kClipMean, std = kClipStd;
  ResampleFilter resample = ResampleFilter::bicubic;
};

// Reads the common keys of `config` (file name and key in every error).
CommonSettings read_common_settings(const PreprocessorConfig& config);

// "<file>: key 'name'" for messages; "preprocessor config: key 'name'" when the config was not loaded from a file.
std::string describe_key(const PreprocessorConfig& config, const std::string& key);

// The float32 value transformers produces for each 8-bit value of each channel: rescale (float64 multiply, then
// float32) followed by normalize ((x - mean) / std in float32). Both are per-element functions of the byte, so a
// 256-entry table per channel gives the same bits as the array code.
using ChannelTables = std::array<std::array<float, 256>, 3>;
ChannelTables make_channel_tables(const CommonSettings& s);

// Guards against absurd sizes before any allocation (a misconfigured min_pixels or a huge image).
void check_output_pixels(std::int64_t height, std::int64_t width, const std::string& label, const char* what);

std::string size_text(std::int64_t height, std::int64_t width);  // "HxW" as height x width

std::unique_ptr<ImageProcessor> make_qwen2_vl(const PreprocessorConfig& config, const ImageProcessorOverrides& o);
std::unique_ptr<ImageProcessor> make_clip_like(const PreprocessorConfig& config, const ImageProcessorOverrides& o,
                                               bool blip_defaults);

}  // namespace vlm::processor_detail
