// The trainer against the explicit transformers + PEFT reference: the tokenized training examples, the 20-update
// loss curve with accumulation, warmup and clipping, the final adapter; resume equals an uninterrupted run bit for bit;
// gradient checkpointing gives the same gradients.
#include <torch/torch.h>

#include <sys/stat.h>

#include <sys/wait.h>

#include <cmath>
#include <csignal>
#include <limits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "model/lora.h"
#include "session/session.h"
#include "tensor/tensor_io.h"
#include "test_util.h"
#include "train/data.h"
#include "train/image_features.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#include "train/training_step.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;
using namespace vlm::test;

namespace {

const std::string kBase = fixture("session/qwen2_vl_tiny");

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::map<std::string, torch::Tensor> tensors_at(const std::string& path) {
  return load_all_tensors(*Checkpoint::open(path, "x"));
}

// The batch of train/one_step.safetensors (two right-padded rows, one image each) and its labels.
ForwardInputs one_step_batch(torch::Tensor& labels) {
  auto one_step = tensors_at(fixture("train/one_step.safetensors"));
  ForwardInputs in;
  in.input_ids = one_step.at("batch_input_ids");
  in.attention_mask = one_step.at("batch_attention_mask");
  in.vision.pixel_values = one_step.at("batch_pixel_values");
  in.vision.image_grid_thw = one_step.at("batch_image_grid_thw");
  labels = one_step.at("batch_labels");
  return in;
}

// The fixture batch's two examples, one image each, as the per-example inputs the trainer hands to the cache.
std::vector<VisionInputs> one_step_examples() {
  torch::Tensor labels;
  const VisionInputs batch = one_step_batch(labels).vision;
  const auto grids = batch.image_grid_thw;
  const auto first = grids[0].prod().item<std::int64_t>();
  std::vector<VisionInputs> examples(2);
  examples[0].pixel_values = batch.pixel_values.narrow(0, 0, first);
  examples[0].image_grid_thw = grids.narrow(0, 0, 1);
  examples[1].pixel_values = batch.pixel_values.narrow(0, first, batch.pixel_values.size(0) - first);
  examples[1].image_grid_thw = grids.narrow(0, 1, 1);
  return examples;
}

// The job of curve.json: 8 rows, batch 2 x accumulation 2, 20 updates, linear warmup 10 %, clipping at 0.05.
TrainingJob curve_job(const std::string& run_dir) {
  TrainingJob job;
  job.model = kBase;
  job.data.train_csv = fixture("train/data/train.csv");
  job.lora.r = 4;
  job.lora.alpha = 8;
  job.lora.target_modules = std::vector<std::string>{"q_proj", "v_proj"};
  auto& t = job.training;
  t.per_device_train_batch_size = 2;
  t.gradient_accumulation_steps = 2;
  t.max_steps = 20;
  t.num_train_epochs = 10;
  t.learning_rate = 2e-3;
  t.warmup_ratio = 0.1;
  t.weight_decay = 0.01;
  t.max_grad_norm = 0.05;
  t.logging_steps = 1;
  t.seed = 42;
  t.save_strategy = "no";
  job.run_dir = run_dir;
  job.write_merged = false;
  return job;
}

}  // namespace

TEST_CASE("training examples: the chat template, image tokens and response-only labels of the reference") {
  SessionOptions options;
  options.model = kBase;
  auto session = Session::open(options);
  TrainingDataOptions data_options;
  data_options.csv = fixture("train/data/train.csv");
  auto data = TrainingDataset::build(*session, data_options);
  REQUIRE(data.size() == 8);
  auto reference = tensors_at(fixture("train/tokenized.safetensors"));
  for (std::size_t i = 0; i < 8; ++i) {
    INFO("row " << i);
    auto ids = reference.at("input_ids_" + std::to_string(i));
    auto labels = reference.at("labels_" + std::to_string(i));
    CHECK(torch::equal(torch::tensor(data[i].input_ids, torch::kInt64), ids));
    CHECK(torch::equal(torch::tensor(data[i].labels, torch::kInt64), labels));
  }
  torch::Tensor labels;
  auto batch = data.collate(*session, {0, 1}, labels);
  auto one_step = tensors_at(fixture("train/one_step.safetensors"));
  CHECK(torch::equal(batch.input_ids, one_step.at("batch_input_ids")));
  CHECK(torch::equal(batch.attention_mask, one_step.at("batch_attention_mask")));
  CHECK(torch::equal(labels, one_step.at("batch_labels")));
  CHECK(torch::equal(batch.vision.image_grid_thw, one_step.at("batch_image_grid_thw")));
  CHECK((batch.vision.pixel_values - one_step.at("batch_pixel_values")).abs().max().item<double>() <= 1e-6);
}

