// LLaVA-1.5 against transformers 5.23.0's LlavaForConditionalGeneration on tiny random checkpoints
// (tests/fixtures/llava, made by tools/oracle/gen_llava_fixtures.py): every logit of every case in fp32, the
// KV-cache path, bfloat16, generate() greedy and beam token for token (batched and row by row), both checkpoint
// key layouts, config parsing and the errors for bad inputs.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

#include "generate/generate.h"
#include "io/checkpoint.h"
#include "model/llava.h"
#include "model/registry.h"
#include "tensor/tensor_io.h"
#include "test_util.h"

using namespace vlm;

namespace {

constexpr double kFp32Tolerance = 1e-4;
const char* const kConfigs[] = {"llava_default_gqa_untied", "llava_full_list_tied_hub", "llava_last_linear_nobias"};
const char* const kCases[] = {"one_image", "two_images", "no_image", "batch_left_pad"};

std::string llava_fixture(const std::string& path) { return vlm::test::fixture("llava/" + path); }

struct Case {
  std::map<std::string, torch::Tensor> t;
  ForwardInputs inputs() const {
    ForwardInputs in;
    in.input_ids = t.at("input_ids");
    in.attention_mask = t.at("attention_mask");
    if (t.count("pixel_values")) in.vision.pixel_values = t.at("pixel_values");
    return in;
  }
};

Case load_case(const std::string& config, const std::string& name) {
  auto ckpt = Checkpoint::open(llava_fixture(config + "/cases/" + name + ".safetensors"));
  Case c;
  for (const auto& [key, tensor] : load_all_tensors(*ckpt)) c.t[key] = tensor.clone();
  return c;
}

double max_diff_on(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  return (a - b).abs().index({mask.to(torch::kBool)}).max().item<double>();
}

ModelConfig config_from(const std::string& json_text) {
  vlm::test::TempDir dir;
  vlm::test::write_bytes(dir.file("config.json"), json_text);
  return ModelConfig::load(dir.file("config.json"));
}

}  // namespace

TEST_CASE("LLaVA logits match transformers (fp32, every position, both key layouts)") {
  double worst = 0;
  const std::map<std::string, std::int64_t> tokens = {
      {"llava_default_gqa_untied", 4}, {"llava_full_list_tied_hub", 10}, {"llava_last_linear_nobias", 4}};
  for (const char* config : kConfigs) {
    auto model = load_model(llava_fixture(config));
    CHECK(model->info().family == "llava");
    CHECK(model->info().image_token_id == 250);
    CHECK(model->info().tokens_per_image == tokens.at(config));
    CHECK(model->info().language_model_prefix == "model.language_model.");
    CHECK(model->info().vision_tower_prefix == "model.vision_tower.");
    CHECK(model->info().projector_prefix == "model.multi_modal_projector.");
    for (const char* name : kCases) {
      CAPTURE(config);
      CAPTURE(name);
      auto c = load_case(config, name);
      auto logits = model->forward(c.inputs(), nullptr);
      const auto& expected = c.t.at("logits");
      REQUIRE((logits.sizes() == expected.sizes()));
      const double real = max_diff_on(logits, expected, c.t.at("attention_mask"));
      const double all = (logits - expected).abs().max().item<double>();
      INFO("max |diff| real tokens " << real << ", everywhere " << all);
      CHECK(real < kFp32Tolerance);
      CHECK(all < kFp32Tolerance);
      worst = std::max(worst, all);
    }
  }
  MESSAGE("LLaVA: largest |vlmrt - transformers| logit difference " << worst);
}

