// Image processors: turn decoded RGB images into the pixel_values a vision tower takes, with the same float32
// values as transformers' slow (Pillow) image processors (transformers 5.23.0, use_fast=False / backend="pil").
//
//   Qwen2VLImageProcessor (Qwen2-VL, Qwen2.5-VL): smart_resize to multiples of patch*merge within
//     [min_pixels, max_pixels], Pillow resize, rescale, normalize, temporal duplication and patch flattening:
//     pixel_values [sum of patches, C*T*P*P], grid_thw (1, H/P, W/P) and tokens t*h*w/merge^2 per image.
//   CLIPImageProcessor (LLaVA-1.5): shortest-edge resize, center crop (zero padding when smaller), rescale,
//     normalize: pixel_values [N, 3, H, W].
//   BlipImageProcessor (BLIP, BLIP-2): resize to size {height, width}, rescale, normalize: [N, 3, H, W].
//
// The "...Fast" and "...Pil" class names map to the same slow-path arithmetic. Torch-free.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "image/image.h"
#include "io/hf_files.h"
#include "processor/resample.h"

namespace vlm {

// What a caller changes on top of preprocessor_config.json (keyword arguments of the Python processor).
struct ImageProcessorOverrides {
  // Qwen2-VL pixel budget (size["shortest_edge"] / size["longest_edge"]); min = max = 224*224 is the common
  // "fixed 224x224" setting (processor.image_processor.min_pixels = max_pixels = 224*224 in Python). It bounds
  // the pixel count, so a 4:3 image comes out at 252x168, a square one at 224x224. CLIP/BLIP ignore it.
  std::optional<std::int64_t> min_pixels, max_pixels;
  // Images processed at the same time (and rows of one large image); 0 = the available CPUs.
  // The output does not depend on it.
  int num_threads = 0;
};

struct ProcessedImageInfo {
  int input_height = 0, input_width = 0;
  int resized_height = 0, resized_width = 0;   // after resize (Qwen: smart_resize; CLIP: before the crop)
  int output_height = 0, output_width = 0;     // the pixels that reach pixel_values (after the crop)
  std::array<std::int64_t, 3> grid_thw{0, 0, 0};  // Qwen2-VL: (1, H/patch, W/patch); zeros otherwise
  std::int64_t rows = 0;                       // rows of pixel_values' first dimension from this image
  // Qwen2-VL: <|image_pad|> tokens = t*h*w / merge^2. 0 for CLIP/BLIP, where the model's config decides
  // (LLaVA-1.5: image_seq_length 576, BLIP-2: num_query_tokens 32).
  std::int64_t num_image_tokens = 0;
};

struct ProcessedImages {
  std::vector<float> pixel_values;            // row-major
  std::vector<std::int64_t> shape;            // Qwen: {patches, C*T*P*P}; CLIP/BLIP: {N, 3, H, W}
  std::vector<ProcessedImageInfo> images;     // one per input image, in order
};

class ImageProcessor {
 public:
  virtual ~ImageProcessor() = default;

  // Picks the implementation from config.image_processor_type; unknown types -> vlm::Error(unsupported) naming
  // the type and the file. Configuration values out of range -> vlm::Error(invalid_argument) naming the key.
  static std::unique_ptr<ImageProcessor> create(const PreprocessorConfig& config,
                                                const ImageProcessorOverrides& overrides = {});
  // `path` is a preprocessor_config.json file or the checkpoint folder holding one.
  static std::unique_ptr<ImageProcessor> load(const std::string& path, const ImageProcessorOverrides& overrides = {});

  // The class from the config ("Qwen2VLImageProcessor", ...), and the family whose arithmetic it runs
  // ("qwen2_vl", "clip", "blip").
  const std::string& type() const { return type_; }
  virtual const char* family() const = 0;

  // Geometry of one image of this size without touching pixels (for counting tokens before decoding).
  // `label` names the image in errors (aspect ratio above 200, output too large).
  virtual ProcessedImageInfo plan(int height, int width, const std::string& label = "image") const = 0;

  // Processes all images (in parallel across images). Errors name the image by its index.
  ProcessedImages process(const std::vector<RgbImage>& images) const;
  ProcessedImages process(const RgbImage& image) const;

 protected:
  ImageProcessor(std::string type, const ImageProcessorOverrides& overrides)
      : type_(std::move(type)), num_threads_(overrides.num_threads) {}
  // Values per row of pixel_values (Qwen: C*T*P*P; CLIP/BLIP: 3*H*W).
  virtual std::int64_t row_size(const ProcessedImageInfo& info) const = 0;
  // Shape of the whole batch; the CHW families refuse images that come out at different sizes.
  virtual std::vector<std::int64_t> batch_shape(const std::vector<ProcessedImageInfo>& infos) const = 0;
  // Writes info.rows * row_size(info) floats; `threads` may be used inside one image.
  virtual void process_into(const RgbImage& image, const ProcessedImageInfo& info, float* out, int threads) const = 0;

 private:
  ProcessedImages process_images(const RgbImage* const* images, std::size_t count) const;

  std::string type_;
  int num_threads_ = 0;
};

// ---- building blocks, exposed for tests ------------------------------------------------------------------

// transformers' smart_resize in double precision with Python's round-half-to-even. Returns {height, width}.
// Throws vlm::Error(invalid_argument) naming `label` when max(h,w)/min(h,w) > 200 (transformers' limit).
std::array<int, 2> qwen_smart_resize(std::int64_t height, std::int64_t width, std::int64_t factor,
                                     std::int64_t min_pixels, std::int64_t max_pixels,
                                     const std::string& label = "image");

// transformers' get_resize_output_image_size(default_to_square=False): the short side becomes `shortest_edge`,
// the long side int(shortest_edge * long / short). Returns {height, width}.
std::array<int, 2> shortest_edge_size(std::int64_t height, std::int64_t width, std::int64_t shortest_edge);

}  // namespace vlm
