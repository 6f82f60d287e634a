// Forward parity with transformers 5.23.0 on tiny random checkpoints: every logit of every case, the KV-cache
// path (prefill + step-by-step decode) against the full forward, and bfloat16 runs.
#include <torch/torch.h>

#include <algorithm>

#include "base/log.h"
#include "model/layers.h"
#include "model/matvec.h"
#include "model/registry.h"
#include "model_fixture.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;
using namespace vlm::test;

namespace {

constexpr double kFp32Tolerance = 1e-4;
double worst_fp32_diff = 0;  // reported once per test case, so the margin to the tolerance is visible in CI logs

const char* const kVisionConfigs[] = {"qwen2_vl_gqa_tied_hub", "qwen2_vl_mha_untied", "qwen2_5_vl_window_untied",
                                      "qwen2_5_vl_window24_tied_hub"};
const char* const kVisionCases[] = {"one_image", "two_images", "no_image", "batch_left_pad"};
const char* const kTextConfigs[] = {"qwen2_tied", "llama_llama3_untied", "llama_linear_headdim"};
const char* const kTextCases[] = {"single", "batch_left_pad"};

void check_full_forward(VisionLanguageModel& model, const ModelCase& c, const std::string& label) {
  auto logits = model.forward(c.inputs(), nullptr);
  const auto& expected = c.at("logits");
  REQUIRE((logits.sizes() == expected.sizes()));
  CHECK((logits.scalar_type() == torch::kFloat));
  const double real = max_diff_on(logits, expected, c.at("attention_mask"));
  // Padded rows attend uniformly to every key in transformers' eager path; vlmrt builds the same mask.
  const double all = (logits - expected).abs().max().item<double>();
  INFO(label << ": max |diff| on real tokens " << real << ", everywhere " << all);
  CHECK(real < kFp32Tolerance);
  CHECK(all < kFp32Tolerance);
  worst_fp32_diff = std::max(worst_fp32_diff, all);
}

// Prefill all but the last `steps` tokens, then decode them one at a time; every logit must match the full forward.
void check_kv_cache(VisionLanguageModel& model, const ModelCase& c, std::int64_t steps, const std::string& label) {
  const auto& ids = c.at("input_ids");
  const auto& mask = c.at("attention_mask");
  const auto& expected = c.at("logits");
  const auto len = ids.size(1), prefix = len - steps;
  auto state = model.new_state(ids.size(0));
  ForwardInputs prefill = c.inputs();
  prefill.input_ids = ids.narrow(1, 0, prefix);
  prefill.attention_mask = mask.narrow(1, 0, prefix);
  auto logits = model.forward(prefill, state.get());
  CHECK(state->length() == prefix);
  auto prefill_mask = mask.narrow(1, 0, prefix);
  CHECK(max_diff_on(logits, expected.narrow(1, 0, prefix), prefill_mask) < kFp32Tolerance);
  for (std::int64_t j = prefix; j < len; ++j) {
    ForwardInputs step;
    step.input_ids = ids.narrow(1, j, 1);
    step.attention_mask = mask.narrow(1, 0, j + 1);
    step.all_logits = false;
    auto out = model.forward(step, state.get());
    REQUIRE(out.size(1) == 1);
    const double diff = (out.select(1, 0) - expected.select(1, j)).abs().max().item<double>();
    INFO(label << ": decode step at position " << j << " max |diff| " << diff);
    CHECK(diff < kFp32Tolerance);
    worst_fp32_diff = std::max(worst_fp32_diff, diff);
  }
  CHECK(state->length() == len);
}

}  // namespace

TEST_CASE("Qwen2-VL / Qwen2.5-VL logits match transformers (fp32, eager; sdpa agreed in the oracle)") {
  worst_fp32_diff = 0;
  for (const char* config : kVisionConfigs) {
    auto model = load_model(model_fixture(config));
    CHECK(model->info().image_token_id == 250);
    CHECK(model->info().vocab_size == 256);
    for (const char* name : kVisionCases) {
      check_full_forward(*model, load_case(config, name), std::string(config) + "/" + name);
    }
  }
  MESSAGE("vision families: largest |vlmrt - transformers| logit difference " << worst_fp32_diff);
}

TEST_CASE("Qwen2 / Llama logits match transformers (fp32)") {
  worst_fp32_diff = 0;
  for (const char* config : kTextConfigs) {
    auto model = load_model(model_fixture(config));
    CHECK(model->info().image_token_id == -1);
    for (const char* name : kTextCases) {
      check_full_forward(*model, load_case(config, name), std::string(config) + "/" + name);
    }
  }
  MESSAGE("text families: largest |vlmrt - transformers| logit difference " << worst_fp32_diff);
}