TEST_CASE("LLaVA KV cache: prefill + decode steps equal the full forward; reorder keeps rows") {
  for (const char* config : kConfigs) {
    auto model = load_model(llava_fixture(config));
    for (const char* name : {"one_image", "batch_left_pad"}) {
      CAPTURE(config);
      CAPTURE(name);
      auto c = load_case(config, name);
      const auto& ids = c.t.at("input_ids");
      const auto& mask = c.t.at("attention_mask");
      const auto& expected = c.t.at("logits");
      const auto len = ids.size(1), prefix = len - 3;
      auto state = model->new_state(ids.size(0));
      ForwardInputs prefill = c.inputs();
      prefill.input_ids = ids.narrow(1, 0, prefix);
      prefill.attention_mask = mask.narrow(1, 0, prefix);
      auto logits = model->forward(prefill, state.get());
      CHECK(max_diff_on(logits, expected.narrow(1, 0, prefix), mask.narrow(1, 0, prefix)) < kFp32Tolerance);
      for (std::int64_t j = prefix; j < len; ++j) {
        ForwardInputs step;
        step.input_ids = ids.narrow(1, j, 1);
        step.attention_mask = mask.narrow(1, 0, j + 1);
        step.all_logits = false;
        auto out = model->forward(step, state.get());
        CHECK((out.select(1, 0) - expected.select(1, j)).abs().max().item<double>() < kFp32Tolerance);
      }
      CHECK(state->length() == len);
    }
  }
  // Beam search reorders rows: swap the two rows after the prefill and decode the last token of each.
  auto model = load_model(llava_fixture("llava_default_gqa_untied"));
  auto c = load_case("llava_default_gqa_untied", "batch_left_pad");
  const auto& ids = c.t.at("input_ids");
  const auto& mask = c.t.at("attention_mask");
  const auto len = ids.size(1);
  auto state = model->new_state(2);
  ForwardInputs prefill = c.inputs();
  prefill.input_ids = ids.narrow(1, 0, len - 1);
  prefill.attention_mask = mask.narrow(1, 0, len - 1);
  model->forward(prefill, state.get());
  auto order = torch::tensor({1, 0}, torch::kLong);
  state->reorder(order);
  ForwardInputs step;
  step.input_ids = ids.index_select(0, order).narrow(1, len - 1, 1);
  step.attention_mask = mask.index_select(0, order);
  step.all_logits = false;
  auto out = model->forward(step, state.get());
  auto expected = c.t.at("logits").index_select(0, order).select(1, len - 1);
  CHECK((out.select(1, 0) - expected).abs().max().item<double>() < kFp32Tolerance);
}

// bfloat16: same bound as the Qwen2-VL tests (tests/model/test_model_parity.cpp): a quarter of transformers' own
// bf16-vs-fp32 gap plus 2% of the logit range.
TEST_CASE("LLaVA bfloat16 runs match transformers' bfloat16 logits") {
  for (const char* config : kConfigs) {
    LoadOptions options;
    options.dtype = torch::kBFloat16;
    auto model = load_model(llava_fixture(config), options);
    auto c = load_case(config, "one_image_bf16");
    auto logits = model->forward(c.inputs(), nullptr);
    const auto& hf16 = c.t.at("logits");
    const auto& hf32 = c.t.at("logits_fp32");
    const double ours = (logits - hf16).abs().max().item<double>();
    const double gap = (hf16 - hf32).abs().max().item<double>();
    const double range = hf32.abs().max().item<double>();
    MESSAGE(std::string(config) << " bf16: |vlmrt - transformers bf16| " << ours << ", transformers' bf16-vs-fp32 gap " << gap);
    CHECK(ours < 0.25 * gap + 0.02 * range);
    CHECK((logits.argmax(-1) == hf16.argmax(-1)).to(torch::kFloat).mean().item<double>() >= 0.9);
  }
}

