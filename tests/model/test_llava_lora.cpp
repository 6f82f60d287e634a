// LoRA on LLaVA against PEFT 0.21.2 (fixtures: tests/fixtures/llava/lora, tools/oracle/gen_llava_fixtures.py): a PEFT
// adapter on the language model's q_proj/v_proj loads and gives the PeftModel's logits, loss and gradients, one
// AdamW step gives torch's weights, vlmrt writes the adapter back under PEFT's keys, and the default targets stay
// out of the CLIP tower unless it is unfrozen.
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "io/checkpoint.h"
#include "model/lora.h"
#include "model/registry.h"
#include "tensor/tensor_io.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/training_step.h"

using namespace vlm;
using namespace vlm::test;

namespace {

const std::string kBase = fixture("llava/llava_default_gqa_untied");
const std::string kAdapter = fixture("llava/lora/adapter");

std::map<std::string, torch::Tensor> step_tensors() {
  std::map<std::string, torch::Tensor> out;
  for (auto& [key, tensor] : load_all_tensors(*Checkpoint::open(fixture("llava/lora/step.safetensors")))) {
    out[key] = tensor.clone();
  }
  return out;
}

ForwardInputs batch_of(const std::map<std::string, torch::Tensor>& t) {
  ForwardInputs in;
  in.input_ids = t.at("input_ids");
  in.attention_mask = t.at("attention_mask");
  in.vision.pixel_values = t.at("pixel_values");
  return in;
}

double relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

double masked_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  return (a - b).abs().index({mask.to(torch::kBool)}).max().item<double>();
}

}  // namespace

TEST_CASE("LLaVA: a PEFT adapter gives PeftModel's logits, loss and gradients; one AdamW step gives torch's weights") {
  auto model = load_model(kBase);
  auto lora = LoraModel::load(*model, kAdapter, /*trainable=*/true);
  auto paths = lora->adapted_paths();
  std::sort(paths.begin(), paths.end());
  CHECK(paths == std::vector<std::string>{"model.language_model.layers.0.self_attn.q_proj",
                                          "model.language_model.layers.0.self_attn.v_proj",
                                          "model.language_model.layers.1.self_attn.q_proj",
                                          "model.language_model.layers.1.self_attn.v_proj"});
  auto t = step_tensors();
  auto in = batch_of(t);
  auto logits = model->forward(in, nullptr);
  const double logit_diff = masked_diff(logits, t.at("logits"), in.attention_mask);
  CHECK(logit_diff <= 1e-4);
  const auto& labels = t.at("labels");
  auto loss = causal_lm_loss_sum(logits, labels) / static_cast<double>(predicted_token_count(labels));
  const double expected_loss = t.at("loss").item<double>();
  CHECK(std::abs(loss.item<double>() - expected_loss) <= 1e-5 * std::abs(expected_loss));
  loss.backward();
  int compared = 0;
  double worst_grad = 0;
  for (const auto& [name, param] : lora->parameters()) {
    INFO(name);
    REQUIRE(t.count("grad." + name));
    CHECK(relative_diff(param.detach(), t.at("before." + name)) == 0.0);
    const double d = relative_diff(param.grad(), t.at("grad." + name));
    CHECK(d <= 1e-4);
    worst_grad = std::max(worst_grad, d);
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
  MESSAGE("LLaVA LoRA: logits " << logit_diff << ", loss " << loss.item<double>() << " vs " << expected_loss
                                << ", largest relative gradient difference " << worst_grad);
}

TEST_CASE("LLaVA: vlmrt writes the adapter under PEFT's keys; the Hub key layout reaches the same modules") {
  auto model = load_model(kBase);
  auto lora = LoraModel::load(*model, kAdapter);
  TempDir dir;
  lora->save(dir.file("adapter"));
  auto written = load_all_tensors(*Checkpoint::open(dir.file("adapter/adapter_model.safetensors")));
  auto original = load_all_tensors(*Checkpoint::open(kAdapter + "/adapter_model.safetensors"));
  REQUIRE(written.size() == original.size());
  for (const auto& [key, tensor] : original) {
    INFO(key);
    REQUIRE(written.count(key));
    CHECK(torch::equal(written.at(key), tensor));
  }
  // An adapter saved against the llava-hf Hub layout (base_model.model.language_model.model.layers.N...).
  std::vector<std::pair<std::string, torch::Tensor>> renamed;
  for (const auto& [key, tensor] : original) {
    std::string k = key;
    const std::string from = "base_model.model.model.language_model.", to = "base_model.model.language_model.model.";
    REQUIRE(k.rfind(from, 0) == 0);
    renamed.emplace_back(to + k.substr(from.size()), tensor);
  }
  write_bytes(dir.file("old/adapter_config.json"), read_bytes(kAdapter + "/adapter_config.json"));
  save_tensors(dir.file("old/adapter_model.safetensors"), renamed);
  auto old_model = load_model(kBase);
  auto old = LoraModel::load(*old_model, dir.file("old"));
  CHECK(old->adapted_paths().size() == 4);
  auto t = step_tensors();
  auto in = batch_of(t);
  torch::NoGradGuard no_grad;
  CHECK(masked_diff(old_model->forward(in, nullptr), model->forward(in, nullptr), in.attention_mask) == 0.0);
}

TEST_CASE("LLaVA: default LoRA targets stay in the language model; the CLIP tower only when unfrozen") {
  auto model = load_model(kBase);
  {
    auto lora = LoraModel::create(*model, LoraConfig{});
    CHECK(lora->adapted_paths().size() == 4);
    for (const auto& path : lora->adapted_paths()) CHECK(path.rfind("model.language_model.", 0) == 0);
    lora->unload();
  }
  LoraConfig qv;
  qv.target_modules = std::vector<std::string>{"q_proj", "v_proj"};
  LoraScope unfrozen;
  unfrozen.vision_tower = true;
  auto lora = LoraModel::create(*model, qv, unfrozen);
  auto paths = lora->adapted_paths();
  // 2 language-model layers and 3 CLIP layers, q and v each.
  CHECK(paths.size() == 10);
  CHECK(std::count_if(paths.begin(), paths.end(), [](const std::string& p) {
          return p.rfind("model.vision_tower.encoder.layers.", 0) == 0;
        }) == 6);
}
