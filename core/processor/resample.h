// Image resizing that reproduces Pillow's Image.resize byte for byte (Pillow 13.0.0, libImaging/Resample.c and
// the nearest-neighbour path of Geometry.c) for 8-bit RGB images. Hugging Face's slow image processors resize
// through Pillow, so matching it here is what makes pixel_values identical to transformers'.
#pragma once

#include <string>

#include "image/image.h"

namespace vlm {

// The numbering is Pillow's (PIL.Image.Resampling), which preprocessor_config.json stores as "resample".
enum class ResampleFilter {
  nearest = 0,
  lanczos = 1,
  bilinear = 2,
  bicubic = 3,
  box = 4,
  hamming = 5,
};

// Maps a "resample" value from preprocessor_config.json; `where` names the file/key in the error for values
// vlmrt does not implement (Pillow's MKS2013/MKS2021 = 6/7, or anything else).
ResampleFilter resample_filter_from_pil(int value, const std::string& where);
const char* resample_filter_name(ResampleFilter filter);

// Image.resize((width, height), filter) with the default box and no reducing_gap. `threads` splits the rows of
// each pass between that many threads (the result does not depend on it). Throws vlm::Error(invalid_argument)
// for an empty input or a non-positive target size.
RgbImage resize_image(const RgbImage& image, int width, int height, ResampleFilter filter, int threads = 1);

}  // namespace vlm
