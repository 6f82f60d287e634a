// The generation engine driving the real model implementations (tiny Qwen2-VL, Qwen2.5-VL, Qwen2, Llama
// checkpoints of tests/fixtures/model/) equals transformers' generate() token for token: greedy, beam search,
// repetition penalty; left-padded batches equal row-by-row runs. Fixtures: tools/oracle/gen_model_generate_fixtures.py.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "base/fs.h"
#include "io/checkpoint.h"
#include "model/registry.h"
#include "tensor/tensor_io.h"
#include "test_util.h"

using namespace vlm;

namespace {

struct Prompt {
  ForwardInputs inputs;
};

ForwardInputs load_case(const std::string& model, const std::string& name) {
  auto ckpt = Checkpoint::open(vlm::test::fixture("model/" + model + "/cases/" + name + ".safetensors"));
  ForwardInputs in;
  in.input_ids = load_tensor(*ckpt, "input_ids").clone();
  in.attention_mask = load_tensor(*ckpt, "attention_mask").clone();
  if (ckpt->contains("pixel_values")) {
    in.vision.pixel_values = load_tensor(*ckpt, "pixel_values").clone();
    in.vision.image_grid_thw = load_tensor(*ckpt, "image_grid_thw").clone();
  }
  return in;
}

// The rows of a left-padded batch as separate prompts with their own images (as the oracle splits them).
std::vector<ForwardInputs> split_rows(const ForwardInputs& batch, std::int64_t image_token_id) {
  std::vector<ForwardInputs> rows;
  std::int64_t patch = 0, image = 0;
  for (std::int64_t r = 0; r < batch.input_ids.size(0); ++r) {
    torch::Tensor keep = batch.attention_mask[r].to(torch::kBool);
    torch::Tensor ids = batch.input_ids[r].masked_select(keep).unsqueeze(0);
    ForwardInputs row;
    row.input_ids = ids;
    row.attention_mask = torch::ones_like(ids);
    if (batch.vision.pixel_values.defined()) {
      torch::Tensor is_image = (ids[0] == image_token_id).to(torch::kInt64);
      torch::Tensor starts = is_image.narrow(0, 0, 1).sum() + (is_image.narrow(0, 1, ids.size(1) - 1) - is_image.narrow(0, 0, ids.size(1) - 1) == 1).sum();
      const std::int64_t n_images = starts.item<std::int64_t>();
      if (n_images > 0) {
        torch::Tensor grids = batch.vision.image_grid_thw.narrow(0, image, n_images);
        const std::int64_t n_patches = grids.prod(-1).sum().item<std::int64_t>();
        row.vision.pixel_values = batch.vision.pixel_values.narrow(0, patch, n_patches);
        row.vision.image_grid_thw = grids;
        patch += n_patches;
        image += n_images;
      }
    }
    rows.push_back(row);
  }
  return rows;
}

GenerationOptions options_for(const nlohmann::json& setting) {
  GenerationOptions o;
  o.max_new_tokens = setting["max_new_tokens"].get<int>();
  if (setting.contains("num_beams")) o.num_beams = setting["num_beams"].get<int>();
  if (setting.contains("repetition_penalty")) o.repetition_penalty = setting["repetition_penalty"].get<double>();
  o.do_sample = false;
  o.eos_token_ids = std::vector<std::int64_t>{2};
  o.pad_token_id = 0;
  return o;
}

std::vector<std::int64_t> until_eos(const std::vector<std::int64_t>& tokens, std::size_t own_length) {
  std::vector<std::int64_t> out;
  for (auto t : tokens) {
    if (out.size() == own_length) break;
    out.push_back(t);
    if (t == 2) break;
  }
  return out;
}

}  // namespace

TEST_CASE("generate() over the real models equals transformers' generate()") {
  auto fixture = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("generate/models.json")));
  std::map<std::string, std::unique_ptr<VisionLanguageModel>> models;
  int compared = 0;
  for (const auto& r : fixture["results"]) {
    const std::string model_name = r["model"], case_name = r["case"], setting = r["setting"]["name"];
    CAPTURE(model_name);
    CAPTURE(case_name);
    CAPTURE(setting);
    auto& model = models[model_name];
    if (!model) model = load_model(vlm::test::fixture("model/" + model_name));
    const GenerationOptions options = options_for(r["setting"]);
    ForwardInputs batch = load_case(model_name, case_name);
    GenerationResult got = generate(*model, batch, options);
    const auto expected = r["batched"].get<std::vector<std::vector<std::int64_t>>>();
    REQUIRE(got.tokens.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CHECK(got.tokens[i] == until_eos(expected[i], got.tokens[i].size()));
      ++compared;
    }
    if (r.contains("rows")) {
      const auto rows = split_rows(batch, model->info().image_token_id);
      const auto expected_rows = r["rows"].get<std::vector<std::vector<std::int64_t>>>();
      for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(i);
        CHECK(generate(*model, rows[i], options).tokens[0] == until_eos(expected_rows[i], expected_rows[i].size()));
        ++compared;
      }
    }
  }
  CHECK(compared >= 40);
}

TEST_CASE("continuation log-likelihoods equal those computed from transformers' logits") {
  int checked = 0;
  for (std::string model_name : {"qwen2_vl_gqa_tied_hub", "qwen2_5_vl_window_untied", "qwen2_tied"}) {
    auto model = load_model(vlm::test::fixture("model/" + model_name));
    for (std::string case_name : {"one_image", "two_images", "no_image", "single"}) {
      const std::string path = vlm::test::fixture("model/" + model_name + "/cases/" + case_name + ".safetensors");
      if (!is_regular_file(path)) continue;
      CAPTURE(model_name);
      CAPTURE(case_name);
      auto ckpt = Checkpoint::open(path);
      torch::Tensor ids = load_tensor(*ckpt, "input_ids")[0];
      torch::Tensor reference = torch::log_softmax(load_tensor(*ckpt, "logits")[0].to(torch::kFloat64), -1);
      VisionInputs vision;
      if (ckpt->contains("pixel_values")) {
        vision.pixel_values = load_tensor(*ckpt, "pixel_values").clone();
        vision.image_grid_thw = load_tensor(*ckpt, "image_grid_thw").clone();
      }
      // Score the last 4 tokens as the continuation of everything before them (images stay in the prompt).
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
  CHECK(checked >= 7);
}
