// PNG through libpng, converted to RGB the way Pillow's PNG plugin + convert("RGB") does:
//  - 1/2/4-bit gray scales to 8 bits (x255, x85, x17), palettes expand to their colours,
//  - 16-bit RGB(A) and gray+alpha keep the high byte; 16-bit gray ("I;16") clips values above 255 to 255,
//  - alpha and tRNS transparency are dropped, never composited; gamma chunks are ignored.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "base/error.h"
#include "image/image.h"

namespace vlm {
namespace {

struct PngReadState {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
  char error[256];
};

void png_read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  auto* state = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (length > state->size - state->offset) {
    std::snprintf(state->error, sizeof state->error, "the file is truncated");
    png_longjmp(png, 1);
  }
  std::memcpy(out, state->data + state->offset, length);
  state->offset += length;
}

void png_error_handler(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngReadState*>(png_get_error_ptr(png));
  if (state->error[0] == '\0') std::snprintf(state->error, sizeof state->error, "%s", message);
  png_longjmp(png, 1);
}

void png_warning_handler(png_structp, png_const_charp) {}

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// Walks the chunk headers before libpng sees the file: libpng allocates a chunk's declared length before it reads
// the data, so a small file declaring a 2 GB text chunk would take 2 GB before failing as truncated. Every chunk
// must fit in the bytes that are there. A wrong signature or a file cut inside a header is left to libpng's
// own message.
void check_png_chunks(const std::uint8_t* data, std::size_t size, const std::string& label) {
  static const std::uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size < 8 || std::memcmp(data, kSignature, 8) != 0) return;
  std::size_t offset = 8;
  while (size - offset >= 8) {
    const std::uint32_t length = read_be32(data + offset);
    const std::string type(reinterpret_cast<const char*>(data + offset + 4), 4);
    const std::size_t left = size - offset - 8;
    if (length > 0x7fffffffu || std::size_t{length} + 4 > left) {
      fail(ErrorCode::corrupt_data, "cannot decode PNG image " + label + ": truncated or corrupt: chunk '" + type +
                                        "' at byte " + std::to_string(offset) + " declares " + std::to_string(length) +
                                        " bytes, but only " + std::to_string(left) + " follow its header");
    }
    if (type == "IEND") return;
    offset += 12 + std::size_t{length};
  }
}

// The most an ancillary chunk (text, ICC profile) may take once decompressed.
constexpr png_alloc_size_t kMaxAncillaryChunkBytes = 64u << 20;

}  // namespace

DecodedImage decode_png(const std::uint8_t* data, std::size_t size, const std::string& label,
                        const ImageLoadOptions& options) {
  check_png_chunks(data, size, label);
  PngReadState state{data, size, 0, {0}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, png_error_handler, png_warning_handler);
  if (png == nullptr) fail(ErrorCode::out_of_memory, "cannot allocate a PNG decoder for " + label);
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    fail(ErrorCode::out_of_memory, "cannot allocate a PNG decoder for " + label);
  }

  // Everything written between setjmp and a possible longjmp lives on the heap behind a pointer that is never
  // reassigned, so its state stays well-defined when libpng jumps back here.
  struct Work {
    DecodedImage result;
    std::vector<std::uint8_t> raw;
    std::vector<png_bytep> rows;
    png_uint_32 width = 0, height = 0;
  };
  const auto work = std::make_unique<Work>();

  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail(ErrorCode::corrupt_data, "cannot decode PNG image " + label + ": " + state.error);
  }
  png_set_read_fn(png, &state, png_read_from_memory);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_malloc_max(png, kMaxAncillaryChunkBytes);
  png_read_info(png, info);
  work->width = png_get_image_width(png, info);
  work->height = png_get_image_height(png, info);
  const png_uint_32 width = work->width, height = work->height;
  // An image over the pixel limit is not decoded at all; check_pixel_limit below reports it.
  if (options.max_pixels == 0 || std::uint64_t(width) * height <= options.max_pixels) {
    const int bit_depth = png_get_bit_depth(png, info);
    const int color_type = png_get_color_type(png, info);
    const bool gray16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16 && !gray16) png_set_strip_16(png);  // keeps the high byte, as Pillow's ";16B" modes do
    if (gray16) png_set_swap(png);                          // native little-endian 16-bit values
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int channels = png_get_channels(png, info);
    const png_size_t rowbytes = png_get_rowbytes(png, info);
    work->raw.resize(rowbytes * height);
    work->rows.resize(height);
    for (png_uint_32 y = 0; y < height; ++y) work->rows[y] = work->raw.data() + y * rowbytes;
    png_read_image(png, work->rows.data());
    png_read_end(png, info);  // with info, so an eXIf chunk after the image data is kept too

    png_uint_32 exif_length = 0;
    png_bytep exif = nullptr;
    if (png_get_eXIf_1(png, info, &exif_length, &exif) != 0 && exif != nullptr) {
      work->result.exif.assign(exif, exif + exif_length);
    }

    RgbImage& img = work->result.image;
    img.width = static_cast<int>(width);
    img.height = static_cast<int>(height);
    img.pixels.resize(std::size_t(width) * height * 3);
    std::uint8_t* out = img.pixels.data();
    for (png_uint_32 y = 0; y < height; ++y) {
      const std::uint8_t* row = work->rows[y];
      for (png_uint_32 x = 0; x < width; ++x, out += 3) {
        if (gray16) {
          unsigned v = row[2 * x] | (unsigned(row[2 * x + 1]) << 8);
          out[0] = out[1] = out[2] = static_cast<std::uint8_t>(v > 255 ? 255 : v);
        } else if (channels <= 2) {  // gray, gray+alpha
          out[0] = out[1] = out[2] = row[x * channels];
        } else {  // RGB, RGBA
          std::memcpy(out, row + x * channels, 3);
        }
      }
    }
  }
  png_destroy_read_struct(&png, &info, nullptr);
  check_pixel_limit(work->width, work->height, label, options);  // throws for too_large and for 0x0
  return std::move(work->result);
}

}  // namespace vlm
