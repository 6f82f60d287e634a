#include "processor/image_processor.h"

#include <cmath>
#include <cstring>

#include "processor_fixtures.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;

namespace {

struct Expected {
  std::vector<float> values;
  std::vector<std::int64_t> shape;
};

// pixel_values were stored as np.unique(palette) + uint16 indices; the generator checked the round trip.
Expected expected_values(const nlohmann::json& c, const std::string& blob) {
  Expected e;
  e.shape = c["shape"].get<std::vector<std::int64_t>>();
  std::size_t n = 1;
  for (auto d : e.shape) n *= static_cast<std::size_t>(d);
  const std::size_t palette_offset = c["palette_offset"], palette_count = c["palette_count"];
  const std::size_t indices_offset = c["indices_offset"];
  REQUIRE(palette_offset + palette_count * 4 <= blob.size());
  REQUIRE(indices_offset + n * 2 <= blob.size());
  std::vector<float> palette(palette_count);
  std::memcpy(palette.data(), blob.data() + palette_offset, palette_count * 4);
  e.values.resize(n);
  std::size_t bad_indices = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto lo = static_cast<std::uint8_t>(blob[indices_offset + 2 * i]);
    const auto hi = static_cast<std::uint8_t>(blob[indices_offset + 2 * i + 1]);
    const std::size_t index = lo | (static_cast<std::size_t>(hi) << 8);
    if (index >= palette_count) {
      ++bad_indices;
      continue;
    }
    e.values[i] = palette[index];
  }
  REQUIRE(bad_indices == 0);
  return e;
}

ImageProcessorOverrides overrides_from(const nlohmann::json& o, int threads = 0) {
  ImageProcessorOverrides r;
  if (o.contains("min_pixels")) r.min_pixels = o["min_pixels"].get<std::int64_t>();
  if (o.contains("max_pixels")) r.max_pixels = o["max_pixels"].get<std::int64_t>();
  r.num_threads = threads;
  return r;
}

std::string config_dir(const std::string& name) { return vlm::test::processor_fixture("configs/" + name); }

void write_config(const std::string& dir, const std::string& json) {
  vlm::test::write_bytes(dir + "/preprocessor_config.json", json);
}

RgbImage solid(int w, int h, std::uint8_t v) {
  RgbImage img;
  img.width = w;
  img.height = h;
  img.pixels.assign(static_cast<std::size_t>(w) * h * 3, v);
  return img;
}

}  // namespace

