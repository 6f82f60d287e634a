// The generation engine against transformers' generate() on a deterministic bigram model (fixtures from
// tools/oracle/gen_generate_fixtures.py): greedy, beam search in every early-stopping mode and length
// penalty, repetition penalty, min_new_tokens, several EOS ids, left-padded batches.
#include "generate/generate.h"

#include <torch/torch.h>

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "io/hf_files.h"

#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;

namespace {

// Next-token logits = table[last token]: the test double of VisionLanguageModel.
class BigramModel : public VisionLanguageModel {
 public:
  explicit BigramModel(torch::Tensor table) : table_(std::move(table)) {
    info_.family = "bigram";
    info_.vocab_size = table_.size(0);
    info_.eos_token_ids = {3};
  }
  const ModelInfo& info() const override { return info_; }
  struct State : InferenceState {
    std::int64_t rows = 0, len = 0;
    std::int64_t length() const override { return len; }
    void reorder(const torch::Tensor& indices) override { rows = indices.size(0); }
  };
  std::unique_ptr<InferenceState> new_state(std::int64_t batch) override {
    auto s = std::make_unique<State>();
    s->rows = batch;
    return s;
  }
  torch::Tensor forward(const ForwardInputs& in, InferenceState* state) override {
    ++calls;
    auto* s = static_cast<State*>(state);
    if (s) {
      REQUIRE(in.input_ids.size(0) == s->rows);  // the engine keeps state rows and inputs in step
      s->len += in.input_ids.size(1);
      if (in.attention_mask.defined()) REQUIRE(in.attention_mask.size(1) == s->len);
    }
    torch::Tensor logits = table_.index({in.input_ids});  // [B, L, V]
    return in.all_logits ? logits : logits.narrow(1, logits.size(1) - 1, 1);
  }
  torch::Device device() const override { return torch::kCPU; }
  torch::ScalarType dtype() const override { return torch::kFloat32; }
  torch::nn::Module& module() override { return module_; }
  void set_gradient_checkpointing(bool) override {}
  torch::Tensor encode_images(const VisionInputs&) override { throw std::logic_error("a text-only test model"); }
  int calls = 0;

 private:
  torch::nn::Module module_;  // no parameters: the table is fixed
  torch::Tensor table_;
  ModelInfo info_;
};

torch::Tensor load_table(int seed) {
  auto rows = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("generate/bigram_table_seed" + std::to_string(seed) + ".json")));
  std::vector<float> flat;
  for (const auto& r : rows)
    for (double v : r) flat.push_back(static_cast<float>(v));
  const auto n = static_cast<std::int64_t>(rows.size());
  return torch::tensor(flat).view({n, n});
}

GenerationOptions options_from(const nlohmann::json& j) {
  GenerationOptions o;
  if (j.contains("max_new_tokens")) o.max_new_tokens = j["max_new_tokens"].get<int>();
  if (j.contains("min_new_tokens")) o.min_new_tokens = j["min_new_tokens"].get<int>();
  if (j.contains("num_beams")) o.num_beams = j["num_beams"].get<int>();
  if (j.contains("repetition_penalty")) o.repetition_penalty = j["repetition_penalty"].get<double>();
  if (j.contains("length_penalty")) o.length_penalty = j["length_penalty"].get<double>();
  if (j.contains("early_stopping")) {
    const auto& e = j["early_stopping"];
    o.early_stopping = e.is_boolean() ? (e.get<bool>() ? "true" : "false") : e.get<std::string>();
  }
  const auto& eos = j["eos_token_id"];
  o.eos_token_ids = eos.is_array() ? eos.get<std::vector<std::int64_t>>() : std::vector<std::int64_t>{eos.get<std::int64_t>()};
  return o;
}

// Left-pads prompts into one batch.
ForwardInputs batch_of(const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t pad) {
  std::size_t width = 0;
  for (const auto& p : prompts) width = std::max(width, p.size());
  std::vector<std::int64_t> ids, mask;
  for (const auto& p : prompts) {
    for (std::size_t i = p.size(); i < width; ++i) ids.push_back(pad), mask.push_back(0);
    for (auto t : p) ids.push_back(t), mask.push_back(1);
  }
  const auto rows = static_cast<std::int64_t>(prompts.size());
  ForwardInputs in;
  in.input_ids = torch::tensor(ids).view({rows, -1});
  in.attention_mask = torch::tensor(mask).view({rows, -1});
  return in;
}

// transformers pads finished rows of a batch to a common length: compare up to the first EOS.
std::vector<std::int64_t> until_eos(const std::vector<std::int64_t>& tokens, const std::vector<std::int64_t>& eos,
                                    std::size_t own_length) {
  std::vector<std::int64_t> out;
  for (auto t : tokens) {
    if (out.size() == own_length) break;
    out.push_back(t);
    if (std::find(eos.begin(), eos.end(), t) != eos.end()) break;
  }
  return out;
}

}  // namespace

