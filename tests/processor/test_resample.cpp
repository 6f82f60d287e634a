#include "processor/resample.h"

#include <cstring>
#include <map>

#include "processor_fixtures.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;

TEST_CASE("resize_image is byte-identical to Pillow's Image.resize for every filter and size") {
  const auto cases = vlm::test::read_json(vlm::test::processor_fixture("resize/cases.json"));
  const std::string expected = vlm::test::read_gz(vlm::test::processor_fixture("resize/expected.bin.gz"));
  std::map<std::string, int> per_filter;
  int identical = 0;
  for (const auto& c : cases) {
    const std::string name = c["image"].get<std::string>();
    const int w = c["width"], h = c["height"];
    CAPTURE(name);
    CAPTURE(w);
    CAPTURE(h);
    CAPTURE(c["filter"].get<std::string>());
    const ResampleFilter filter = resample_filter_from_pil(c["pil_filter"].get<int>(), "fixture");
    CHECK(std::string(resample_filter_name(filter)) == c["filter"].get<std::string>());
    const RgbImage out = resize_image(vlm::test::fixture_image(name), w, h, filter);
    REQUIRE(out.width == w);
    REQUIRE(out.height == h);
    const std::size_t offset = c["offset"], size = c["size"];
    REQUIRE(out.pixels.size() == size);
    REQUIRE(offset + size <= expected.size());
    std::size_t mismatches = 0, first = 0;
    for (std::size_t i = 0; i < size; ++i) {
      if (out.pixels[i] != static_cast<std::uint8_t>(expected[offset + i]) && mismatches++ == 0) first = i;
    }
    CHECK_MESSAGE(mismatches == 0, mismatches << " bytes differ, first at byte " << first);
    if (mismatches == 0) {
      ++identical;
      ++per_filter[c["filter"].get<std::string>()];
    }
  }
  CHECK(identical == static_cast<int>(cases.size()));
  CHECK(cases.size() >= 240);
  for (const char* f : {"nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"}) CHECK(per_filter[f] >= 40);
}

TEST_CASE("resize_image output does not depend on the thread count") {
  const RgbImage& src = vlm::test::fixture_image("synth_517x389.png");
  for (ResampleFilter f : {ResampleFilter::bicubic, ResampleFilter::lanczos, ResampleFilter::nearest}) {
    const RgbImage one = resize_image(src, 301, 97, f, 1);
    const RgbImage many = resize_image(src, 301, 97, f, 5);
    CHECK(one.pixels == many.pixels);
    const RgbImage up1 = resize_image(src, 600, 777, f, 1);
    const RgbImage up3 = resize_image(src, 600, 777, f, 3);
    CHECK(up1.pixels == up3.pixels);
  }
}

TEST_CASE("resize_image to the same size returns the pixels unchanged") {
  const RgbImage& src = vlm::test::fixture_image("noise_37x23.png");
  const RgbImage out = resize_image(src, 37, 23, ResampleFilter::lanczos);
  CHECK(out.pixels == src.pixels);
  // Only one pass runs when one side keeps its size; a constant image stays constant through any filter.
  RgbImage flat;
  flat.width = 9;
  flat.height = 4;
  flat.pixels.assign(9 * 4 * 3, 77);
  for (ResampleFilter f : {ResampleFilter::bicubic, ResampleFilter::lanczos, ResampleFilter::box,
                           ResampleFilter::hamming, ResampleFilter::bilinear, ResampleFilter::nearest}) {
    const RgbImage a = resize_image(flat, 9, 13, f);
    const RgbImage b = resize_image(flat, 31, 4, f);
    CHECK(a.pixels == std::vector<std::uint8_t>(9 * 13 * 3, 77));
    CHECK(b.pixels == std::vector<std::uint8_t>(31 * 4 * 3, 77));
  }
}

TEST_CASE("resize_image refuses bad input with a clear error") {
  RgbImage empty;
  expect_error([&] { resize_image(empty, 4, 4, ResampleFilter::bicubic); }, ErrorCode::invalid_argument,
               {"empty", "0x0"});
  RgbImage short_buffer;
  short_buffer.width = 4;
  short_buffer.height = 4;
  short_buffer.pixels.resize(10);
  expect_error([&] { resize_image(short_buffer, 2, 2, ResampleFilter::bicubic); }, ErrorCode::invalid_argument,
               {"4x4"});
  const RgbImage& src = vlm::test::fixture_image("noise_5x3.png");
  expect_error([&] { resize_image(src, 0, 3, ResampleFilter::bicubic); }, ErrorCode::invalid_argument,
               {"0x3", "at least 1x1"});
  expect_error([&] { resize_image(src, 5, -1, ResampleFilter::nearest); }, ErrorCode::invalid_argument, {"5x-1"});
  expect_error([&] { resize_image(src, 1 << 21, 3, ResampleFilter::bicubic); }, ErrorCode::limit_exceeded,
               {"2097152"});
  expect_error([&] { resample_filter_from_pil(6, "cfg.json: key 'resample'"); }, ErrorCode::unsupported,
               {"cfg.json: key 'resample'", "6", "BICUBIC"});
  expect_error([&] { resample_filter_from_pil(-1, "x"); }, ErrorCode::unsupported, {"-1"});
}