TEST_CASE("pixel_values, grid_thw and token counts equal transformers' slow image processors") {
  const auto doc = vlm::test::read_json(vlm::test::processor_fixture("processor/cases.json"));
  const std::string blob = vlm::test::read_gz(vlm::test::processor_fixture("processor/expected.bin.gz"));
  int checked = 0, qwen = 0, clip = 0, blip = 0;
  for (const auto& c : doc["cases"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    auto processor = ImageProcessor::load(config_dir(c["config"]), overrides_from(c["overrides"]));
    std::vector<RgbImage> images;
    for (const auto& n : c["images"]) images.push_back(vlm::test::fixture_image(n.get<std::string>()));
    const ProcessedImages out = processor->process(images);
    const Expected e = expected_values(c, blob);
    REQUIRE(out.shape == e.shape);
    REQUIRE(out.pixel_values.size() == e.values.size());
    double max_diff = 0;
    std::size_t bit_differences = 0;
    for (std::size_t i = 0; i < e.values.size(); ++i) {
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(out.pixel_values[i]) - e.values[i]));
      if (std::memcmp(&out.pixel_values[i], &e.values[i], 4) != 0) ++bit_differences;
    }
    CHECK(max_diff <= 1e-6);
    CHECK_MESSAGE(bit_differences == 0, bit_differences << " values differ in their bits (max diff " << max_diff << ")");
    REQUIRE(out.images.size() == images.size());
    const std::string family = processor->family();
    if (family == "qwen2_vl") {
      ++qwen;
      const auto grids = c["image_grid_thw"];
      const auto tokens = c["num_image_tokens"];
      for (std::size_t i = 0; i < images.size(); ++i) {
        CAPTURE(i);
        CHECK(out.images[i].grid_thw[0] == grids[i][0].get<std::int64_t>());
        CHECK(out.images[i].grid_thw[1] == grids[i][1].get<std::int64_t>());
        CHECK(out.images[i].grid_thw[2] == grids[i][2].get<std::int64_t>());
        CHECK(out.images[i].num_image_tokens == tokens[i].get<std::int64_t>());
        CHECK(out.images[i].resized_height == c["resized_hw"][i][0].get<int>());
        CHECK(out.images[i].resized_width == c["resized_hw"][i][1].get<int>());
        // plan() gives the same geometry without pixels.
        const auto p = processor->plan(images[i].height, images[i].width);
        CHECK(p.grid_thw == out.images[i].grid_thw);
        CHECK(p.num_image_tokens == out.images[i].num_image_tokens);
      }
    } else {
      (family == "clip" ? clip : blip) += 1;
      for (const auto& info : out.images) {
        CHECK(info.output_height == e.shape[2]);
        CHECK(info.output_width == e.shape[3]);
        CHECK(info.num_image_tokens == 0);
      }
    }
    ++checked;
  }
  CHECK(checked == 25);
  CHECK(qwen == 17);
  CHECK(clip == 6);
  CHECK(blip == 2);
}

TEST_CASE("the processor class comes from image_processor_type") {
  CHECK(std::string(ImageProcessor::load(config_dir("qwen2_vl"))->family()) == "qwen2_vl");
  CHECK(std::string(ImageProcessor::load(config_dir("qwen2_5_vl"))->family()) == "qwen2_vl");
  CHECK(std::string(ImageProcessor::load(config_dir("qwen2_vl_size_bilinear"))->family()) == "qwen2_vl");
  CHECK(ImageProcessor::load(config_dir("qwen2_vl_size_bilinear"))->type() == "Qwen2VLImageProcessorFast");
  CHECK(std::string(ImageProcessor::load(config_dir("llava_1_5") + "/preprocessor_config.json")->family()) == "clip");
  CHECK(std::string(ImageProcessor::load(config_dir("blip2"))->family()) == "blip");
  TempDir dir;
  for (const char* type : {"Qwen2VLImageProcessorPil", "CLIPImageProcessorFast", "BlipImageProcessorPil"}) {
    write_config(dir.path(), std::string("{\"image_processor_type\": \"") + type + "\"}");
    CHECK(ImageProcessor::load(dir.path())->type() == type);
  }
  write_config(dir.path(), "{\"image_processor_type\": \"SiglipImageProcessor\"}");
  expect_error([&] { ImageProcessor::load(dir.path()); }, ErrorCode::unsupported,
               {"SiglipImageProcessor", "preprocessor_config.json", "Qwen2VLImageProcessor"});
  write_config(dir.path(), "{\"do_resize\": true}");
  expect_error([&] { ImageProcessor::load(dir.path()); }, ErrorCode::invalid_argument,
               {"image_processor_type", "preprocessor_config.json"});
  expect_error([&] { ImageProcessor::load(dir.file("missing")); }, ErrorCode::not_found, {"missing"});
  TempDir empty_dir;
  expect_error([&] { ImageProcessor::load(empty_dir.path()); }, ErrorCode::not_found,
               {"no preprocessor_config.json", empty_dir.path()});
}

