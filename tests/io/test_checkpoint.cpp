#include "io/checkpoint.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;
using vlm::test::hex_of;

namespace {

std::string copy_fixture_dir(const TempDir& dir, const std::string& name) {
  const std::string target = dir.file(name);
  std::filesystem::copy(vlm::test::fixture("io/" + name), target, std::filesystem::copy_options::recursive);
  return target;
}

}  // namespace

TEST_CASE("sharded checkpoint written by huggingface_hub loads bit-exactly") {
  auto ckpt = Checkpoint::open(vlm::test::fixture("io/sharded"));
  auto expected = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("io/sharded.expected.json")));
  CHECK(ckpt->shard_count() == 3);
  CHECK(ckpt->metadata().at("total_size") == "1280");
  REQUIRE(ckpt->names().size() == expected.size());
  for (const auto& name : ckpt->names()) {
    CAPTURE(name);
    auto entry = ckpt->get(name);
    CHECK(entry.info->shape == expected[name]["shape"].get<std::vector<std::int64_t>>());
    CHECK(hex_of(entry.file->data(*entry.info), entry.info->nbytes()) == expected[name]["bytes_hex"].get<std::string>());
  }
  CHECK(ckpt->contains("model.embed_tokens.weight"));
  expect_error([&] { ckpt->get("lm_head.weight"); }, ErrorCode::not_found, {"lm_head.weight", "model.safetensors.index.json"});
}

TEST_CASE("a missing shard is reported when the checkpoint is opened") {
  TempDir dir;
  const std::string folder = copy_fixture_dir(dir, "sharded");
  std::filesystem::remove(folder + "/model-00002-of-00003.safetensors");
  expect_error([&] { Checkpoint::open(folder); }, ErrorCode::not_found,
               {"model-00002-of-00003.safetensors", "is missing", "model.layers.2.weight"});
}

TEST_CASE("an index that places a tensor in the wrong shard is corrupt") {
  TempDir dir;
  const std::string folder = copy_fixture_dir(dir, "sharded");
  auto index = nlohmann::json::parse(vlm::test::read_bytes(folder + "/model.safetensors.index.json"));
  index["weight_map"]["model.layers.0.weight"] = "model-00003-of-00003.safetensors";
  vlm::test::write_bytes(folder + "/model.safetensors.index.json", index.dump());
  auto ckpt = Checkpoint::open(folder);
  expect_error([&] { ckpt->get("model.layers.0.weight"); }, ErrorCode::corrupt_data, {"does not contain it"});
  index["weight_map"]["model.layers.0.weight"] = "../evil.safetensors";
  vlm::test::write_bytes(folder + "/model.safetensors.index.json", index.dump());
  expect_error([&] { Checkpoint::open(folder); }, ErrorCode::corrupt_data, {"plain file name"});
}

TEST_CASE("pickle checkpoints are refused with an explanation") {
  TempDir dir;
  vlm::test::write_bytes(dir.file("m/pytorch_model.bin"), "\x80\x02}q\x00.");
  expect_error([&] { Checkpoint::open(dir.file("m")); }, ErrorCode::unsupported,
               {"pytorch_model.bin", "never unpickles", "safe_serialization=True"});
  expect_error([&] { Checkpoint::open(dir.file("m/pytorch_model.bin")); }, ErrorCode::unsupported, {"pickle"});
  create_directories(dir.file("empty"));
  expect_error([&] { Checkpoint::open(dir.file("empty")); }, ErrorCode::not_found, {"model.safetensors"});
}

TEST_CASE("write_checkpoint shards by size, writes the index, and cleans up stale shards") {
  TempDir dir;
  std::vector<float> a(64, 1.f), b(64, 2.f), c(64, 3.f);
  std::vector<TensorBytes> tensors = {{"a", DType::F32, {64}, a.data(), 256},
                                      {"b", DType::F32, {8, 8}, b.data(), 256},
                                      {"c", DType::F32, {64}, c.data(), 256}};
  write_checkpoint(dir.path(), tensors, 600);
  CHECK(is_regular_file(dir.file("model-00001-of-00002.safetensors")));
  CHECK(is_regular_file(dir.file("model-00002-of-00002.safetensors")));
  auto index = nlohmann::json::parse(read_file(dir.file("model.safetensors.index.json")));
  CHECK(index["metadata"]["total_size"] == 768);
  CHECK(index["weight_map"]["c"] == "model-00002-of-00002.safetensors");
  auto ckpt = Checkpoint::open(dir.path());
  auto entry = ckpt->get("b");
  CHECK(entry.info->shape == std::vector<std::int64_t>{8, 8});
  CHECK(reinterpret_cast<const float*>(entry.file->data(*entry.info))[63] == 2.f);

  // Saving a smaller checkpoint in the same folder: one file, no index, no stale shards.
  write_checkpoint(dir.path(), {tensors[0]}, 600);
  CHECK(is_regular_file(dir.file("model.safetensors")));
  CHECK_FALSE(path_exists(dir.file("model.safetensors.index.json")));
  CHECK_FALSE(path_exists(dir.file("model-00001-of-00002.safetensors")));
  CHECK(Checkpoint::open(dir.path())->names() == std::vector<std::string>{"a"});

  // Adapters use their own stem.
  write_checkpoint(dir.file("adapter"), {tensors[1]}, 1 << 20, {{"format", "pt"}}, "adapter_model");
  CHECK(Checkpoint::open(dir.file("adapter"), "adapter_model")->metadata().at("format") == "pt");
}
