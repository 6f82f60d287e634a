// Loading: both key layouts, zero-copy weights, strict errors (missing / unexpected / wrongly shaped tensors,
// unknown model_type), and bad forward inputs.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "model/layers.h"
#include "model/qwen2_vl.h"
#include "model/registry.h"
#include "model/weights.h"
#include "model_fixture.h"
#include "tensor/tensor_io.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;
using namespace vlm::test;

namespace {

// Copies a fixture checkpoint folder (config + weights) to `dir`, letting `edit` change the tensors.
void copy_checkpoint(const std::string& config, const std::string& dir,
                     const std::function<void(NamedTensors&)>& edit) {
  std::filesystem::copy_file(model_fixture(config) + "/config.json", dir + "/config.json");
  auto checkpoint = Checkpoint::open(model_fixture(config));
  NamedTensors tensors;
  for (const auto& name : checkpoint->names()) tensors.emplace_back(name, load_tensor(*checkpoint, name));
  edit(tensors);
  save_tensors(dir + "/model.safetensors", tensors);
}

void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json config = nlohmann::json::parse(read_bytes(dir + "/config.json"));
  edit(config);
  std::ofstream(dir + "/config.json") << config.dump(2);
}

}  // namespace

TEST_CASE("supported model types and dtype names") {
  CHECK(supported_model_types() == std::vector<std::string>{"qwen2_vl", "qwen2_5_vl", "qwen2", "llama", "llava"});
  CHECK((parse_model_dtype("bf16") == torch::kBFloat16));
  CHECK((parse_model_dtype("float16") == torch::kHalf));
  CHECK((parse_model_dtype("float32") == torch::kFloat));
  expect_error([] { parse_model_dtype("int8"); }, ErrorCode::invalid_argument, {"int8", "bfloat16"});
}

TEST_CASE("the process settings tune malloc unless the environment sets it") {
#if defined(__GLIBC__)
  {
    vlm::test::ScopedEnv env;
    for (const char* name : {"VLMRT_MALLOC_TUNING", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}) {
      env.set(name, nullptr);
    }
    env.set("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F");
    CHECK(vlm::malloc_tuning_wanted());
    env.set("VLMRT_MALLOC_TUNING", "0");
    CHECK_FALSE(vlm::malloc_tuning_wanted());
    env.set("VLMRT_MALLOC_TUNING", "1");
    CHECK(vlm::malloc_tuning_wanted());
    env.set("MALLOC_MMAP_THRESHOLD_", "65536");
    CHECK_FALSE(vlm::malloc_tuning_wanted());
    env.set("MALLOC_MMAP_THRESHOLD_", nullptr);
    env.set("MALLOC_TRIM_THRESHOLD_", "65536");
    CHECK_FALSE(vlm::malloc_tuning_wanted());
    env.set("MALLOC_TRIM_THRESHOLD_", nullptr);
    env.set("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536");
    CHECK_FALSE(vlm::malloc_tuning_wanted());
  }
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's allocator replaces glibc's, so there is no glibc chunk header to read.
  MESSAGE("built with AddressSanitizer: only the decision was tested");
#else
  if (vlm::malloc_tuning_wanted()) {
    vlm::configure_process_for_models();
    // A 30 MB block now comes from the heap, not from its own mapping: glibc marks a mapped chunk by bit 1 of the
    // size word just before the block (IS_MMAPPED, unchanged since glibc 2.0).
    void* block = std::malloc(30 << 20);
    REQUIRE(block != nullptr);
    CHECK((static_cast<const std::size_t*>(block)[-1] & 2) == 0);
    std::free(block);
  } else {
    MESSAGE("this run's environment sets malloc itself: only the decision was tested");
  }
#endif
#else
  CHECK_FALSE(vlm::malloc_tuning_wanted());
#endif
}

TEST_CASE("loading reports missing tensors by name") {
  TempDir dir;
  copy_checkpoint("qwen2_vl_mha_untied", dir.path(), [](NamedTensors& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "model.visual.blocks.1.attn.qkv.bias"; }),
            t.end());
  });
  expect_error([&] { load_model(dir.path()); }, ErrorCode::corrupt_data,
               {"missing tensors (1)", "model.visual.blocks.1.attn.qkv.bias", "qwen2_vl"});
}

TEST_CASE("loading reports unexpected tensors by their checkpoint name") {
  TempDir dir;
  copy_checkpoint("qwen2_vl_gqa_tied_hub", dir.path(),
                  [](NamedTensors& t) { t.emplace_back("visual.blocks.9.attn.qkv.weight", torch::zeros({2, 2})); });
  expect_error([&] { load_model(dir.path()); }, ErrorCode::corrupt_data,
               {"unexpected tensors (1)", "visual.blocks.9.attn.qkv.weight"});
}

