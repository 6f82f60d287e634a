#include "io/hf_files.h"

#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;

TEST_CASE("config.json: common fields, old and new dtype keys") {
  TempDir dir;
  vlm::test::write_bytes(dir.file("config.json"), R"({"model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"],
    "torch_dtype": "bfloat16", "tie_word_embeddings": false, "vision_config": {"depth": 2}})");
  auto c = ModelConfig::load(dir.file("config.json"));
  CHECK(c.model_type == "qwen2_vl");
  CHECK(c.architectures.at(0) == "Qwen2VLForConditionalGeneration");
  CHECK(c.torch_dtype == "bfloat16");
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.raw.child("vision_config").get<int>("depth") == 2);
  vlm::test::write_bytes(dir.file("config.json"), R"({"model_type": "llava", "dtype": "float16"})");
  c = ModelConfig::load(dir.file("config.json"));
  CHECK(c.torch_dtype == "float16");
  CHECK(c.tie_word_embeddings);
}

TEST_CASE("generation_config.json") {
  TempDir dir;
  vlm::test::write_bytes(dir.file("g.json"), R"({"do_sample": true, "top_k": 1, "top_p": 0.001, "temperature": 0.1,
    "repetition_penalty": 1.05, "eos_token_id": [151645, 151643], "pad_token_id": 151643, "early_stopping": "never"})");
  auto g = GenerationDefaults::load(dir.file("g.json"));
  CHECK(*g.do_sample);
  CHECK(*g.top_k == 1);
  CHECK(*g.temperature == doctest::Approx(0.1));
  CHECK(g.eos_token_ids == std::vector<std::int64_t>{151645, 151643});
  CHECK(*g.pad_token_id == 151643);
  CHECK(*g.early_stopping == "never");
  CHECK_FALSE(g.max_new_tokens.has_value());
  vlm::test::write_bytes(dir.file("g.json"), R"({"eos_token_id": 2, "early_stopping": true})");
  g = GenerationDefaults::load(dir.file("g.json"));
  CHECK(g.eos_token_ids == std::vector<std::int64_t>{2});
  CHECK(*g.early_stopping == "true");
  vlm::test::write_bytes(dir.file("g.json"), R"({"early_stopping": "sometimes"})");
  expect_error([&] { GenerationDefaults::load(dir.file("g.json")); }, ErrorCode::invalid_argument, {"'early_stopping'", "never"});
}

TEST_CASE("preprocessor_config.json") {
  TempDir dir;
  vlm::test::write_bytes(dir.file("p.json"), R"({"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 3136,
    "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "size": {"shortest_edge": 3136, "longest_edge": 12845056}, "resample": 3})");
  auto p = PreprocessorConfig::load(dir.file("p.json"));
  CHECK(p.image_processor_type == "Qwen2VLImageProcessor");
  CHECK(*p.min_pixels == 3136);
  CHECK(*p.merge_size == 2);
  CHECK(p.image_mean.at(2) == doctest::Approx(0.40821073));
  CHECK(p.size.at("longest_edge") == 12845056);
  CHECK(p.rescale_factor == doctest::Approx(1.0 / 255.0));
  vlm::test::write_bytes(dir.file("p.json"), R"({"crop_size": 336, "size": {"shortest_edge": 336}})");
  p = PreprocessorConfig::load(dir.file("p.json"));
  CHECK(p.crop_size.at("height") == 336);
  CHECK(p.size.at("shortest_edge") == 336);
  vlm::test::write_bytes(dir.file("p.json"), R"({"image_mean": [0.5, 0.5]})");
  expect_error([&] { PreprocessorConfig::load(dir.file("p.json")); }, ErrorCode::invalid_argument, {"'image_mean'", "3 values"});
  vlm::test::write_bytes(dir.file("p.json"), R"({"image_std": [0.5, 0, 0.5]})");
  expect_error([&] { PreprocessorConfig::load(dir.file("p.json")); }, ErrorCode::invalid_argument, {"'image_std'"});
}

TEST_CASE("tokenizer_config.json with real files") {
  auto llama = TokenizerConfig::load(std::string(VLM_SHARED_DATA_DIR) + "/tokenizers/llama2/tokenizer_config.json");
  CHECK(*llama.add_bos_token);
  CHECK(*llama.bos_token == "<s>");
  CHECK(*llama.eos_token == "</s>");
  auto qwen = TokenizerConfig::load(std::string(VLM_SHARED_DATA_DIR) + "/tokenizers/qwen3/tokenizer_config.json");
  CHECK(*qwen.eos_token == "<|im_end|>");
  REQUIRE(qwen.chat_templates.count("default") == 1);
  CHECK(qwen.chat_templates.at("default").find("<|im_start|>") != std::string::npos);

  TempDir dir;
  vlm::test::write_bytes(dir.file("t.json"), R"({"chat_template": [{"name": "default", "template": "A"}, {"name": "tool_use", "template": "B"}],
    "pad_token": {"content": "<pad>", "lstrip": false}, "model_max_length": 1e30})");
  auto t = TokenizerConfig::load(dir.file("t.json"));
  CHECK(t.chat_templates.at("tool_use") == "B");
  CHECK(*t.pad_token == "<pad>");
  CHECK(*t.model_max_length == 1e30);
  vlm::test::write_bytes(dir.file("t.json"), R"({"chat_template": 5})");
  expect_error([&] { TokenizerConfig::load(dir.file("t.json")); }, ErrorCode::invalid_argument, {"'chat_template'"});
}
