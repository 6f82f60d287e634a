// JPEG through libjpeg-turbo with the settings Pillow uses (ISLOW DCT, fancy upsampling), converted to RGB as
// Pillow's convert("RGB") does: grayscale replicated; CMYK/YCCK decoded to CMYK (inverted when an Adobe marker
// says so, Pillow's "CMYK;I") and turned into RGB with Pillow's formula.
#include <cstdio>
// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>
#include <jerror.h>

#include <csetjmp>
#include <cstring>
#include <memory>

#include "base/error.h"
#include "image/image.h"

namespace vlm {
namespace {

struct JpegErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// A file that ends early is an error, as in Pillow ("image file is truncated"); other libjpeg warnings
// (extraneous bytes between markers and the like) are tolerated, as Pillow tolerates them.
void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
  }
}

// Pillow's MULDIV255: a*b/255 rounded, computed exactly as Pillow does.
inline int muldiv255(int a, int b) {
  int tmp = a * b + 128;
  return ((tmp >> 8) + tmp) >> 8;
}

}  // namespace

DecodedImage decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& label,
                         const ImageLoadOptions& options) {
  struct Work {
    jpeg_decompress_struct cinfo;
    JpegErrorManager err;
    DecodedImage result;
    std::vector<std::uint8_t> row;
    bool created = false;
  };
  // Heap state behind a pointer that is never reassigned: well-defined after a longjmp from libjpeg.
  const auto work = std::make_unique<Work>();
  jpeg_decompress_struct& cinfo = work->cinfo;
  cinfo.err = jpeg_std_error(&work->err.base);
  work->err.base.error_exit = jpeg_error_exit;
  work->err.base.emit_message = jpeg_emit_message;
  work->err.message[0] = '\0';
  if (setjmp(work->err.jump)) {
    if (work->created) jpeg_destroy_decompress(&cinfo);
    fail(ErrorCode::corrupt_data, "cannot decode JPEG image " + label + ": " + work->err.message);
  }
  jpeg_create_decompress(&cinfo);
  work->created = true;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&cinfo, TRUE);

  const std::uint64_t width = cinfo.image_width, height = cinfo.image_height;
  if (width == 0 || height == 0 || (options.max_pixels != 0 && width * height > options.max_pixels)) {
    jpeg_destroy_decompress(&cinfo);
    work->created = false;
    check_pixel_limit(width, height, label, options);
  }

  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != nullptr; m = m->next) {
    // Pillow keeps the first APP1 segment that starts with "Exif\0\0".
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      work->result.exif.assign(m->data + 6, m->data + m->data_length);
      break;
    }
  }

  bool cmyk = false;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; cmyk = true; break;
    default: cinfo.out_color_space = JCS_RGB; break;
  }
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  const bool adobe_inverted = cmyk && cinfo.saw_Adobe_marker;
  jpeg_start_decompress(&cinfo);

  RgbImage& img = work->result.image;
  img.width = static_cast<int>(cinfo.output_width);
  img.height = static_cast<int>(cinfo.output_height);
  img.pixels.resize(std::size_t(img.width) * img.height * 3);
  const int components = cinfo.output_components;
  work->row.resize(std::size_t(cinfo.output_width) * components);
  while (cinfo.output_scanline < cinfo.output_height) {
    const int y = static_cast<int>(cinfo.output_scanline);
    JSAMPROW rows[1] = {work->row.data()};
    jpeg_read_scanlines(&cinfo, rows, 1);
    std::uint8_t* out = img.pixels.data() + std::size_t(y) * img.width * 3;
    const std::uint8_t* in = work->row.data();
    for (int x = 0; x < img.width; ++x, out += 3) {
      if (components == 1) {
        out[0] = out[1] = out[2] = in[x];
      } else if (cmyk) {
        int c = in[4 * x], m = in[4 * x + 1], yy = in[4 * x + 2], k = in[4 * x + 3];
        if (adobe_inverted) {
          c = 255 - c, m = 255 - m, yy = 255 - yy, k = 255 - k;
        }
        const int nk = 255 - k;
        out[0] = static_cast<std::uint8_t>(nk - muldiv255(c, nk));
        out[1] = static_cast<std::uint8_t>(nk - muldiv255(m, nk));
        out[2] = static_cast<std::uint8_t>(nk - muldiv255(yy, nk));
      } else {
        std::memcpy(out, in + 3 * x, 3);
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  work->created = false;
  return std::move(work->result);
}

}  // namespace vlm