TEST_CASE("LLaVA generate() equals transformers' generate(): greedy and beam, batched and row by row") {
  auto fixture = nlohmann::json::parse(vlm::test::read_bytes(llava_fixture("generate.json")));
  std::map<std::string, std::unique_ptr<VisionLanguageModel>> models;
  int compared = 0;
  for (const auto& r : fixture["results"]) {
    const std::string model_name = r["model"], case_name = r["case"], setting = r["setting"]["name"];
    CAPTURE(model_name);
    CAPTURE(case_name);
    CAPTURE(setting);
    auto& model = models[model_name];
    if (!model) model = load_model(llava_fixture(model_name));
    GenerationOptions o;
    o.max_new_tokens = r["setting"]["max_new_tokens"].get<int>();
    if (r["setting"].contains("num_beams")) o.num_beams = r["setting"]["num_beams"].get<int>();
    o.do_sample = false;
    o.eos_token_ids = std::vector<std::int64_t>{2};
    o.pad_token_id = 0;
    auto c = load_case(model_name, case_name);
    auto batch = c.inputs();
    auto trim = [](const std::vector<std::int64_t>& tokens, std::size_t n) {  // transformers pads finished rows
      std::vector<std::int64_t> out;
      for (auto t : tokens) {
        if (out.size() == n) break;
        out.push_back(t);
        if (t == 2) break;
      }
      return out;
    };
    auto got = generate(*model, batch, o);
    const auto expected = r["batched"].get<std::vector<std::vector<std::int64_t>>>();
    REQUIRE(got.tokens.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CHECK(got.tokens[i] == trim(expected[i], got.tokens[i].size()));
      ++compared;
    }
    if (r.contains("rows")) {
      const auto rows = r["rows"].get<std::vector<std::vector<std::int64_t>>>();
      const auto per_image = model->info().tokens_per_image;
      std::int64_t used = 0;
      for (std::int64_t row = 0; row < batch.input_ids.size(0); ++row) {
        auto ids = batch.input_ids[row].masked_select(batch.attention_mask[row].to(torch::kBool)).unsqueeze(0);
        ForwardInputs one;
        one.input_ids = ids;
        one.attention_mask = torch::ones_like(ids);
        const auto images = (ids == model->info().image_token_id).sum().item<std::int64_t>() / per_image;
        if (images > 0) one.vision.pixel_values = batch.vision.pixel_values.narrow(0, used, images);
        used += images;
        auto single = generate(*model, one, o);
        CHECK(single.tokens[0] == trim(rows[row], rows[row].size()));
        // Batched equals unbatched.
        CHECK(single.tokens[0] == got.tokens[row]);
        ++compared;
      }
    }
  }
  CHECK(compared >= 30);
}

