#include "image/image.h"

#include <cstring>

#include "base/error.h"
#include "base/fs.h"

namespace vlm {

void check_pixel_limit(std::uint64_t width, std::uint64_t height, const std::string& label,
                       const ImageLoadOptions& options) {
  if (width == 0 || height == 0) fail(ErrorCode::corrupt_data, "image " + label + " has zero width or height");
  if (options.max_pixels != 0 && width * height > options.max_pixels) {
    fail(ErrorCode::limit_exceeded, "image " + label + " is " + std::to_string(width) + "x" + std::to_string(height) +
                                        " = " + std::to_string(width * height) + " pixels, more than the limit of " +
                                        std::to_string(options.max_pixels) +
                                        " (a guard against decompression bombs); raise max_pixels if the image is trusted");
  }
}

RgbImage decode_image(const std::uint8_t* data, std::size_t size, const std::string& label,
                      const ImageLoadOptions& options) {
  static const std::uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  DecodedImage decoded;
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) {
    decoded = decode_png(data, size, label, options);
  } else if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) {
    decoded = decode_jpeg(data, size, label, options);
  } else if (size == 0) {
    fail(ErrorCode::corrupt_data, "image " + label + " is empty (0 bytes)");
  } else {
    std::string kind = "an unrecognised format";
    if (size >= 6 && (std::memcmp(data, "GIF87a", 6) == 0 || std::memcmp(data, "GIF89a", 6) == 0)) kind = "GIF";
    if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) kind = "WebP";
    if (size >= 2 && data[0] == 'B' && data[1] == 'M') kind = "BMP";
    if (size >= 4 && (std::memcmp(data, "II*\0", 4) == 0 || std::memcmp(data, "MM\0*", 4) == 0)) kind = "TIFF";
    fail(ErrorCode::unsupported, "image " + label + " is " + kind +
                                     "; vlmrt reads PNG and JPEG images: convert it to one of them");
  }
  if (options.apply_exif_orientation && !decoded.exif.empty()) {
    int orientation = exif_orientation(decoded.exif.data(), decoded.exif.size());
    if (orientation != 1) return apply_exif_orientation(decoded.image, orientation);
  }
  return std::move(decoded.image);
}

RgbImage load_image(const std::string& path, const ImageLoadOptions& options) {
  auto file = MappedFile::open(path);
  return decode_image(file->data(), file->size(), path, options);
}

RgbImage image_from_rgb8(const std::uint8_t* pixels, int width, int height, std::size_t stride) {
  if (pixels == nullptr) fail(ErrorCode::invalid_argument, "image pixels are NULL");
  if (width <= 0 || height <= 0) fail(ErrorCode::invalid_argument, "image width and height must be positive");
  if (stride < static_cast<std::size_t>(width) * 3) {
    fail(ErrorCode::invalid_argument, "image stride " + std::to_string(stride) + " is smaller than width*3 = " +
                                          std::to_string(width * 3));
  }
  RgbImage img;
  img.width = width;
  img.height = height;
  img.pixels.resize(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    std::memcpy(img.pixels.data() + static_cast<std::size_t>(y) * width * 3, pixels + y * stride,
                static_cast<std::size_t>(width) * 3);
  }
  return img;
}

}  // namespace vlm