TEST_CASE("KV cache: prefill + decode steps equal the full forward") {
  worst_fp32_diff = 0;
  for (const char* config : kVisionConfigs) {
    auto model = load_model(model_fixture(config));
    for (const char* name : {"one_image", "batch_left_pad", "no_image"}) {
      check_kv_cache(*model, load_case(config, name), 3, std::string(config) + "/" + name);
    }
  }
  for (const char* config : kTextConfigs) {
    auto model = load_model(model_fixture(config));
    for (const char* name : kTextCases) check_kv_cache(*model, load_case(config, name), 4, std::string(config) + "/" + name);
  }
  MESSAGE("KV cache path: largest |vlmrt - transformers| logit difference " << worst_fp32_diff);
}

TEST_CASE("KV cache: reorder keeps rows with their history (beam search)") {
  auto model = load_model(model_fixture("qwen2_5_vl_window_untied"));
  auto c = load_case("qwen2_5_vl_window_untied", "batch_left_pad");
  const auto& ids = c.at("input_ids");
  const auto& mask = c.at("attention_mask");
  const auto len = ids.size(1), prefix = len - 1;
  auto state = model->new_state(2);
  ForwardInputs prefill = c.inputs();
  prefill.input_ids = ids.narrow(1, 0, prefix);
  prefill.attention_mask = mask.narrow(1, 0, prefix);
  model->forward(prefill, state.get());
  // Swap the rows, then decode the last token of each swapped row.
  auto order = torch::tensor({1, 0}, torch::kLong);
  state->reorder(order);
  ForwardInputs step;
  step.input_ids = ids.index_select(0, order).narrow(1, prefix, 1);
  step.attention_mask = mask.index_select(0, order);
  step.all_logits = false;
  auto out = model->forward(step, state.get());
  auto expected = c.at("logits").index_select(0, order).select(1, len - 1);
  CHECK((out.select(1, 0) - expected).abs().max().item<double>() < kFp32Tolerance);
}

// bfloat16: both sides round the same fp32 weights to bf16 and compute in bf16, but kernels accumulate in different
// orders and round intermediates at different points, so single logits differ by a few bf16 ulps of the hidden
// states. The bound: 25% of the fp32-vs-bf16 error transformers itself shows on the same input, plus 0.02 of the
// logit range. A wrong op (missing norm, wrong rotary) moves logits by far more than the bf16-vs-fp32 gap.
TEST_CASE("bfloat16 runs match transformers' bfloat16 logits") {
  struct Item {
    const char* config;
    const char* name;
  };
  for (const Item& item : {Item{"qwen2_vl_gqa_tied_hub", "one_image_bf16"}, Item{"qwen2_vl_mha_untied", "one_image_bf16"},
                           Item{"qwen2_5_vl_window_untied", "one_image_bf16"},
                           Item{"qwen2_5_vl_window24_tied_hub", "one_image_bf16"}, Item{"qwen2_tied", "single_bf16"},
                           Item{"llama_llama3_untied", "single_bf16"}, Item{"llama_linear_headdim", "single_bf16"}}) {
    LoadOptions options;
    options.dtype = torch::kBFloat16;
    auto model = load_model(model_fixture(item.config), options);
    CHECK((model->dtype() == torch::kBFloat16));
    auto c = load_case(item.config, item.name);
    auto logits = model->forward(c.inputs(), nullptr);
    const auto& hf_bf16 = c.at("logits");
    const auto& hf_fp32 = c.at("logits_fp32");
    const double ours = (logits - hf_bf16).abs().max().item<double>();
    const double hf_gap = (hf_bf16 - hf_fp32).abs().max().item<double>();
    const double range = hf_fp32.abs().max().item<double>();
    const double ours_vs_fp32 = (logits - hf_fp32).abs().max().item<double>();
    INFO(std::string(item.config) << ": |ours - hf bf16| " << ours << ", |hf bf16 - hf fp32| " << hf_gap << ", |ours - fp32| "
                     << ours_vs_fp32 << ", logit range " << range);
    MESSAGE(std::string(item.config) << " bf16: |vlmrt - transformers bf16| " << ours << ", transformers' own bf16-vs-fp32 gap "
                         << hf_gap << ", |vlmrt bf16 - transformers fp32| " << ours_vs_fp32 << ", logit range "
                         << range);
    CHECK(ours < 0.25 * hf_gap + 0.02 * range);
    CHECK(ours_vs_fp32 < 2.0 * hf_gap + 0.02 * range);
    // The greedy choice agrees at almost every position.
    auto agree = (logits.argmax(-1) == hf_bf16.argmax(-1)).to(torch::kFloat).mean().item<double>();
    CHECK(agree >= 0.9);
  }
}