TEST_CASE("LLaVA config: feature layers, strategies, Hub layout keys and class defaults") {
  auto hub = LlavaConfig::parse(ModelConfig::load(llava_fixture("llava_full_list_tied_hub/config.json")));
  CHECK(hub.image_token_id == 250);
  CHECK(hub.feature_layer_is_list);
  CHECK(hub.vision_feature_layers == std::vector<std::int64_t>{-3, -1});
  CHECK(hub.resolved_feature_layers() == std::vector<std::int64_t>{1, 3});
  CHECK(hub.select_strategy == "full");
  CHECK(hub.tokens_per_image() == 10);
  CHECK(hub.tie_word_embeddings);

  // The llava-hf/llava-1.5-7b-hf config.json: text_config lists only what differs from LlamaConfig, the vision
  // tower is CLIP-L/14-336.
  auto real = LlavaConfig::parse(config_from(R"({
    "architectures": ["LlavaForConditionalGeneration"], "ignore_index": -100, "image_token_index": 32000,
    "model_type": "llava", "pad_token_id": 32001, "projector_hidden_act": "gelu",
    "text_config": {"_name_or_path": "lmsys/vicuna-7b-v1.5", "architectures": ["LlamaForCausalLM"],
                    "max_position_embeddings": 4096, "model_type": "llama", "rms_norm_eps": 1e-05,
                    "torch_dtype": "float16", "vocab_size": 32064},
    "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.36.0.dev0",
    "vision_config": {"hidden_size": 1024, "image_size": 336, "intermediate_size": 4096,
                      "model_type": "clip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 24,
                      "patch_size": 14, "projection_dim": 768, "vocab_size": 32000},
    "vision_feature_layer": -2, "vision_feature_select_strategy": "default", "vocab_size": 32064})"));
  CHECK(real.text.decoder.vocab_size == 32064);
  CHECK(real.text.decoder.hidden_size == 4096);
  CHECK(real.text.decoder.intermediate_size == 11008);
  CHECK(real.text.decoder.num_layers == 32);
  CHECK(real.text.decoder.num_kv_heads == 32);
  CHECK(real.text.decoder.head_dim == 128);
  CHECK(real.text.decoder.rms_norm_eps == doctest::Approx(1e-5));
  CHECK(real.text.rope_theta == doctest::Approx(10000.0));
  CHECK(real.text.pad_token_id == 32001);
  CHECK(real.vision.hidden_act == "quick_gelu");
  CHECK(real.vision.layer_norm_eps == doctest::Approx(1e-5));
  CHECK(real.tokens_per_image() == 576);
  CHECK(real.resolved_feature_layers() == std::vector<std::int64_t>{23});
  CHECK_FALSE(real.tie_word_embeddings);

  // Key layouts: the llava-hf Hub names, transformers 4.52..4.x and 5.23 all map to the same module paths.
  CHECK(llava_module_key("language_model.model.layers.0.self_attn.q_proj.weight") ==
        "model.language_model.layers.0.self_attn.q_proj.weight");
  CHECK(llava_module_key("language_model.lm_head.weight") == "lm_head.weight");
  CHECK(llava_module_key("vision_tower.vision_model.encoder.layers.3.mlp.fc1.bias") ==
        "model.vision_tower.encoder.layers.3.mlp.fc1.bias");
  CHECK(llava_module_key("model.vision_tower.vision_model.pre_layrnorm.weight") ==
        "model.vision_tower.pre_layrnorm.weight");
  CHECK(llava_module_key("multi_modal_projector.linear_1.weight") == "model.multi_modal_projector.linear_1.weight");
  CHECK(llava_module_key("model.language_model.norm.weight") == "model.language_model.norm.weight");
  CHECK(llava_module_key("lm_head.weight") == "lm_head.weight");
}

TEST_CASE("LLaVA config errors name the key") {
  vlm::test::expect_error([] { LlavaConfig::parse(config_from(R"({"model_type": "llava", "vision_feature_select_strategy": "cls"})")); },
                          ErrorCode::unsupported, {"vision_feature_select_strategy", "cls"});
  vlm::test::expect_error([] { LlavaConfig::parse(config_from(R"({"model_type": "llava", "vision_feature_layer": -30})")); },
                          ErrorCode::corrupt_data, {"vision_feature_layer", "-30", "-25 .. 24"});
  vlm::test::expect_error([] { LlavaConfig::parse(config_from(R"({"model_type": "llava", "vision_feature_layer": []})")); },
                          ErrorCode::corrupt_data, {"vision_feature_layer", "empty"});
  vlm::test::expect_error(
      [] { LlavaConfig::parse(config_from(R"({"model_type": "llava", "text_config": {"model_type": "gemma"}})")); },
      ErrorCode::unsupported, {"text_config.model_type", "gemma"});
  vlm::test::expect_error(
      [] { LlavaConfig::parse(config_from(R"({"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"}})")); },
      ErrorCode::unsupported, {"siglip_vision_model"});
  vlm::test::expect_error(
      [] {
        LlavaConfig::parse(config_from(R"({"model_type": "llava", "image_token_index": 40000,
                                           "text_config": {"vocab_size": 320}})"));
      },
      ErrorCode::corrupt_data, {"image_token_index", "40000", "320"});
  vlm::test::expect_error(
      [] {
        LlavaConfig::parse(config_from(R"({"model_type": "llava", "text_config": {"rope_scaling": {"rope_type": "yarn", "factor": 2}}})"));
      },
      ErrorCode::unsupported, {"yarn"});
}