TEST_CASE("loading reports wrongly shaped tensors with both shapes, and every problem at once") {
  TempDir dir;
  copy_checkpoint("qwen2_5_vl_window_untied", dir.path(), [](NamedTensors& t) {
    for (auto& [name, tensor] : t) {
      if (name == "model.language_model.layers.0.self_attn.k_proj.weight") tensor = torch::zeros({16, 64});
    }
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "lm_head.weight"; }), t.end());
    t.emplace_back("model.bogus", torch::zeros({1}));
  });
  expect_error([&] { load_model(dir.path()); }, ErrorCode::corrupt_data,
               {"model.language_model.layers.0.self_attn.k_proj.weight is [16, 64] in the checkpoint, the model "
                "expects [32, 64]",
                "missing tensors (1): lm_head.weight", "unexpected tensors (1): model.bogus"});
}

TEST_CASE("a weight stored in an integer or boolean dtype is refused, naming the tensor") {
  TempDir dir;
  copy_checkpoint("qwen2_5_vl_window_untied", dir.path(), [](NamedTensors& t) {
    for (auto& [name, tensor] : t) {
      if (name == "model.language_model.layers.0.self_attn.k_proj.weight") tensor = tensor.to(torch::kInt32);
      if (name == "lm_head.weight") tensor = tensor.to(torch::kBool);
      if (name == "model.language_model.norm.weight") tensor = tensor.to(torch::kUInt8);
    }
  });
  expect_error([&] { load_model(dir.path()); }, ErrorCode::corrupt_data,
               {"tensors of a dtype no weight can have (3)",
                "model.language_model.layers.0.self_attn.k_proj.weight is stored as I32; a weight must be floating point",
                "lm_head.weight is stored as BOOL", "model.language_model.norm.weight is stored as U8"});
  // Floating-point dtypes other than the model's are converted, as before.
  TempDir half;
  copy_checkpoint("qwen2_5_vl_window_untied", half.path(), [](NamedTensors& t) {
    for (auto& [name, tensor] : t)
      if (name == "lm_head.weight") tensor = tensor.to(torch::kFloat64);
  });
  CHECK_NOTHROW(load_model(half.path()));
}

TEST_CASE("unknown model_type lists the supported ones") {
  TempDir dir;
  copy_checkpoint("qwen2_tied", dir.path(), [](NamedTensors&) {});
  edit_config(dir.path(), [](nlohmann::json& c) { c["model_type"] = "gpt_neox"; });
  expect_error([&] { load_model(dir.path()); }, ErrorCode::unsupported,
               {"model_type 'gpt_neox'", "qwen2_vl, qwen2_5_vl, qwen2, llama, llava", "config.json"});
}

TEST_CASE("a config that contradicts itself is refused") {
  TempDir dir;
  copy_checkpoint("qwen2_vl_mha_untied", dir.path(), [](NamedTensors&) {});
  edit_config(dir.path(), [](nlohmann::json& c) { c["text_config"]["rope_parameters"]["mrope_section"] = {2, 2, 2}; });
  expect_error([&] { load_model(dir.path()); }, ErrorCode::corrupt_data, {"mrope_section sums to 6", "8"});
  expect_error([] { load_model("/nonexistent/vlmrt-model"); }, ErrorCode::not_found, {"/nonexistent/vlmrt-model"});
}

TEST_CASE("both key layouts load; the tied head shares the embedding; fp32 weights stay zero-copy") {
  auto checkpoint = Checkpoint::open(model_fixture("qwen2_vl_gqa_tied_hub"));
  CHECK(checkpoint->contains("visual.blocks.0.attn.qkv.weight"));
  CHECK(checkpoint->contains("model.layers.0.self_attn.q_proj.weight"));
  CHECK_FALSE(checkpoint->contains("lm_head.weight"));
  auto other = Checkpoint::open(model_fixture("qwen2_vl_mha_untied"));
  CHECK(other->contains("model.language_model.layers.0.self_attn.q_proj.weight"));
  CHECK(other->contains("lm_head.weight"));
  auto hub = load_model(model_fixture("qwen2_vl_gqa_tied_hub"));
  auto fresh = load_model(model_fixture("qwen2_vl_mha_untied"));
  CHECK(hub->info().family == "qwen2_vl");
  CHECK(fresh->info().eos_token_ids == std::vector<std::int64_t>{2});
  CHECK(hub->info().num_layers == 2);
}