TEST_CASE("data order: torch.randperm seeded with seed + epoch") {
  const auto curve = read_json(fixture("train/curve.json"));
  const auto orders = curve.at("orders");
  for (std::size_t epoch = 0; epoch < orders.size(); ++epoch) {
    INFO("epoch " << epoch);
    CHECK(epoch_order(8, 42, static_cast<std::int64_t>(epoch)) == orders[epoch].get<std::vector<std::size_t>>());
  }
}

TEST_CASE("a 20-update run follows the reference loss curve and ends with its adapter") {
  const auto curve = read_json(fixture("train/curve.json"));
  TempDir dir;
  auto job = curve_job(dir.file("run"));
  job.init_adapter_dir = fixture("train/adapter_start");
  auto summary = run_training(job);
  CHECK(summary.completed);
  const auto& history = summary.metrics.at("log_history");
  const auto& updates = curve.at("updates");
  REQUIRE(history.size() == updates.size());
  for (std::size_t i = 0; i < updates.size(); ++i) {
    INFO("update " << i + 1);
    const double loss = history[i].at("loss").get<double>(), ref = updates[i].at("loss").get<double>();
    CHECK(std::abs(loss - ref) <= 1e-5 * std::abs(ref));
    CHECK(history[i].at("grad_norm").get<double>() == doctest::Approx(updates[i].at("grad_norm").get<double>()).epsilon(1e-4));
    CHECK(history[i].at("learning_rate").get<double>() == doctest::Approx(updates[i].at("learning_rate").get<double>()).epsilon(1e-12));
  }
  auto written = tensors_at(dir.file("run/lora_adapter/adapter_model.safetensors"));
  auto reference = tensors_at(fixture("train/adapter_after_curve/adapter_model.safetensors"));
  REQUIRE(written.size() == reference.size());
  for (const auto& [key, tensor] : reference) {
    INFO(key);
    const double scale = std::max(tensor.abs().max().item<double>(), 1e-30);
    CHECK((written.at(key) - tensor).abs().max().item<double>() / scale <= 1e-4);
  }
}

TEST_CASE("a run stopped after a checkpoint and resumed ends with the uninterrupted run's adapter, bit for bit") {
  TempDir dir;
  auto straight = curve_job(dir.file("straight"));
  straight.training.max_steps = 6;
  straight.lora.dropout = 0.1;  // the resumed run must also replay the dropout draws
  run_training(straight);

  auto first = curve_job(dir.file("resumed"));
  first.training.max_steps = 6;
  first.lora.dropout = 0.1;
  first.training.save_strategy = "steps";
  first.training.save_steps = 2;
  first.on_progress = [](const TrainingProgress& p) { return p.step < 3; };
  auto partial = run_training(first);
  CHECK_FALSE(partial.completed);
  CHECK(std::filesystem::exists(dir.file("resumed/checkpoints/checkpoint-3/trainer_state.json")));
  CHECK_FALSE(std::filesystem::exists(dir.file("resumed/lora_adapter")));

  auto second = curve_job(dir.file("resumed"));
  second.training.max_steps = 6;
  second.lora.dropout = 0.1;
  second.training.save_strategy = "steps";
  second.training.save_steps = 2;
  second.training.resume_from_checkpoint = "latest";
  auto resumed = run_training(second);
  CHECK(resumed.completed);
  auto a = tensors_at(dir.file("straight/lora_adapter/adapter_model.safetensors"));
  auto b = tensors_at(dir.file("resumed/lora_adapter/adapter_model.safetensors"));
  REQUIRE(a.size() == b.size());
  for (const auto& [key, tensor] : a) {
    INFO(key);
    CHECK(torch::equal(tensor, b.at(key)));
  }
  CHECK(resumed.metrics.at("log_history").size() == 6);
}