TEST_CASE("generate() equals transformers token for token, one by one and batched") {
  auto fixture = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("generate/cases.json")));
  int checked = 0;
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    BigramModel model(load_table(c["seed"].get<int>()));
    GenerationOptions options = options_from(c["options"]);
    options.pad_token_id = c["pad_token_id"].get<std::int64_t>();
    const auto prompts = c["prompts"].get<std::vector<std::vector<std::int64_t>>>();
    const auto expected_single = c["one_by_one"].get<std::vector<std::vector<std::int64_t>>>();
    const auto expected_batched = c["batched"].get<std::vector<std::vector<std::int64_t>>>();
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      GenerationResult r = generate(model, batch_of({prompts[i]}, 0), options);
      CHECK(r.tokens[0] == expected_single[i]);
      ++checked;
    }
    GenerationResult batched = generate(model, batch_of(prompts, 0), options);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      CAPTURE(i);
      CHECK(batched.tokens[i] == until_eos(expected_batched[i], *options.eos_token_ids, batched.tokens[i].size()));
      CHECK(batched.tokens[i].size() <= expected_batched[i].size());
    }
  }
  CHECK(checked == 104);
}

TEST_CASE("logits processors equal transformers'") {
  auto f = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("generate/processors.json")));
  std::vector<float> flat;
  for (const auto& r : f["scores"])
    for (double v : r) flat.push_back(static_cast<float>(v));
  const std::int64_t rows = f["scores"].size();
  const torch::Tensor scores = torch::tensor(flat).view({rows, -1});
  const torch::Tensor ids = torch::tensor(f["input_ids"].get<std::vector<std::vector<std::int64_t>>>()[0]);
  std::vector<std::int64_t> all_ids;
  for (const auto& r : f["input_ids"])
    for (auto v : r) all_ids.push_back(v.get<std::int64_t>());
  const torch::Tensor sequences = torch::tensor(all_ids).view({rows, -1});
  auto check = [&](const std::string& name, const torch::Tensor& got) {
    CAPTURE(name);
    const auto& want = f["processed"][name];
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t v = 0; v < scores.size(1); ++v) {
        const float g = got[r][v].item<float>();
        if (want[r][v].is_null()) {
          CHECK(std::isinf(g));
          CHECK(g < 0);
        } else {
          CHECK(g == doctest::Approx(want[r][v].get<double>()).epsilon(1e-6));
        }
      }
    }
  };
  check("temperature_0.7", apply_temperature(scores, 0.7));
  check("top_k_5", apply_top_k(scores, 5, 1));
  check("top_p_0.8", apply_top_p(scores, 0.8, 1));
  check("top_p_0.01", apply_top_p(scores, 0.01, 1));
  check("repetition_1.5", apply_repetition_penalty(scores, sequences, 1.5));
  check("min_new_2_of_6", suppress_eos(scores, {3, 7}));
}

TEST_CASE("sampling is seeded, and degenerate settings equal greedy") {
  BigramModel model(load_table(1));
  ForwardInputs prompt = batch_of({{5, 9, 2}, {7}}, 0);
  GenerationOptions greedy;
  greedy.max_new_tokens = 8;
  GenerationResult g = generate(model, prompt, greedy);
  GenerationOptions top1 = greedy;
  top1.do_sample = true;
  top1.top_k = 1;
  CHECK(generate(model, prompt, top1).tokens == g.tokens);
  GenerationOptions sample = greedy;
  sample.do_sample = true;
  sample.temperature = 1.5;
  sample.seed = 42;
  GenerationResult a = generate(model, prompt, sample), b = generate(model, prompt, sample);
  CHECK(a.tokens == b.tokens);
  sample.seed = 43;
  bool differs = false;
  for (int s = 43; s < 53 && !differs; ++s) {
    sample.seed = s;
    differs = generate(model, prompt, sample).tokens != a.tokens;
  }
  CHECK(differs);
}

TEST_CASE("streaming callback, cancellation, stop strings and finish reasons") {
  BigramModel model(load_table(0));
  ForwardInputs prompt = batch_of({{5, 9, 2}}, 0);
  GenerationOptions o;
  o.max_new_tokens = 10;
  std::vector<std::int64_t> streamed;
  o.on_token = [&](std::int64_t row, std::int64_t token) {
    CHECK(row == 0);
    streamed.push_back(token);
    return streamed.size() < 4;
  };
  GenerationResult r = generate(model, prompt, o);
  CHECK(streamed.size() == 4);
  CHECK(r.tokens[0] == streamed);
  CHECK(r.finish_reasons[0] == FinishReason::cancelled);

  std::atomic<bool> cancel{true};
  GenerationOptions c;
  c.max_new_tokens = 10;
  c.cancel = &cancel;
  r = generate(model, prompt, c);
  CHECK(r.tokens[0].size() == 1);
  CHECK(r.finish_reasons[0] == FinishReason::cancelled);

  GenerationOptions s;
  s.max_new_tokens = 12;
  s.stop_strings = {"<14>"};
  s.decode = [](const std::vector<std::int64_t>& ids) {
    std::string text;
    for (auto t : ids) text += "<" + std::to_string(t) + ">";
    return text;
  };
  r = generate(model, prompt, s);  // greedy continuation of seed 0 is 11 7 14 1 21 ...
  CHECK(r.tokens[0] == std::vector<std::int64_t>{11, 7, 14});
  CHECK(r.finish_reasons[0] == FinishReason::stop_string);

  GenerationOptions len;
  len.max_new_tokens = 3;
  r = generate(model, prompt, len);
  CHECK(r.tokens[0].size() == 3);
  CHECK(r.finish_reasons[0] == FinishReason::length);
  CHECK(std::string(finish_reason_name(FinishReason::eos)) == "eos");
}