TEST_CASE("class defaults apply to keys the file leaves out") {
  TempDir dir;
  // Qwen2VLImageProcessorPil defaults: 56*56 .. 28*28*1280 pixels, patch 14, merge 2, temporal 2, CLIP statistics.
  write_config(dir.path(), "{\"image_processor_type\": \"Qwen2VLImageProcessor\"}");
  auto qwen = ImageProcessor::load(dir.path());
  auto info = qwen->plan(768, 1024);
  CHECK(info.resized_height == 756);
  CHECK(info.resized_width == 1036);
  info = qwen->plan(2000, 3000);  // above the default max_pixels 1003520
  CHECK(static_cast<std::int64_t>(info.resized_height) * info.resized_width <= 1003520);
  CHECK(info.resized_height == 812);
  CHECK(info.resized_width == 1204);
  // The hub file raises max_pixels to 12845056, so 2000x3000 keeps its size (rounded to multiples of 28).
  auto hub = ImageProcessor::load(config_dir("qwen2_vl"));
  CHECK(hub->plan(2000, 3000).resized_height == 1988);
  CHECK(hub->plan(2000, 3000).resized_width == 2996);
  // CLIPImageProcessorPil defaults: shortest edge 224, center crop 224x224.
  write_config(dir.path(), "{\"image_processor_type\": \"CLIPImageProcessor\"}");
  auto clip = ImageProcessor::load(dir.path());
  info = clip->plan(300, 400);
  CHECK(info.resized_height == 224);
  CHECK(info.resized_width == 298);
  CHECK(info.output_height == 224);
  CHECK(info.output_width == 224);
  // BlipImageProcessorPil defaults: 384x384, no crop.
  write_config(dir.path(), "{\"image_processor_type\": \"BlipImageProcessor\"}");
  info = ImageProcessor::load(dir.path())->plan(300, 400);
  CHECK(info.output_height == 384);
  CHECK(info.output_width == 384);
  // The default CLIP statistics give the same values as the explicit ones of llava_1_5.
  write_config(dir.path(),
               "{\"image_processor_type\": \"CLIPImageProcessor\", \"size\": {\"shortest_edge\": 336}, "
               "\"crop_size\": {\"height\": 336, \"width\": 336}}");
  const RgbImage& img = vlm::test::fixture_image("synth_57x33.png");
  CHECK(ImageProcessor::load(dir.path())->process(img).pixel_values ==
        ImageProcessor::load(config_dir("llava_1_5"))->process(img).pixel_values);
}

TEST_CASE("smart_resize follows transformers' arithmetic") {
  // Python rounds halves to even: 70/28 = 2.5 -> 2, 98/28 = 3.5 -> 4.
  CHECK(qwen_smart_resize(70, 98, 28, 3136, 12845056) == std::array<int, 2>{56, 112});
  CHECK(qwen_smart_resize(42, 42, 28, 56, 12845056) == std::array<int, 2>{56, 56});
  CHECK(qwen_smart_resize(768, 1024, 28, 3136, 12845056) == std::array<int, 2>{756, 1036});
  // The fixed 224x224 budget: a square image lands exactly on 224x224, 4:3 below it.
  CHECK(qwen_smart_resize(500, 500, 28, 50176, 50176) == std::array<int, 2>{224, 224});
  CHECK(qwen_smart_resize(768, 1024, 28, 50176, 50176) == std::array<int, 2>{168, 252});
  // Smaller than the factor: transformers 5.23 upscales through min_pixels instead of refusing.
  CHECK(qwen_smart_resize(10, 50, 28, 3136, 12845056) == std::array<int, 2>{28, 140});
  CHECK(qwen_smart_resize(5, 5, 28, 3136, 12845056) == std::array<int, 2>{56, 56});
  CHECK(qwen_smart_resize(1, 200, 28, 3136, 12845056) == std::array<int, 2>{28, 812});
  expect_error([] { qwen_smart_resize(1, 201, 28, 3136, 12845056, "image 3"); }, ErrorCode::invalid_argument,
               {"image 3", "aspect ratio", "200"});
  expect_error([] { qwen_smart_resize(0, 20, 28, 3136, 12845056, "image 1"); }, ErrorCode::invalid_argument,
               {"image 1", "empty"});
  expect_error([] { qwen_smart_resize(20, 20, 28, 0, 100); }, ErrorCode::invalid_argument, {"min_pixels"});
  // A min_pixels budget far beyond any real image is refused before anything is allocated.
  expect_error([] { qwen_smart_resize(20, 20, 28, std::int64_t{1} << 50, std::int64_t{1} << 50); },
               ErrorCode::invalid_argument, {"would be resized"});
}