TEST_CASE("gradient checkpointing gives the same gradients") {
  SessionOptions options;
  options.model = kBase;
  auto session = Session::open(options);
  auto& model = session->model();
  auto lora = LoraModel::load(model, fixture("train/adapter_start"), /*trainable=*/true);
  torch::Tensor labels;
  const ForwardInputs in = one_step_batch(labels);
  std::vector<torch::Tensor> plain, checkpointed;
  for (bool on : {false, true}) {
    model.set_gradient_checkpointing(on);
    auto loss = causal_lm_loss_sum(model.forward(in, nullptr), labels);
    loss.backward();
    for (const auto& [name, p] : lora->parameters()) {
      (on ? checkpointed : plain).push_back(p.grad().clone());
      p.mutable_grad() = torch::Tensor();
    }
  }
  REQUIRE(plain.size() == checkpointed.size());
  for (std::size_t i = 0; i < plain.size(); ++i) CHECK(torch::allclose(plain[i], checkpointed[i], 1e-6, 1e-7));
}

TEST_CASE("the loss from the labelled positions' logits equals the loss over all logits, gradients too") {
  SessionOptions options;
  options.model = kBase;
  auto session = Session::open(options);
  auto& model = session->model();
  auto lora = LoraModel::load(model, fixture("train/adapter_start"), /*trainable=*/true);
  torch::Tensor labels;
  const ForwardInputs in = one_step_batch(labels);
  REQUIRE(in.input_ids.size(0) == 2);  // right-padded rows of different lengths
  std::vector<torch::Tensor> losses, grads;
  for (bool selected : {false, true}) {
    auto loss = selected ? training_loss_sum(model, in, labels) : causal_lm_loss_sum(model.forward(in, nullptr), labels);
    loss.backward();
    losses.push_back(loss.detach());
    std::vector<torch::Tensor> flat;
    for (const auto& [name, p] : lora->parameters()) {
      flat.push_back(p.grad().reshape({-1}).clone());
      p.mutable_grad() = torch::Tensor();
    }
    grads.push_back(torch::cat(flat));
  }
  CHECK(losses[1].item<double>() == doctest::Approx(losses[0].item<double>()).epsilon(1e-6));
  // float32 rounding: the head's rows are summed in another order, so near-zero entries differ by a few ulps of
  // the largest gradient (measured: 2e-6 against a largest entry of 5.9).
  const double scale = grads[0].abs().max().item<double>();
  INFO("max |diff| " << (grads[1] - grads[0]).abs().max().item<double>() << ", max |grad| " << scale);
  CHECK(torch::allclose(grads[1], grads[0], 1e-5, 1e-6 * scale));

  // logit_positions picks rows of the flattened [B * L] logits.
  torch::NoGradGuard no_grad;
  auto all = model.forward(in, nullptr);
  ForwardInputs picked = in;
  picked.logit_positions = torch::tensor({0L, 5L, in.input_ids.size(1) + 3});
  auto some = model.forward(picked, nullptr);
  REQUIRE(some.sizes() == torch::IntArrayRef({1, 3, all.size(2)}));
  CHECK(torch::allclose(some[0][0], all[0][0], 1e-5, 1e-5));
  CHECK(torch::allclose(some[0][1], all[0][5], 1e-5, 1e-5));
  CHECK(torch::allclose(some[0][2], all[1][3], 1e-5, 1e-5));

  // Precomputed image features stand in for the vision tower.
  ForwardInputs cached = in;
  cached.vision.features = model.encode_images(in.vision);
  CHECK(torch::equal(model.forward(cached, nullptr), all));
}