TEST_CASE("defaults come from generation_config.json, then transformers' defaults") {
  BigramModel model(load_table(0));
  GenerationDefaults d;
  d.max_new_tokens = 7;
  d.do_sample = true;
  d.top_k = 1;
  d.eos_token_ids = {3, 8};
  d.pad_token_id = 2;
  auto o = resolve_generation_options({}, &d, model.info());
  CHECK(*o.max_new_tokens == 7);
  CHECK(o.do_sample);
  CHECK(o.top_k == 1);
  CHECK(o.eos_token_ids == std::vector<std::int64_t>{3, 8});
  CHECK(o.pad_token_id == 2);
  GenerationOptions mine;
  mine.do_sample = false;
  mine.max_new_tokens = 2;
  o = resolve_generation_options(mine, &d, model.info());
  CHECK_FALSE(o.do_sample);
  CHECK(*o.max_new_tokens == 2);
  o = resolve_generation_options({}, nullptr, model.info());
  CHECK(o.temperature == 1.0);
  CHECK(o.top_p == 1.0);
  CHECK(o.num_beams == 1);
  CHECK(o.pad_token_id == 3);  // the first EOS id
  CHECK_FALSE(o.max_new_tokens.has_value());
  GenerationResult r = generate(model, batch_of({{5}}, 0), {});
  CHECK(r.tokens[0].size() == 20);  // transformers generates 20 new tokens by default
}

TEST_CASE("invalid options and inputs are errors that name the option") {
  BigramModel model(load_table(0));
  GenerationOptions o;
  o.top_p = 1.5;
  expect_error([&] { resolve_generation_options(o, nullptr, model.info()); }, ErrorCode::invalid_argument, {"top_p"});
  o = {};
  o.num_beams = 0;
  expect_error([&] { resolve_generation_options(o, nullptr, model.info()); }, ErrorCode::invalid_argument, {"num_beams"});
  o = {};
  o.do_sample = true;
  o.temperature = 0.0;
  expect_error([&] { resolve_generation_options(o, nullptr, model.info()); }, ErrorCode::invalid_argument, {"temperature"});
  o = {};
  o.eos_token_ids = std::vector<std::int64_t>{999};
  expect_error([&] { resolve_generation_options(o, nullptr, model.info()); }, ErrorCode::invalid_argument, {"eos_token_id", "999"});
  o = {};
  o.stop_strings = {"x"};
  expect_error([&] { generate(model, batch_of({{1}}, 0), o); }, ErrorCode::invalid_argument, {"stop_strings", "decode"});
  ForwardInputs empty;
  expect_error([&] { generate(model, empty, {}); }, ErrorCode::invalid_argument, {"input_ids"});
  ForwardInputs all_pad = batch_of({{1}}, 0);
  all_pad.attention_mask.zero_();
  expect_error([&] { generate(model, all_pad, {}); }, ErrorCode::invalid_argument, {"all padding"});
}

TEST_CASE("continuation scores: per-token log-probs, sum and greediness") {
  BigramModel model(load_table(0));
  const torch::Tensor table = load_table(0);
  ContinuationScore s = score_continuation(model, {5, 9, 2}, {11, 7});
  REQUIRE(s.token_logprobs.size() == 2);
  const auto lp = torch::log_softmax(table, -1);
  CHECK(s.token_logprobs[0] == doctest::Approx(lp[2][11].item<double>()).epsilon(1e-6));
  CHECK(s.token_logprobs[1] == doctest::Approx(lp[11][7].item<double>()).epsilon(1e-6));
  CHECK(s.sum == doctest::Approx(s.token_logprobs[0] + s.token_logprobs[1]));
  CHECK(s.is_greedy);  // 11 then 7 is the greedy continuation of seed 0
  CHECK_FALSE(score_continuation(model, {5, 9, 2}, {11, 8}).is_greedy);
  expect_error([&] { score_continuation(model, {}, {1}); }, ErrorCode::invalid_argument, {"prompt"});
  expect_error([&] { score_continuation(model, {1}, {}); }, ErrorCode::invalid_argument, {"continuation"});
}
