// The EXIF orientation tag and Pillow's exif_transpose. EXIF is a TIFF structure: a byte-order mark, the
// magic 42, and an offset to IFD0, whose 12-byte entries hold tag 0x0112 (Orientation, a SHORT).
#include <cstring>

#include "image/image.h"

namespace vlm {
namespace {

struct TiffReader {
  const std::uint8_t* p;
  std::size_t size;
  bool little;
  bool u16(std::size_t off, unsigned* out) const {
    if (off + 2 > size) return false;
    *out = little ? (p[off] | p[off + 1] << 8) : (p[off] << 8 | p[off + 1]);
    return true;
  }
  bool u32(std::size_t off, std::uint32_t* out) const {
    if (off + 4 > size) return false;
    *out = little ? (std::uint32_t(p[off]) | std::uint32_t(p[off + 1]) << 8 | std::uint32_t(p[off + 2]) << 16 |
                     std::uint32_t(p[off + 3]) << 24)
                  : (std::uint32_t(p[off]) << 24 | std::uint32_t(p[off + 1]) << 16 | std::uint32_t(p[off + 2]) << 8 |
                     std::uint32_t(p[off + 3]));
    return true;
  }
};

}  // namespace

int exif_orientation(const std::uint8_t* tiff, std::size_t size) {
  if (size >= 6 && std::memcmp(tiff, "Exif\0\0", 6) == 0) {
    tiff += 6;
    size -= 6;
  }
  if (size < 8) return 1;
  TiffReader r{tiff, size, true};
  if (tiff[0] == 'I' && tiff[1] == 'I') {
    r.little = true;
  } else if (tiff[0] == 'M' && tiff[1] == 'M') {
    r.little = false;
  } else {
    return 1;
  }
  unsigned magic = 0, count = 0;
  std::uint32_t ifd = 0;
  if (!r.u16(2, &magic) || magic != 42 || !r.u32(4, &ifd) || !r.u16(ifd, &count)) return 1;
  for (unsigned i = 0; i < count; ++i) {
    const std::size_t entry = ifd + 2 + std::size_t(i) * 12;
    unsigned tag = 0, type = 0, value = 0;
    if (!r.u16(entry, &tag) || !r.u16(entry + 2, &type)) return 1;
    if (tag != 0x0112) continue;
    if (type != 3 || !r.u16(entry + 8, &value)) return 1;  // SHORT, stored inline
    return (value >= 1 && value <= 8) ? static_cast<int>(value) : 1;
  }
  return 1;
}

RgbImage apply_exif_orientation(const RgbImage& in, int orientation) {
  if (orientation < 2 || orientation > 8) return in;
  const int w = in.width, h = in.height;
  const bool swaps = orientation >= 5;  // TRANSPOSE, ROTATE_270, TRANSVERSE, ROTATE_90 swap width and height
  RgbImage out;
  out.width = swaps ? h : w;
  out.height = swaps ? w : h;
  out.pixels.resize(in.pixels.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;                   // FLIP_LEFT_RIGHT
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;   // ROTATE_180
        case 4: sy = h - 1 - y; break;                   // FLIP_TOP_BOTTOM
        case 5: sx = y; sy = x; break;                   // TRANSPOSE
        case 6: sx = y; sy = h - 1 - x; break;           // ROTATE_270 (clockwise quarter turn)
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;   // TRANSVERSE
        case 8: sx = w - 1 - y; sy = x; break;           // ROTATE_90 (counter-clockwise quarter turn)
      }
      std::memcpy(out.at(x, y), in.at(sx, sy), 3);
    }
  }
  return out;
}

}  // namespace vlm