TEST_CASE("the run folder: adapter, merged model that reproduces the adapter's logits, metrics") {
  TempDir dir;
  auto job = curve_job(dir.file("run"));
  job.training.max_steps = 2;
  job.write_merged = true;
  job.training.save_strategy = "epoch";
  std::vector<std::string> lines;
  job.on_log = [&](const std::string& line) { lines.push_back(line); };
  auto summary = run_training(job);
  CHECK(std::filesystem::exists(dir.file("run/lora_adapter/adapter_config.json")));
  CHECK(std::filesystem::exists(dir.file("run/final/model.safetensors")));
  CHECK(std::filesystem::exists(dir.file("run/final/tokenizer.json")));
  CHECK(std::filesystem::exists(dir.file("run/final/preprocessor_config.json")));
  const auto metrics = read_json(dir.file("run/metrics.json"));
  CHECK(metrics.at("global_step") == 2);
  CHECK(metrics.at("trainable_parameters") == 1792);
  CHECK(metrics.at("merge_max_abs_logit_diff").get<double>() <= 1e-4);
  CHECK(metrics.at("log_history").size() == 2);
  CHECK(metrics.at("model") == kBase);
  bool reported = false;
  for (const auto& line : lines) reported = reported || line.find("trainable params: 1792") != std::string::npos;
  CHECK(reported);

  // The merged folder loads as a plain model and gives the adapter model's logits.
  SessionOptions merged_options;
  merged_options.model = dir.file("run/final");
  auto merged = Session::open(merged_options);
  SessionOptions base_options;
  base_options.model = kBase;
  auto base = Session::open(base_options);
  base->load_adapter(dir.file("run/lora_adapter"));
  torch::Tensor labels;
  const ForwardInputs in = one_step_batch(labels);
  torch::NoGradGuard no_grad;
  auto a = merged->model().forward(in, nullptr), b = base->model().forward(in, nullptr);
  auto mask = in.attention_mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  CHECK((a - b).abs().masked_select(mask).max().item<double>() <= 1e-4);
}

TEST_CASE("preflight reports every unusable row at once") {
  TempDir dir;
  write_bytes(dir.file("data/train.csv"),
              "url,instruction,response\n"
              "missing.png,Describe,a cat\n"
              + std::string("") + "ok.png,Describe,\n"
              "ok.png,Describe,   \n"
              "ok.png,Describe,\"\t\r\n \"\n"
              "ok.png,Describe,\u3000\u00a0\n"
              "ok.png,Describe, a dog \n"
              "pipe.png,Describe,a cat\n");
  std::filesystem::copy(fixture("train/data/images/img0.png"), dir.file("data/ok.png"));
  // An image path that is a FIFO is refused at once (opening it would wait for a writer).
  REQUIRE(::mkfifo(dir.file("data/pipe.png").c_str(), 0600) == 0);
  auto job = curve_job(dir.file("run"));
  job.data.train_csv = dir.file("data/train.csv");
  // Whitespace alone (ASCII or Unicode) is refused as an empty response is; " a dog " is fine.
  expect_error([&] { run_training(job); }, ErrorCode::invalid_argument,
               {"6 of 7 training rows", "row 7 (line 9): ", "data/pipe.png is a FIFO (named pipe), not a regular file", "row 1 (line 2)", "missing.png", "row 2 (line 3)", "response is empty",
                "row 3 (line 4): the response is only whitespace", "row 4 (line 5): the response is only whitespace",
                "row 5 (line 7): the response is only whitespace"});
}

TEST_CASE("non-finite updates stop the run, or are skipped when configured") {
  TempDir dir;
  // An adapter with a NaN weight makes every loss NaN.
  auto tensors = tensors_at(fixture("train/adapter_start/adapter_model.safetensors"));
  NamedTensors poisoned;
  for (auto& [key, tensor] : tensors) {
    auto copy = tensor.clone();
    if (key.find("layers.1.self_attn.v_proj.lora_B") != std::string::npos) copy[0][0] = std::nan("");
    poisoned.emplace_back(key, copy);
  }
  std::filesystem::create_directories(dir.file("poisoned"));
  save_tensors(dir.file("poisoned/adapter_model.safetensors"), poisoned);
  std::filesystem::copy(fixture("train/adapter_start/adapter_config.json"), dir.file("poisoned/adapter_config.json"));

  auto job = curve_job(dir.file("stop"));
  job.training.max_steps = 3;
  job.init_adapter_dir = dir.file("poisoned");
  expect_error([&] { run_training(job); }, ErrorCode::internal, {"non-finite at update 1", "on_nonfinite: skip"});
  auto skip = job;
  skip.run_dir = dir.file("skip");
  skip.training.on_nonfinite = "skip";
  std::vector<std::string> lines;
  skip.on_log = [&](const std::string& line) { lines.push_back(line); };
  auto summary = run_training(skip);
  CHECK(summary.completed);
  CHECK(summary.metrics.at("skipped_updates") == 3);
  CHECK(summary.metrics.at("global_step") == 3);
  int said = 0;
  for (const auto& line : lines) said += line.find("skipped: the loss or the gradients became non-finite") != std::string::npos;
  CHECK(said == 3);
}

