// LoRA against PEFT 0.21.2: adapters written by PEFT load and give PEFT's logits, loss and gradients; one AdamW step
// gives torch.optim.AdamW's weights; every configuration variant selects PEFT's modules and merges like PEFT.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "io/checkpoint.h"
#include "model/lora.h"
#include "model/registry.h"
#include "tensor/tensor_io.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/training_step.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;
using namespace vlm::test;

namespace {

const std::string kBase = fixture("session/qwen2_vl_tiny");

std::map<std::string, torch::Tensor> tensors_of(const std::string& relative) {
  return load_all_tensors(*Checkpoint::open(fixture(relative), "x"));
}

ForwardInputs one_step_batch(std::map<std::string, torch::Tensor>& t) {
  ForwardInputs in;
  in.input_ids = t.at("batch_input_ids");
  in.attention_mask = t.at("batch_attention_mask");
  in.vision.pixel_values = t.at("batch_pixel_values");
  in.vision.image_grid_thw = t.at("batch_image_grid_thw");
  in.all_logits = true;
  return in;
}

// max |a - b| over the real (unpadded) positions of logits [B, L, V].
double masked_logit_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  auto m = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(m).max().item<double>();
}

double relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

nlohmann::json read_json(const std::string& relative) {
  std::ifstream in(fixture(relative));
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("a PEFT adapter gives PEFT's logits, loss and gradients; one AdamW step gives torch's weights") {
  auto model = load_model(kBase);
  auto lora = LoraModel::load(*model, fixture("train/adapter_start"), /*trainable=*/true);
  CHECK(lora->adapted_paths().size() == 4);
  auto t = tensors_of("train/one_step.safetensors");
  auto in = one_step_batch(t);
  auto logits = model->forward(in, nullptr);
  CHECK(masked_logit_diff(logits, t.at("logits"), in.attention_mask) <= 1e-4);
  const auto labels = t.at("batch_labels");
  auto loss = causal_lm_loss_sum(logits, labels) / static_cast<double>(predicted_token_count(labels));
  CHECK(std::abs(loss.item<double>() - t.at("loss").item<double>()) <= 1e-5 * std::abs(t.at("loss").item<double>()));
  loss.backward();
  int compared = 0;
  for (const auto& [name, param] : lora->parameters()) {
    INFO(name);
    REQUIRE(t.count("grad." + name));
    CHECK(relative_diff(param.grad(), t.at("grad." + name)) <= 1e-4);
    ++compared;
  }
  CHECK(compared == 8);
  AdamWOptions options;
  options.weight_decay = 0.01;
  AdamW adam(lora->parameters(), options);
  adam.step(1e-3);
  for (const auto& [name, param] : lora->parameters()) {
    INFO(name);
    CHECK(relative_diff(param.detach(), t.at("after." + name)) <= 1e-5);
  }
}

TEST_CASE("every PEFT configuration variant: modules, parameter counts, logits, merge") {
  const auto index = read_json("train/variants/index.json");
  auto t = tensors_of("train/one_step.safetensors");
  auto in = one_step_batch(t);
  for (const auto& [name, entry] : index.items()) {
    SUBCASE(name.c_str()) {
      auto model = load_model(kBase);
      auto lora = LoraModel::load(*model, fixture("train/variants/" + name));
      auto expected_modules = entry.at("lora_modules").get<std::vector<std::string>>();
      auto paths = lora->adapted_paths();
      std::sort(paths.begin(), paths.end());
      std::sort(expected_modules.begin(), expected_modules.end());
      CHECK(paths == expected_modules);
      CHECK(lora->trainable_parameter_count() == entry.at("trainable_params").get<std::int64_t>());
      CHECK(lora->total_parameter_count() == entry.at("all_params").get<std::int64_t>());
      auto reference = tensors_of("train/variants/" + name + "/logits.safetensors");
      torch::NoGradGuard no_grad;
      auto logits = model->forward(in, nullptr);
      CHECK(masked_logit_diff(logits, reference.at("logits"), in.attention_mask) <= 1e-4);
      lora->merge_and_unload();
      auto merged = model->forward(in, nullptr);
      CHECK(masked_logit_diff(merged, reference.at("merged_logits"), in.attention_mask) <= 1e-4);

      // The same configuration created fresh selects the same modules.
      auto fresh_model = load_model(kBase);
      auto config = LoraConfig::from_peft_json(read_json("train/variants/" + name + "/adapter_config.json"), name);
      LoraScope everything;
      everything.vision_tower = everything.projector = true;
      auto fresh = LoraModel::create(*fresh_model, config, everything);
      auto fresh_paths = fresh->adapted_paths();
      std::sort(fresh_paths.begin(), fresh_paths.end());
      CHECK(fresh_paths == expected_modules);
      CHECK(fresh->trainable_parameter_count() == entry.at("trainable_params").get<std::int64_t>());
    }
  }
}

TEST_CASE("adapters round-trip through PEFT's file format; both key layouts load") {
  auto model = load_model(kBase);
  auto lora = LoraModel::load(*model, fixture("train/adapter_start"));
  TempDir dir;
  lora->save(dir.file("adapter"));
  auto written = load_all_tensors(*Checkpoint::open(dir.file("adapter/adapter_model.safetensors"), "x"));
  auto original = tensors_of("train/adapter_start/adapter_model.safetensors");
  REQUIRE(written.size() == original.size());
  for (const auto& [key, tensor] : original) {
    INFO(key);
    REQUIRE(written.count(key));
    CHECK(torch::equal(written.at(key), tensor));
  }
  std::ifstream config_file(dir.file("adapter/adapter_config.json"));
  auto config = nlohmann::json::parse(config_file);
  CHECK(config.at("peft_type") == "LORA");
  CHECK(config.at("r") == 4);
  CHECK(config.at("lora_alpha") == 8);

  // Old layout keys (base_model.model.model.layers.N...) reach the same modules and the same logits.
  auto t = tensors_of("train/one_step.safetensors");
  auto in = one_step_batch(t);
  torch::NoGradGuard no_grad;
  auto expected = model->forward(in, nullptr);
  auto old_model = load_model(kBase);
  auto old = LoraModel::load(*old_model, fixture("train/old_naming"));
  CHECK(old->adapted_paths().size() == 4);
  CHECK(masked_logit_diff(old_model->forward(in, nullptr), expected, in.attention_mask) == 0.0);
}

TEST_CASE("adapter errors name the problem") {
  auto model = load_model(kBase);
  TempDir dir;
  expect_error([&] { LoraModel::load(*model, dir.path()); }, ErrorCode::not_found, {"adapter_config.json"});
  // Keys for modules the model lacks.
  std::filesystem::copy(fixture("train/adapter_start/adapter_config.json"), dir.file("adapter_config.json"));
  save_tensors(dir.file("adapter_model.safetensors"),
               {{"base_model.model.model.language_model.layers.7.self_attn.q_proj.lora_A.weight", torch::zeros({4, 64})},
                {"base_model.model.model.language_model.layers.7.self_attn.q_proj.lora_B.weight", torch::zeros({64, 4})}});
  expect_error([&] { LoraModel::load(*model, dir.path()); }, ErrorCode::corrupt_data,
               {"no adapter key matches", "layers.7.self_attn.q_proj"});
  // A rank that does not fit the module.
  save_tensors(dir.file("adapter_model.safetensors"),
               {{"base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight", torch::zeros({4, 65})},
                {"base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_B.weight", torch::zeros({64, 4})}});
  expect_error([&] { LoraModel::load(*model, dir.path()); }, ErrorCode::corrupt_data, {"wrongly shaped", "lora_A"});
  // Tensors of a consistent rank that adapter_config.json does not give (r: 4 there): PEFT refuses them too.
  save_tensors(dir.file("adapter_model.safetensors"),
               {{"base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight", torch::zeros({8, 64})},
                {"base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_B.weight", torch::zeros({64, 8})}});
  expect_error([&] { LoraModel::load(*model, dir.path()); }, ErrorCode::corrupt_data,
               {"ranks that disagree with adapter_config.json", "layers.0.self_attn.q_proj.lora_A.weight has rank 8, "
                                                                "adapter_config.json gives 4"});
  // The same rank given through rank_pattern is accepted.
  auto config_json = nlohmann::json::parse(read_file(fixture("train/adapter_start/adapter_config.json")));
  config_json["rank_pattern"] = {{"q_proj", 8}};
  write_file_atomic(dir.file("adapter_config.json"), config_json.dump());
  auto lora = LoraModel::load(*model, dir.path());
  CHECK(lora->adapted_paths().size() == 1);
  lora->unload();
}

TEST_CASE("targets: the default stays in the language model; frozen parts are refused with the switch to turn") {
  auto model = load_model(kBase);
  {
    auto lora = LoraModel::create(*model, LoraConfig{});
    for (const auto& path : lora->adapted_paths()) CHECK(path.rfind("model.language_model.", 0) == 0);
    CHECK(lora->adapted_paths().size() == 4);
    lora->unload();
  }
  LoraConfig vision;
  vision.target_modules = std::vector<std::string>{"qkv"};
  expect_error([&] { LoraModel::create(*model, vision); }, ErrorCode::invalid_argument,
               {"frozen", "freeze_vision_tower: false"});
  LoraScope vision_only;
  vision_only.language_model = false;
  expect_error([&] { LoraModel::create(*model, LoraConfig{}, vision_only); }, ErrorCode::invalid_argument,
               {"frozen", "freeze_language_model: false"});
  vision_only.vision_tower = true;
  {
    auto towers = LoraModel::create(*model, vision, vision_only);
    CHECK(towers->adapted_paths().size() == 2);  // the two vision blocks' qkv
    towers->unload();
  }
  LoraConfig nothing;
  nothing.target_modules = std::vector<std::string>{"no_such_proj"};
  expect_error([&] { LoraModel::create(*model, nothing); }, ErrorCode::invalid_argument,
               {"no_such_proj", "matched no linear layer"});
  // all-linear without unfreezing: only the language model (not lm_head).
  LoraConfig all;
  all.target_modules = std::vector<std::string>{"all-linear"};
  auto lora = LoraModel::create(*model, all);
  CHECK(lora->adapted_paths().size() == 14);
  for (const auto& path : lora->adapted_paths()) CHECK(path.rfind("model.language_model.", 0) == 0);
}

TEST_CASE("schedules and the step plan follow transformers") {
  // get_linear_schedule_with_warmup(W=2, T=20)
  CHECK(schedule_multiplier("linear", 0, 2, 20) == 0.0);
  CHECK(schedule_multiplier("linear", 1, 2, 20) == 0.5);
  CHECK(schedule_multiplier("linear", 2, 2, 20) == 1.0);
  CHECK(schedule_multiplier("linear", 11, 2, 20) == doctest::Approx(0.5));
  CHECK(schedule_multiplier("linear", 20, 2, 20) == 0.0);
  CHECK(schedule_multiplier("cosine", 11, 2, 20) == doctest::Approx(0.5));
  CHECK(schedule_multiplier("constant", 0, 2, 20) == 1.0);
  CHECK(schedule_multiplier("constant_with_warmup", 1, 2, 20) == 0.5);
  CHECK(warmup_steps_for(20, 0.1, 0) == 2);
  CHECK(warmup_steps_for(7, 0.1, 0) == 1);
  TrainingConfig t;
  t.per_device_train_batch_size = 2;
  t.gradient_accumulation_steps = 4;
  t.num_train_epochs = 3;
  auto plan = plan_training(9, t);  // 5 micro-batches -> 2 updates per epoch (the last window has 1)
  CHECK(plan.micro_batches_per_epoch == 5);
  CHECK(plan.updates_per_epoch == 2);
  CHECK(plan.total_updates == 6);
  CHECK(AdamW::no_weight_decay("model.norm.weight"));
  CHECK(AdamW::no_weight_decay("x.lora_B.bias"));
  CHECK(AdamW::no_weight_decay("layers.0.input_layernorm.weight"));
  CHECK_FALSE(AdamW::no_weight_decay("base_model.model.x.q_proj.lora_A.weight"));
}

TEST_CASE("rank_pattern and alpha_pattern: the first matching key in the file's order wins, as in PEFT") {
  // Both keys match layers.0's q_proj; PEFT's get_pattern_key returns the first in dict (file) order.
  const auto config = LoraConfig::from_peft_json(nlohmann::ordered_json::parse(R"({
      "peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"],
      "rank_pattern": {"q_proj": 8, "layers.0.self_attn.q_proj": 4},
      "alpha_pattern": {"layers.0.self_attn.q_proj": 3, "q_proj": 16}})"),
                                                 "adapter_config.json");
  const auto [rank0, alpha0] = config.rank_alpha_for("model.language_model.layers.0.self_attn.q_proj");
  CHECK(rank0 == 8);
  CHECK(alpha0 == 3);
  const auto [rank1, alpha1] = config.rank_alpha_for("model.language_model.layers.1.self_attn.q_proj");
  CHECK(rank1 == 8);
  CHECK(alpha1 == 16);
  const auto [rank2, alpha2] = config.rank_alpha_for("model.language_model.layers.1.self_attn.v_proj");
  CHECK(rank2 == 2);
  CHECK(alpha2 == 4);
  // Written back in the same order.
  const auto written = config.to_peft_json();
  CHECK(written.at("rank_pattern").begin().key() == "q_proj");
  CHECK(written.at("alpha_pattern").begin().key() == "layers.0.self_attn.q_proj");
}
