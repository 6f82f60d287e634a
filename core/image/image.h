// Image decoding into 8-bit RGB, pixel-exact with what Hugging Face's `load_image` gets from Pillow:
// Image.open -> ImageOps.exif_transpose -> convert("RGB"). PNG through libpng, JPEG through libjpeg-turbo
// (the same decoder Pillow uses, with the same settings).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vlm {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 3 bytes per pixel, no padding
  std::uint8_t* at(int x, int y) { return pixels.data() + (static_cast<std::size_t>(y) * width + x) * 3; }
  const std::uint8_t* at(int x, int y) const { return pixels.data() + (static_cast<std::size_t>(y) * width + x) * 3; }
};

struct ImageLoadOptions {
  // Refuse images with more pixels than this before decoding them (Pillow refuses above 178956970 too).
  // 0 disables the check.
  std::uint64_t max_pixels = 178956970;
  bool apply_exif_orientation = true;
};

// Reads and decodes a PNG or JPEG file. Errors name the file.
RgbImage load_image(const std::string& path, const ImageLoadOptions& options = {});
// Decodes bytes in memory; `label` names the source in error messages.
RgbImage decode_image(const std::uint8_t* data, std::size_t size, const std::string& label,
                      const ImageLoadOptions& options = {});

// Wraps caller-provided RGB8 pixels (rows `stride` bytes apart) into an RgbImage (copied).
RgbImage image_from_rgb8(const std::uint8_t* pixels, int width, int height, std::size_t stride);

// ---- building blocks, exposed for tests --------------------------------------------------------------

// What a format decoder produces before orientation is applied.
struct DecodedImage {
  RgbImage image;
  std::vector<std::uint8_t> exif;  // TIFF-structured EXIF payload (without the "Exif\0\0" prefix), if any
};

DecodedImage decode_png(const std::uint8_t* data, std::size_t size, const std::string& label,
                        const ImageLoadOptions& options);
DecodedImage decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& label,
                         const ImageLoadOptions& options);

// The EXIF orientation tag (1..8) of a TIFF-structured EXIF block; 1 when absent or unreadable.
int exif_orientation(const std::uint8_t* tiff, std::size_t size);
// Applies an EXIF orientation the way Pillow's ImageOps.exif_transpose does.
RgbImage apply_exif_orientation(const RgbImage& image, int orientation);

// Throws vlm::Error(limit_exceeded) when width*height exceeds options.max_pixels.
void check_pixel_limit(std::uint64_t width, std::uint64_t height, const std::string& label,
                       const ImageLoadOptions& options);

}  // namespace vlm