TEST_CASE("bf16 autocast training follows the float32 run closely") {
  TempDir dir;
  auto fp32 = curve_job(dir.file("fp32"));
  fp32.training.max_steps = 3;
  fp32.init_adapter_dir = fixture("train/adapter_start");
  auto bf16 = fp32;
  bf16.run_dir = dir.file("bf16");
  bf16.training.mixed_precision = "bf16";
  auto a = run_training(fp32), b = run_training(bf16);
  CHECK(b.metrics.at("mixed_precision") == "bf16");
  for (int i = 0; i < 3; ++i) {
    const double x = a.metrics.at("log_history")[i].at("loss").get<double>();
    const double y = b.metrics.at("log_history")[i].at("loss").get<double>();
    CHECK(std::abs(x - y) <= 0.02 * std::abs(x));
    CHECK(x != y);  // autocast did run in reduced precision
  }
  auto fp16 = curve_job(dir.file("fp16"));
  fp16.training.max_steps = 1;
  fp16.training.mixed_precision = "fp16";
  std::vector<std::string> lines;
  fp16.on_log = [&](const std::string& line) { lines.push_back(line); };
  auto c = run_training(fp16);
  CHECK(c.metrics.at("mixed_precision") == "no");
  bool said = false;
  for (const auto& line : lines) said = said || line.find("fp16 needs a CUDA device") != std::string::npos;
  CHECK(said);
}

TEST_CASE("a run killed with SIGKILL and resumed ends with the uninterrupted run's adapter, bit for bit") {
  TempDir dir;
  const std::string program = VLM_TRAIN_UNTIL_KILLED;
  const std::string fixtures = VLM_FIXTURES_DIR;
  // Killed after update 5: the newest checkpoint is checkpoint-4; update 5 is redone on resume.
  const int killed = std::system(("exec " + program + " " + dir.file("run") + " 5 " + fixtures).c_str());  // exec: no shell in between
  REQUIRE(WIFSIGNALED(killed));
  CHECK(WTERMSIG(killed) == SIGKILL);
  CHECK(std::filesystem::exists(dir.file("run/checkpoints/checkpoint-4/trainer_state.json")));
  CHECK_FALSE(std::filesystem::exists(dir.file("run/lora_adapter")));
  const int resumed = std::system((program + " " + dir.file("run") + " 0 " + fixtures).c_str());
  CHECK(resumed == 0);
  const int straight = std::system((program + " " + dir.file("straight") + " 0 " + fixtures).c_str());
  CHECK(straight == 0);
  auto a = tensors_at(dir.file("straight/lora_adapter/adapter_model.safetensors"));
  auto b = tensors_at(dir.file("run/lora_adapter/adapter_model.safetensors"));
  REQUIRE(a.size() == b.size());
  for (const auto& [key, tensor] : a) {
    INFO(key);
    CHECK(torch::equal(tensor, b.at(key)));
  }
  const auto metrics = read_json(dir.file("run/metrics.json"));
  CHECK(metrics.at("log_history").size() == 6);
}