TEST_CASE("LLaVA forward errors: token/feature count mismatch, wrong image size, images after prefill") {
  auto model = load_model(llava_fixture("llava_default_gqa_untied"));
  auto c = load_case("llava_default_gqa_untied", "one_image");
  // Two images for a prompt with one image's tokens: the message names both counts.
  ForwardInputs two = c.inputs();
  two.vision.pixel_values = torch::cat({two.vision.pixel_values, two.vision.pixel_values}, 0);
  vlm::test::expect_error([&] { model->forward(two, nullptr); }, ErrorCode::invalid_argument,
                          {"tokens: 4", "features: 8"});
  ForwardInputs wrong = c.inputs();
  wrong.vision.pixel_values = torch::zeros({1, 3, 42, 42});
  vlm::test::expect_error([&] { model->forward(wrong, nullptr); }, ErrorCode::invalid_argument, {"pixel_values", "28"});
  auto state = model->new_state(1);
  ForwardInputs text = c.inputs();
  text.vision = VisionInputs();
  text.input_ids = torch::tensor({{1, 5, 6}}, torch::kLong);
  text.attention_mask = torch::ones({1, 3}, torch::kLong);
  model->forward(text, state.get());
  ForwardInputs late = c.inputs();
  late.input_ids = torch::tensor({{7}}, torch::kLong);
  late.attention_mask = torch::ones({1, 4}, torch::kLong);
  vlm::test::expect_error([&] { model->forward(late, state.get()); }, ErrorCode::invalid_argument, {"prefill"});
}

TEST_CASE("LLaVA continuation log-likelihoods equal those computed from transformers' logits") {
  int checked = 0;
  for (const char* config : kConfigs) {
    auto model = load_model(llava_fixture(config));
    for (const char* name : {"one_image", "two_images", "no_image"}) {
      CAPTURE(config);
      CAPTURE(name);
      auto c = load_case(config, name);
      torch::Tensor ids = c.t.at("input_ids")[0];
      torch::Tensor reference = torch::log_softmax(c.t.at("logits")[0].to(torch::kFloat64), -1);
      VisionInputs vision;
      if (c.t.count("pixel_values")) vision.pixel_values = c.t.at("pixel_values");
      // The last 4 tokens (text after the last image) as the continuation of the rest.
      const std::int64_t n = ids.size(0), k = n - 4;
      std::vector<std::int64_t> all(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + n);
      std::vector<std::int64_t> prompt(all.begin(), all.begin() + k), continuation(all.begin() + k, all.end());
      ContinuationScore s = score_continuation(*model, prompt, continuation, vision);
      REQUIRE(s.token_logprobs.size() == 4);
      double sum = 0;
      bool greedy = true;
      for (std::int64_t i = 0; i < 4; ++i) {
        const double expected = reference[k - 1 + i][continuation[i]].item<double>();
        CHECK(std::abs(s.token_logprobs[i] - expected) <= 1e-4);
        sum += expected;
        greedy = greedy && reference[k - 1 + i].argmax().item<std::int64_t>() == continuation[i];
      }
      CHECK(std::abs(s.sum - sum) <= 4e-4);
      CHECK(s.is_greedy == greedy);
      ++checked;
    }
  }
  CHECK(checked == 9);
}

TEST_CASE("LLaVA float16 on the CPU runs and stays close to float32") {
  LoadOptions options;
  options.dtype = torch::kHalf;
  auto model = load_model(llava_fixture("llava_full_list_tied_hub"), options);
  auto c = load_case("llava_full_list_tied_hub", "two_images");
  auto logits = model->forward(c.inputs(), nullptr);
  const double diff = (logits - c.t.at("logits")).abs().max().item<double>();
  const double range = c.t.at("logits").abs().max().item<double>();
  INFO("fp16 vs transformers fp32: " << diff << " (logit range " << range << ")");
  CHECK(diff < 0.02 * range);
  CHECK((logits.argmax(-1) == c.t.at("logits").argmax(-1)).to(torch::kFloat).mean().item<double>() >= 0.9);
}
