#include "tensor/tensor_io.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;

TEST_CASE("tensors load zero-copy with the reference values") {
  auto ckpt = Checkpoint::open(vlm::test::fixture("io/all_dtypes.safetensors"));
  auto expected = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("io/all_dtypes.expected.json")));
  for (std::string name : {"f64", "f32", "f16", "bf16"}) {
    CAPTURE(name);
    torch::Tensor t = load_tensor(*ckpt, name);
    auto values = expected[name]["values"].get<std::vector<double>>();
    auto flat = t.to(torch::kFloat64).flatten();
    REQUIRE(flat.numel() == static_cast<std::int64_t>(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) CHECK(flat[i].item<double>() == values[i]);
  }
  CHECK((load_tensor(*ckpt, "f32").scalar_type() == torch::kFloat32));
  CHECK((load_tensor(*ckpt, "bf16").scalar_type() == torch::kBFloat16));
  CHECK(load_tensor(*ckpt, "i64")[0][0].item<std::int64_t>() == -(std::int64_t(1) << 40));
  CHECK(load_tensor(*ckpt, "i8")[0].item<std::int64_t>() == -128);
  CHECK(load_tensor(*ckpt, "u8")[3].item<std::int64_t>() == 255);
  CHECK(load_tensor(*ckpt, "bool")[1].item<bool>() == false);
  CHECK(load_tensor(*ckpt, "scalar").dim() == 0);
  CHECK(load_tensor(*ckpt, "scalar").item<float>() == 3.5f);
  CHECK((load_tensor(*ckpt, "empty").sizes() == torch::IntArrayRef({0, 4})));

  // Zero-copy: the tensor aliases the mapped file.
  auto entry = ckpt->get("f32");
  torch::Tensor t = tensor_from_file(entry.file, *entry.info);
  CHECK(t.data_ptr() == static_cast<const void*>(entry.file->data(*entry.info)));
#if TORCH_VERSION_MAJOR < 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 3)
  expect_error([&] { load_tensor(*ckpt, "u16"); }, ErrorCode::unsupported, {"U16", "\"u16\"", "libtorch"});
#else
  CHECK(load_tensor(*ckpt, "u16")[2].item<std::int64_t>() == 65535);
#endif
}

TEST_CASE("a loaded tensor outlives its checkpoint and never writes to the file") {
  TempDir dir;
  save_tensors(dir.file("w.safetensors"), {{"w", torch::arange(6, torch::kFloat32).reshape({2, 3})}});
  const std::string before = read_file(dir.file("w.safetensors"));
  torch::Tensor t;
  {
    auto ckpt = Checkpoint::open(dir.file("w.safetensors"));
    t = load_tensor(*ckpt, "w");
  }
  t.add_(100);  // copy-on-write pages: the file is untouched
  CHECK(t[1][2].item<float>() == 105.f);
  CHECK(read_file(dir.file("w.safetensors")) == before);
}

TEST_CASE("save_checkpoint round-trips every torch dtype, non-contiguous tensors included") {
  TempDir dir;
  auto base = torch::randn({4, 6}, torch::TensorOptions().dtype(torch::kFloat32));
  NamedTensors tensors = {{"f32", base},
                          {"bf16", base.to(torch::kBFloat16)},
                          {"f16", base.to(torch::kFloat16)},
                          {"f64", base.to(torch::kFloat64)},
                          {"transposed", base.t()},
                          {"i64", torch::arange(5, torch::kInt64)},
                          {"b", base > 0}};
  save_checkpoint(dir.path(), tensors, 100, {{"format", "pt"}});
  auto ckpt = Checkpoint::open(dir.path());
  CHECK(ckpt->shard_count() > 1);
  CHECK(ckpt->metadata().at("total_size") != "");
  for (const auto& [name, tensor] : tensors) {
    CAPTURE(name);
    torch::Tensor loaded = load_tensor(*ckpt, name);
    CHECK((loaded.scalar_type() == tensor.scalar_type()));
    CHECK(torch::equal(loaded, tensor.contiguous()));
  }
  expect_error([&] { save_tensors(dir.file("x.safetensors"), {{"u", torch::Tensor()}}); }, ErrorCode::invalid_argument, {"\"u\"", "undefined"});
  expect_error([&] { save_tensors(dir.file("x.safetensors"), {{"c", torch::zeros({2}, torch::kComplexFloat)}}); },
               ErrorCode::unsupported, {"\"c\""});
}

TEST_CASE("BOOL tensors with bytes other than 0 and 1 are refused") {
  TempDir dir;
  const std::uint8_t bad[3] = {0, 2, 1};
  write_safetensors(dir.file("b.safetensors"), {{"mask", DType::BOOL, {3}, bad, 3}});
  auto ckpt = Checkpoint::open(dir.file("b.safetensors"));
  expect_error([&] { load_tensor(*ckpt, "mask"); }, ErrorCode::corrupt_data, {"\"mask\"", "byte value 2"});
}

// Deterministic files for the reference reader: with VLM_TEST_OUTPUT_DIR set they are kept there, and
// tools/oracle/check_written_safetensors.py verifies that the `safetensors` package loads them with these values.
TEST_CASE("files written for the reference reader") {
  TempDir tmp;
  const char* keep = std::getenv("VLM_TEST_OUTPUT_DIR");
  const std::string out = keep ? std::string(keep) : tmp.path();
  auto base = torch::arange(24, torch::kFloat32).reshape({4, 6}) / 8 - 1;
  NamedTensors tensors = {{"f32", base},
                          {"f16", base.to(torch::kFloat16)},
                          {"bf16", base.to(torch::kBFloat16)},
                          {"f64", base.to(torch::kFloat64)},
                          {"transposed", base.t()},
                          {"i64", torch::arange(-3, 3, torch::kInt64)},
                          {"i32", torch::arange(-3, 3, torch::kInt32)},
                          {"i16", torch::arange(-3, 3, torch::kInt16)},
                          {"i8", torch::arange(-3, 3, torch::kInt8)},
                          {"u8", torch::arange(250, 256, torch::kInt32).to(torch::kUInt8)},
                          {"mask", base > 0},
                          {"scalar", torch::tensor(2.5)}};
  save_tensors(out + "/single.safetensors", tensors, {{"format", "pt"}, {"writer", "vlmrt"}});
  save_checkpoint(out + "/sharded", tensors, 128, {{"format", "pt"}});
  auto single = Checkpoint::open(out + "/single.safetensors");
  auto sharded = Checkpoint::open(out + "/sharded");
  CHECK(sharded->shard_count() >= 3);
  for (const auto& [name, tensor] : tensors) {
    CAPTURE(name);
    CHECK(torch::equal(load_tensor(*single, name), tensor.contiguous()));
    CHECK(torch::equal(load_tensor(*sharded, name), tensor.contiguous()));
  }
}