TEST_CASE("dynamic loss scaling follows torch's GradScaler: unscale, skip on overflow, back off, grow") {
  LossScalerOptions options;
  options.growth_interval = 3;
  DynamicLossScaler scaler(options);
  CHECK(scaler.scale() == 65536.0);
  auto p = torch::zeros({4}).requires_grad_(true);
  auto q = torch::zeros({2}).requires_grad_(true);
  auto no_grad_yet = torch::zeros({3}).requires_grad_(true);  // grads that are None are skipped
  auto loss = (p * torch::tensor({1.f, 2.f, 3.f, 4.f})).sum() + (q * 0.5f).sum();
  (loss * scaler.scale()).backward();
  CHECK(scaler.unscale({p, q, no_grad_yet}));
  CHECK(torch::equal(p.grad(), torch::tensor({1.f, 2.f, 3.f, 4.f})));
  CHECK(torch::equal(q.grad(), torch::tensor({0.5f, 0.5f})));
  // Clean updates count up; the third doubles the scale and restarts the count.
  scaler.update(false);
  scaler.update(false);
  CHECK(scaler.growth_tracker() == 2);
  scaler.update(false);
  CHECK(scaler.scale() == 131072.0);
  CHECK(scaler.growth_tracker() == 0);
  // An overflowing gradient: reported, the scale halves, the count restarts.
  p.mutable_grad() = torch::tensor({1.f, std::numeric_limits<float>::infinity(), 0.f, 0.f});
  scaler.update(false);
  CHECK_FALSE(scaler.unscale({p, q}));
  scaler.update(true);
  CHECK(scaler.scale() == 65536.0);
  CHECK(scaler.growth_tracker() == 0);
  p.mutable_grad() = torch::tensor({std::nanf(""), 0.f, 0.f, 0.f});
  CHECK_FALSE(scaler.unscale({p}));
  // Checkpoint state round trip, and bad states or options are refused.
  DynamicLossScaler restored(options);
  restored.restore(1024.0, 2);
  restored.update(false);
  CHECK(restored.scale() == 2048.0);
  CHECK_THROWS_AS(restored.restore(0.0, 0), vlm::Error);
  LossScalerOptions bad;
  bad.backoff_factor = 1.5;
  CHECK_THROWS_AS(DynamicLossScaler{bad}, vlm::Error);
}

TEST_CASE("image feature cache: only with a frozen vision path; computed per example once, then reused") {
  SessionOptions options;
  options.model = kBase;
  torch::Tensor labels;
  const VisionInputs batch = one_step_batch(labels).vision;
  {
    auto session = Session::open(options);
    auto& model = session->model();
    LoraConfig vision;
    vision.target_modules = std::vector<std::string>{"all-linear"};
    LoraScope scope;
    scope.vision_tower = true;
    auto lora = LoraModel::create(model, vision, scope);
    const auto why = image_features_frozen_reason(model, *lora);
    CHECK(why.find("an adapter on model.visual.") == 0);
  }
  auto session = Session::open(options);
  auto& model = session->model();
  auto lora = LoraModel::create(model, LoraConfig{});
  CHECK(image_features_frozen_reason(model, *lora).empty());

  const auto per_example = one_step_examples();
  const auto first = per_example[0].pixel_values.size(0);
  torch::Tensor whole;
  {
    torch::NoGradGuard no_grad;
    whole = model.encode_images(batch);
  }

  ImageFeatureCache keep(1 << 30);
  auto a = keep.features(model, {3, 5}, per_example);
  CHECK(torch::allclose(a, whole, 1e-5, 1e-6));
  CHECK(keep.misses() == 2);
  CHECK(keep.bytes() == static_cast<std::int64_t>(a.numel() * a.element_size()));
  auto b = keep.features(model, {5, 3}, {per_example[1], per_example[0]});  // reused, in the new row order
  CHECK(keep.hits() == 2);
  const auto first_tokens = a.size(0) * first / batch.pixel_values.size(0);  // tokens = patches / merge^2
  CHECK(torch::equal(b, torch::cat({a.narrow(0, first_tokens, a.size(0) - first_tokens), a.narrow(0, 0, first_tokens)})));
  ImageFeatureCache none(0);  // a zero budget recomputes every time
  none.features(model, {3}, {per_example[0]});
  none.features(model, {3}, {per_example[0]});
  CHECK(none.misses() == 2);
  CHECK(none.hits() == 0);
  CHECK(none.bytes() == 0);
}

