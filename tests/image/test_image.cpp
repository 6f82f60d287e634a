#include "image/image.h"

#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;

namespace {
nlohmann::json manifest() {
  return nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("image/manifest.json")));
}
}  // namespace

TEST_CASE("decoded pixels equal Pillow's load_image for every PNG and JPEG variant") {
  auto m = manifest();
  int checked = 0;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!it.value().contains("width")) continue;
    CAPTURE(it.key());
    RgbImage img = load_image(vlm::test::fixture("image/" + it.key()));
    CHECK(img.width == it.value()["width"].get<int>());
    CHECK(img.height == it.value()["height"].get<int>());
    const std::string expected = vlm::test::read_bytes(vlm::test::fixture("image/" + it.key() + ".rgb"));
    REQUIRE(expected.size() == img.pixels.size());
    std::size_t mismatches = 0, first = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      if (static_cast<std::uint8_t>(expected[i]) != img.pixels[i]) {
        if (mismatches++ == 0) first = i;
      }
    }
    CHECK_MESSAGE(mismatches == 0, mismatches << " bytes differ, first at byte " << first);
    ++checked;
  }
  CHECK(checked >= 38);
}

TEST_CASE("EXIF orientation can be ignored") {
  ImageLoadOptions keep;
  keep.apply_exif_orientation = false;
  RgbImage raw = load_image(vlm::test::fixture("image/orient6.png"), keep);
  RgbImage upright = load_image(vlm::test::fixture("image/orient1.png"));
  CHECK(raw.width == upright.width);
  CHECK(raw.pixels == upright.pixels);
  RgbImage turned = load_image(vlm::test::fixture("image/orient6.png"));
  CHECK(turned.width == raw.height);
}

TEST_CASE("corrupt and truncated images are errors that name the file") {
  expect_error([] { load_image(vlm::test::fixture("image/corrupt_idat.png")); }, ErrorCode::corrupt_data,
               {"corrupt_idat.png", "cannot decode PNG"});
  expect_error([] { load_image(vlm::test::fixture("image/truncated.jpg")); }, ErrorCode::corrupt_data,
               {"truncated.jpg", "cannot decode JPEG", "Premature end"});
  TempDir dir;
  for (std::string name : {"rgb8.png", "rgb8_interlaced.png", "progressive.jpg", "cmyk.jpg"}) {
    const std::string good = vlm::test::read_bytes(vlm::test::fixture("image/" + name));
    for (std::size_t cut : {std::size_t(1), std::size_t(8), std::size_t(30), good.size() / 2, good.size() - 13}) {
      CAPTURE(name);
      CAPTURE(cut);
      vlm::test::write_bytes(dir.file("cut.img"), good.substr(0, cut));
      CHECK_THROWS_AS(load_image(dir.file("cut.img")), Error);
    }
  }
  vlm::test::write_bytes(dir.file("empty.png"), "");
  expect_error([&] { load_image(dir.file("empty.png")); }, ErrorCode::corrupt_data, {"empty.png", "0 bytes"});
  vlm::test::write_bytes(dir.file("anim.gif"), "GIF89a\x01\x00\x01\x00");
  expect_error([&] { load_image(dir.file("anim.gif")); }, ErrorCode::unsupported, {"anim.gif", "GIF", "PNG and JPEG"});
  vlm::test::write_bytes(dir.file("text.png"), "hello world");
  expect_error([&] { load_image(dir.file("text.png")); }, ErrorCode::unsupported, {"unrecognised"});
  expect_error([&] { load_image(dir.file("missing.png")); }, ErrorCode::not_found, {"missing.png"});
}

TEST_CASE("a PNG chunk longer than the file is refused before anything is allocated") {
  const std::string good = vlm::test::read_bytes(vlm::test::fixture("image/rgb8.png"));
  // After the signature (8) and IHDR (25): a tEXt chunk declaring 2,000,000,000 bytes, then the rest of the file.
  const std::string huge_text = std::string("\x77\x35\x94\x00", 4) + "tEXtComment";
  TempDir dir;
  vlm::test::write_bytes(dir.file("bomb.png"), good.substr(0, 33) + huge_text + good.substr(33));
  struct rusage before {}, after {};
  ::getrusage(RUSAGE_SELF, &before);
  expect_error([&] { load_image(dir.file("bomb.png")); }, ErrorCode::corrupt_data,
               {"bomb.png", "chunk 'tEXt' at byte 33 declares 2000000000 bytes, but only"});
  ::getrusage(RUSAGE_SELF, &after);
  CHECK(after.ru_maxrss - before.ru_maxrss < 100 * 1024);  // kilobytes: nowhere near the declared 2 GB
  // A length with the top bit set is not a PNG length at all.
  vlm::test::write_bytes(dir.file("sign.png"), good.substr(0, 33) + std::string("\xff\xff\xff\xf0", 4) + "tEXt" + good.substr(33));
  expect_error([&] { load_image(dir.file("sign.png")); }, ErrorCode::corrupt_data, {"declares 4294967280 bytes"});
}

TEST_CASE("the pixel limit refuses images before decoding them") {
  ImageLoadOptions small;
  small.max_pixels = 100;
  expect_error([&] { load_image(vlm::test::fixture("image/rgb8.png"), small); }, ErrorCode::limit_exceeded,
               {"rgb8.png", "23x13", "299 pixels", "limit of 100"});
  expect_error([&] { load_image(vlm::test::fixture("image/baseline.jpg"), small); }, ErrorCode::limit_exceeded, {"64x48"});
  small.max_pixels = 0;  // no limit
  CHECK(load_image(vlm::test::fixture("image/rgb8.png"), small).width == 23);
  // A PNG header claiming 100000 x 100000 pixels is refused by the default limit without allocating.
  std::string png = vlm::test::read_bytes(vlm::test::fixture("image/gray8.png"));
  const unsigned char big[8] = {0x00, 0x01, 0x86, 0xa0, 0x00, 0x01, 0x86, 0xa0};
  png.replace(16, 8, reinterpret_cast<const char*>(big), 8);
  CHECK_THROWS_AS(decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), "bomb.png"), Error);
}

TEST_CASE("EXIF orientation parsing") {
  // Big-endian TIFF with one IFD entry: Orientation = 6.
  const std::uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0};
  CHECK(exif_orientation(be, sizeof be) == 6);
  const std::uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0};
  CHECK(exif_orientation(le, sizeof le) == 8);
  CHECK(exif_orientation(le, 10) == 1);  // truncated: ignored, like Pillow's tolerant reader
  const std::uint8_t junk[] = {'X', 'X', 1, 2, 3, 4, 5, 6};
  CHECK(exif_orientation(junk, sizeof junk) == 1);
}

TEST_CASE("image_from_rgb8 honours the stride") {
  const std::uint8_t px[] = {1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12, 99, 99};
  RgbImage img = image_from_rgb8(px, 2, 2, 8);
  CHECK(img.pixels == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  expect_error([&] { image_from_rgb8(px, 2, 2, 5); }, ErrorCode::invalid_argument, {"stride"});
  expect_error([&] { image_from_rgb8(nullptr, 2, 2, 6); }, ErrorCode::invalid_argument, {"NULL"});
}