TEST_CASE("bad forward inputs give clear errors") {
  auto model = load_model(model_fixture("qwen2_vl_mha_untied"));
  auto c = load_case("qwen2_vl_mha_untied", "one_image");
  SUBCASE("one image token too few") {
    ForwardInputs in = c.inputs();
    auto ids = in.input_ids.clone();
    auto positions = (ids[0] == 250).nonzero();
    ids[0][positions[0][0].item<std::int64_t>()] = 7;
    in.input_ids = ids;
    expect_error([&] { model->forward(in, nullptr); }, ErrorCode::invalid_argument,
                 {"5 image tokens", "6 features"});
  }
  SUBCASE("pixel rows that do not match the grid") {
    ForwardInputs in = c.inputs();
    in.vision.pixel_values = in.vision.pixel_values.narrow(0, 0, 8);
    expect_error([&] { model->forward(in, nullptr); }, ErrorCode::invalid_argument, {"pixel_values has shape", "24"});
  }
  SUBCASE("token id outside the vocabulary") {
    ForwardInputs in;
    in.input_ids = torch::tensor({{3, 999}}, torch::kLong);
    expect_error([&] { model->forward(in, nullptr); }, ErrorCode::invalid_argument, {"999", "[0, 256)"});
  }
  SUBCASE("images on a decode step") {
    auto state = model->new_state(1);
    ForwardInputs text;
    text.input_ids = torch::tensor({{3, 4}}, torch::kLong);
    model->forward(text, state.get());
    ForwardInputs in = c.inputs();
    expect_error([&] { model->forward(in, state.get()); }, ErrorCode::invalid_argument, {"only be passed at prefill"});
  }
  SUBCASE("a state from another model") {
    auto text_model = load_model(model_fixture("qwen2_tied"));
    auto state = text_model->new_state(1);
    ForwardInputs in;
    in.input_ids = torch::tensor({{3, 4}}, torch::kLong);
    expect_error([&] { model->forward(in, state.get()); }, ErrorCode::invalid_argument, {"new_state"});
    in.vision = c.inputs().vision;
    expect_error([&] { text_model->forward(in, nullptr); }, ErrorCode::invalid_argument, {"text-only"});
  }
}

TEST_CASE("load_weights keeps matching float32 tensors as views of the mapped file and converts others") {
  TempDir dir;
  save_tensors(dir.file("model.safetensors"),
               {{"proj.weight", torch::arange(6, torch::kFloat).view({2, 3})}, {"proj.bias", torch::ones({2})}});
  auto checkpoint = Checkpoint::open(dir.path());
  struct Root : torch::nn::Module {
    Projection proj{nullptr};
    Root() { proj = register_module("proj", Projection(3, 2, true)); }
  };
  Root same;
  WeightLoadPlan plan;
  plan.family = "test";
  load_weights(same, *checkpoint, plan);
  CHECK(same.proj->weight.data_ptr() == load_tensor(*checkpoint, "proj.weight").data_ptr());
  CHECK(same.proj->weight[1][2].item<float>() == 5.f);

  Root converted;
  plan.dtype = torch::kBFloat16;
  load_weights(converted, *checkpoint, plan);
  CHECK((converted.proj->weight.scalar_type() == torch::kBFloat16));
  CHECK(converted.proj->weight.data_ptr() != load_tensor(*checkpoint, "proj.weight").data_ptr());
  CHECK(converted.proj->bias[0].item<float>() == 1.f);
}

TEST_CASE("Hub-style config.json of the released checkpoints parses (flat LM keys, in_chans, rope_scaling mrope)") {
  TempDir dir;
  // The shape of Qwen/Qwen2-VL-2B-Instruct's config.json (values as published on the Hub).
  write_bytes(dir.file("qwen2_vl/config.json"), R"({
    "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "torch_dtype": "bfloat16",
    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
    "hidden_size": 1536, "initializer_range": 0.02, "intermediate_size": 8960, "max_position_embeddings": 32768,
    "max_window_layers": 28, "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
    "use_cache": true, "use_sliding_window": false,
    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                      "hidden_size": 1536, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
                      "temporal_patch_size": 2},
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vocab_size": 151936})");
  auto c = QwenVLConfig::parse(ModelConfig::load(dir.file("qwen2_vl/config.json")));
  CHECK(c.text.hidden_size == 1536);
  CHECK(c.text.head_dim == 128);
  CHECK(c.text.num_kv_heads == 2);
  CHECK(c.rope_theta == 1e6);
  CHECK(c.mrope_section == std::vector<std::int64_t>{16, 24, 24});
  CHECK(c.vision.embed_dim == 1280);
  CHECK(c.vision.mlp_hidden == 5120);
  CHECK(c.vision.hidden_act == "quick_gelu");
  CHECK(c.vision.in_channels == 3);
  CHECK(c.tie_word_embeddings);
  CHECK(c.eos_token_ids == std::vector<std::int64_t>{151645});

  // The shape of Qwen/Qwen2.5-VL-3B-Instruct's config.json.
  write_bytes(dir.file("qwen2_5_vl/config.json"), R"({
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", "hidden_size": 2048,
    "intermediate_size": 11008, "num_attention_heads": 16, "num_hidden_layers": 36, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "tie_word_embeddings": true, "vocab_size": 151936,
    "use_sliding_window": false, "eos_token_id": 151645, "image_token_id": 151655,
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                      "num_heads": 16, "in_chans": 3, "out_hidden_size": 2048, "patch_size": 14,
                      "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
                      "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "temporal_patch_size": 2},
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}})");
  auto c25 = QwenVLConfig::parse(ModelConfig::load(dir.file("qwen2_5_vl/config.json")));
  CHECK(c25.vision.window_attention);
  CHECK(c25.vision.embed_dim == 1280);
  CHECK(c25.vision.out_hidden_size == 2048);
  CHECK(c25.vision.mlp_hidden == 3420);
  CHECK(c25.vision.fullatt_block_indexes == std::vector<std::int64_t>{7, 15, 23, 31});
  CHECK(c25.text.head_dim == 128);
}