TEST_CASE("image feature store: entries keyed by the pixels and the model's fingerprint, damage recomputed, budget kept") {
  TempDir dir;
  SessionOptions options;
  options.model = kBase;
  auto session = Session::open(options);
  auto& model = session->model();
  const auto examples = one_step_examples();
  const std::string fingerprint = image_feature_fingerprint(session->folder(), model, "no");
  CHECK(fingerprint != image_feature_fingerprint(session->folder(), model, "bf16"));
  CHECK(nlohmann::json::parse(fingerprint).at("files").size() >= 2);  // config.json and the weights

  CHECK(image_inputs_key(examples[0]) != image_inputs_key(examples[1]));
  VisionInputs changed = examples[0];
  changed.pixel_values = examples[0].pixel_values.clone();
  changed.pixel_values.view(-1)[17] += 1e-7f;
  CHECK(image_inputs_key(changed) != image_inputs_key(examples[0]));
  VisionInputs copy;
  copy.pixel_values = examples[0].pixel_values.clone();
  copy.image_grid_thw = examples[0].image_grid_thw.clone();
  CHECK(image_inputs_key(copy) == image_inputs_key(examples[0]));

  torch::Tensor computed;
  {
    ImageFeatureStore store(dir.path(), fingerprint, 1 << 30);
    computed = store.features(model, examples[0]);
    CHECK(store.computed() == 1);
    CHECK(store.writes() == 1);
    CHECK(std::filesystem::exists(store.directory() + "/fingerprint.json"));
    CHECK(std::filesystem::exists(store.directory() + "/" + image_inputs_key(examples[0]) + ".safetensors"));
  }
  {
    torch::NoGradGuard no_grad;
    CHECK(torch::equal(computed, model.encode_images(examples[0])));
  }
  {
    ImageFeatureStore store(dir.path(), fingerprint, 1 << 30);  // a later run
    CHECK(torch::equal(store.features(model, examples[0]), computed));
    CHECK(store.hits() == 1);
    CHECK(store.computed() == 0);
    CHECK_FALSE(store.find(examples[1], model.device()).defined());
  }
  {
    // Another fingerprint (here: bf16 autocast) never sees these entries.
    ImageFeatureStore other(dir.path(), image_feature_fingerprint(session->folder(), model, "bf16"), 1 << 30);
    CHECK_FALSE(other.find(examples[0], model.device()).defined());
  }
  {
    // A truncated entry is removed and recomputed, never used.
    ImageFeatureStore store(dir.path(), fingerprint, 1 << 30);
    const std::string entry = store.directory() + "/" + image_inputs_key(examples[0]) + ".safetensors";
    std::filesystem::resize_file(entry, std::filesystem::file_size(entry) / 2);
    CHECK_FALSE(store.find(examples[0], model.device()).defined());
    CHECK_FALSE(std::filesystem::exists(entry));
    CHECK(torch::equal(store.features(model, examples[0]), computed));
    CHECK(store.writes() == 1);
  }
  {
    // No room left: entries are read but no longer written.
    ImageFeatureStore full(dir.path(), fingerprint, 0);
    full.features(model, examples[1]);
    CHECK(full.writes() == 0);
    CHECK(full.computed() == 1);
    CHECK(full.features(model, examples[0]).defined());
    CHECK(full.hits() == 1);
  }
}

TEST_CASE("LoRA variants of one model share image features through the store; adapters equal runs without it") {
  TempDir dir;
  const std::string store = dir.file("image_features");
  auto variant = [&](const std::string& name, int r, bool with_store) {
    auto job = curve_job(dir.file(name));
    job.training.max_steps = 4;  // 2 epochs of 2 updates
    job.lora.r = r;
    job.lora.dropout = 0.1;
    job.training.store_image_features = with_store;
    job.training.image_feature_store_dir = store;
    return run_training(job);
  };
  auto first = variant("r4", 4, true);
  const auto& a = first.metrics.at("image_feature_cache");
  CHECK(a.at("computed") == 8);
  CHECK(a.at("read_from_store") == 0);
  CHECK(a.at("reused") == 8);  // the second epoch, from memory

  auto second = variant("r8", 8, true);
  const auto& b = second.metrics.at("image_feature_cache");
  CHECK(b.at("computed") == 0);  // the vision tower never ran
  CHECK(b.at("read_from_store") == 8);
  CHECK(b.at("reused") == 8);
  CHECK(b.at("store").get<std::string>().rfind(store, 0) == 0);

  auto alone = variant("r8_alone", 8, false);
  CHECK(alone.metrics.at("image_feature_cache").at("computed") == 8);
  auto with = tensors_at(dir.file("r8/lora_adapter/adapter_model.safetensors"));
  auto without = tensors_at(dir.file("r8_alone/lora_adapter/adapter_model.safetensors"));
  REQUIRE(with.size() == without.size());
  for (const auto& [key, tensor] : with) {
    INFO(key);
    CHECK(torch::equal(tensor, without.at(key)));
  }
  CHECK(second.metrics.at("log_history") == alone.metrics.at("log_history"));
}