// Coded weights (model/matvec.h) change the bytes a bfloat16 decode step reads, not its arithmetic: prefill and
// every decode step give the same logits, bit for bit, with and without them. The fixtures' 64-wide projections
// and LM heads are coded; the 96-wide down projections are not (K must be a multiple of 64).
TEST_CASE("bfloat16 decode steps give the same logits through coded weights as through the weights themselves") {
  torch::NoGradGuard no_grad;
  for (const std::string config : {"qwen2_vl_gqa_tied_hub", "qwen2_5_vl_window_untied", "llama_llama3_untied"}) {
    CAPTURE(config);
    std::unique_ptr<VisionLanguageModel> models[2];
    std::vector<std::string> lines;
    {
      // Collects the log lines of the two loads; restores the logger however the block ends.
      struct Capture {
        LogLevel threshold_before = log_threshold();
        explicit Capture(std::vector<std::string>& into) {
          set_log_threshold(LogLevel::info);
          set_log_sink([&into](LogLevel, std::string_view line) { into.emplace_back(line); });
        }
        ~Capture() {
          set_log_sink({});
          set_log_threshold(threshold_before);
        }
      } capture(lines);
      for (bool coded : {false, true}) {
        LoadOptions options;
        options.dtype = torch::kBFloat16;
        options.coded_decode_weights = coded;
        models[coded] = load_model(model_fixture(config), options);
      }
    }
    // One line says what was coded, with sizes (none on CPUs without AVX2, where the portable kernel ignores them).
    const auto said = std::count_if(lines.begin(), lines.end(), [](const std::string& line) {
      return line.find("in their 12-bit coded form") != std::string::npos && line.find(" MB instead of ") != std::string::npos;
    });
    const bool kernel_reads_copies = static_cast<int>(kernel_isa()) >= static_cast<int>(KernelIsa::avx2);
    CHECK(said == (kernel_reads_copies ? 1 : 0));
    auto coded_projections = [](VisionLanguageModel& model) {
      int count = 0;
      for (const auto& item : model.module().named_modules("", false)) {
        auto projection = std::dynamic_pointer_cast<ProjectionImpl>(item.value());
        if (projection && projection->coded_weight()) ++count;
      }
      return count;
    };
    CHECK(coded_projections(*models[0]) == 0);
    if (kernel_reads_copies) {
      const int count = coded_projections(*models[1]);
      MESSAGE(config << ": " << count << " coded projections");
      CHECK(count > 0);
    } else {
      CHECK(coded_projections(*models[1]) == 0);
    }

    const auto c = load_case(config, config.find("llama") == 0 ? "single" : "one_image");
    const auto& ids = c.at("input_ids");
    const auto prefix = ids.size(1) - 4;
    // On every instruction set that reads the copies: each has its own bfloat16 loop and summation order.
    const auto best = kernel_isa();
    struct RestoreIsa {
      KernelIsa isa;
      ~RestoreIsa() { limit_kernel_isa(isa); }
    } restore{best};
    for (auto isa : {KernelIsa::avx2, KernelIsa::avx512, KernelIsa::avx512_bf16}) {
      if (static_cast<int>(isa) > static_cast<int>(best)) continue;
      limit_kernel_isa(isa);
      const std::string isa_name = kernel_isa_name(isa);
      CAPTURE(isa_name);
      torch::Tensor logits[2];
      for (int side = 0; side < 2; ++side) {
        auto state = models[side]->new_state(ids.size(0));
        ForwardInputs prefill = c.inputs();
        prefill.input_ids = ids.narrow(1, 0, prefix);
        prefill.attention_mask = c.at("attention_mask").narrow(1, 0, prefix);
        std::vector<torch::Tensor> out{models[side]->forward(prefill, state.get())};
        for (std::int64_t j = prefix; j < ids.size(1); ++j) {
          ForwardInputs step;
          step.input_ids = ids.narrow(1, j, 1);
          step.all_logits = false;
          out.push_back(models[side]->forward(step, state.get()));
        }
        logits[side] = torch::cat(out, 1);
      }
      CHECK(torch::equal(logits[0], logits[1]));
    }
  }
}

TEST_CASE("float16 on the CPU runs and stays close to float32") {
  LoadOptions options;
  options.dtype = torch::kHalf;
  auto model = load_model(model_fixture("qwen2_vl_mha_untied"), options);
  auto c = load_case("qwen2_vl_mha_untied", "one_image");
  auto logits = model->forward(c.inputs(), nullptr);
  const double diff = (logits - c.at("logits")).abs().max().item<double>();
  INFO("fp16 vs transformers fp32: " << diff);
  CHECK(diff < 0.05);  // fp16 has 3 more mantissa bits than bf16, whose gap on this model is 0.052
}

TEST_CASE("only the last position's logits when all_logits is false") {
  auto model = load_model(model_fixture("qwen2_vl_mha_untied"));
  auto c = load_case("qwen2_vl_mha_untied", "two_images");
  ForwardInputs in = c.inputs();
  in.all_logits = false;
  auto logits = model->forward(in, nullptr);
  REQUIRE(logits.size(1) == 1);
  const auto last = c.at("logits").size(1) - 1;
  CHECK((logits.select(1, 0) - c.at("logits").select(1, last)).abs().max().item<double>() < kFp32Tolerance);
}