TEST_CASE("shortest-edge sizes truncate the long side like transformers") {
  CHECK(shortest_edge_size(299, 401, 336) == std::array<int, 2>{336, 450});
  CHECK(shortest_edge_size(401, 299, 336) == std::array<int, 2>{450, 336});
  CHECK(shortest_edge_size(100, 100, 336) == std::array<int, 2>{336, 336});
  CHECK(shortest_edge_size(3, 1000, 336) == std::array<int, 2>{336, 112000});
}

TEST_CASE("the references refuse the same extreme aspect ratios") {
  const auto doc = vlm::test::read_json(vlm::test::processor_fixture("processor/cases.json"));
  auto processor = ImageProcessor::load(config_dir("qwen2_vl"));
  int checked = 0;
  for (const auto& e : doc["errors"]) {
    const int h = e["height"], w = e["width"];
    CAPTURE(h);
    CAPTURE(w);
    REQUIRE(!e["error"].is_null());
    CHECK(e["error"].get<std::string>().find("aspect ratio") != std::string::npos);
    expect_error([&] { processor->process(std::vector<RgbImage>{solid(20, 20, 1), solid(w, h, 9)}); },
                 ErrorCode::invalid_argument, {"image 1", "aspect ratio"});
    ++checked;
  }
  CHECK(checked == 3);
}

TEST_CASE("bad images and settings give errors that name them") {
  auto qwen = ImageProcessor::load(config_dir("qwen2_vl"));
  expect_error([&] { qwen->process(std::vector<RgbImage>{}); }, ErrorCode::invalid_argument, {"no images"});
  expect_error([&] { qwen->process(std::vector<RgbImage>{solid(30, 30, 0), RgbImage{}}); },
               ErrorCode::invalid_argument, {"image 1", "empty"});
  RgbImage broken = solid(30, 30, 0);
  broken.pixels.resize(100);
  expect_error([&] { qwen->process(broken); }, ErrorCode::invalid_argument, {"image 0", "100 bytes"});
  // A 1x1 image is fine (upscaled to the minimum budget), as in transformers.
  CHECK(qwen->process(solid(1, 1, 200)).shape == std::vector<std::int64_t>{16, 1176});

  TempDir dir;
  const std::pair<const char*, std::vector<std::string>> bad_configs[] = {
      {R"({"image_processor_type": "Qwen2VLImageProcessor", "patch_size": 0})", {"patch_size", "0"}},
      {R"({"image_processor_type": "Qwen2VLImageProcessor", "merge_size": -2})", {"merge_size", "-2"}},
      {R"({"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": -5})", {"min_pixels", "-5"}},
      {R"({"image_processor_type": "Qwen2VLImageProcessor", "size": {"height": 10, "width": 10}})",
       {"size", "shortest_edge"}},
      {R"({"image_processor_type": "Qwen2VLImageProcessor", "max_pixels": 0})", {"size", "non-zero"}},
      {R"({"image_processor_type": "CLIPImageProcessor", "crop_size": {"height": 5}})", {"crop_size", "width"}},
      {R"({"image_processor_type": "CLIPImageProcessor", "size": {"longest_edge": 5}})", {"size", "shortest_edge"}},
      {R"({"image_processor_type": "BlipImageProcessor", "size": {"height": -1, "width": 3}})", {"size", "-1"}},
      {R"({"image_processor_type": "BlipImageProcessor", "resample": 7})", {"resample", "7"}},
      {R"({"image_processor_type": "BlipImageProcessor", "image_mean": [0.5, 0.5]})", {"image_mean", "3 values"}},
      {R"({"image_processor_type": "BlipImageProcessor", "image_std": [0.5, 0, 0.5]})", {"image_std", "0"}},
  };
  for (const auto& [json, fragments] : bad_configs) {
    CAPTURE(json);
    write_config(dir.path(), json);
    bool thrown = false;
    try {
      ImageProcessor::load(dir.path());
    } catch (const Error& e) {
      thrown = true;
      CHECK(e.code() != ErrorCode::internal);
      const std::string msg = e.what();
      CHECK_MESSAGE(msg.find("preprocessor_config.json") != std::string::npos, msg);
      for (const auto& f : fragments) CHECK_MESSAGE(msg.find(f) != std::string::npos, msg << " lacks " << f);
    }
    CHECK(thrown);
  }
  // Overrides are checked too.
  ImageProcessorOverrides o;
  o.max_pixels = -1;
  expect_error([&] { ImageProcessor::load(config_dir("qwen2_vl"), o); }, ErrorCode::invalid_argument, {"-1"});
  // A budget that asks for absurdly large outputs is refused per image, before allocating.
  o.max_pixels = std::int64_t{1} << 40;
  o.min_pixels = std::int64_t{1} << 39;
  auto huge = ImageProcessor::load(config_dir("qwen2_vl"), o);
  expect_error([&] { huge->process(solid(40, 30, 3)); }, ErrorCode::limit_exceeded, {"image 0", "max_pixels"});
  // do_resize false needs sides that are multiples of patch*merge.
  write_config(dir.path(), R"({"image_processor_type": "Qwen2VLImageProcessor", "do_resize": false})");
  auto no_resize = ImageProcessor::load(dir.path());
  expect_error([&] { no_resize->process(solid(30, 28, 3)); }, ErrorCode::invalid_argument, {"image 0", "28"});
  CHECK(no_resize->process(solid(56, 28, 3)).shape == std::vector<std::int64_t>{8, 1176});
  // CLIP without a crop: images of one batch must come out at the same size.
  write_config(dir.path(), R"({"image_processor_type": "CLIPImageProcessor", "do_center_crop": false,
                               "size": {"shortest_edge": 20}})");
  auto no_crop = ImageProcessor::load(dir.path());
  expect_error([&] { no_crop->process(std::vector<RgbImage>{solid(40, 20, 1), solid(20, 40, 1)}); },
               ErrorCode::invalid_argument, {"image 1", "same size"});
  CHECK(no_crop->process(std::vector<RgbImage>{solid(40, 20, 1), solid(80, 40, 1)}).shape ==
        std::vector<std::int64_t>{2, 3, 20, 40});
}

TEST_CASE("results do not depend on the number of threads") {
  std::vector<RgbImage> images;
  for (const char* n : {"synth_100x100.png", "synth_250x60.png", "noise_12x9.png", "synth_333x222.png",
                        "synth_45x190.png"}) {
    images.push_back(vlm::test::fixture_image(n));
  }
  for (const char* cfg : {"qwen2_vl", "clip_small"}) {
    CAPTURE(cfg);
    ImageProcessorOverrides one, many;
    one.num_threads = 1;
    many.num_threads = 4;
    const auto a = ImageProcessor::load(config_dir(cfg), one)->process(images);
    const auto b = ImageProcessor::load(config_dir(cfg), many)->process(images);
    CHECK(a.shape == b.shape);
    CHECK(std::memcmp(a.pixel_values.data(), b.pixel_values.data(), a.pixel_values.size() * 4) == 0);
    // A batch is the concatenation of the images processed one by one.
    std::vector<float> joined;
    for (const auto& img : images) {
      const auto single = ImageProcessor::load(config_dir(cfg), one)->process(img);
      joined.insert(joined.end(), single.pixel_values.begin(), single.pixel_values.end());
    }
    CHECK(joined == a.pixel_values);
  }
}
