#include "pipeline/config.h"

#include "base/fs.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::TempDir;

namespace {

ConfigCheckOptions no_files() {
  ConfigCheckOptions o;
  o.check_files = false;
  return o;
}

const char* kMinimal = R"(experiment_name: t
output_dir: out
data:
  train_csv: train.csv
  val_csv: val.csv
models:
  - name: m
    hf_model_id: Org/Tiny
    model_type: qwen2_vl
lora_variants:
  - name: v
    r: 4
    alpha: 8
    dropout: 0.0
    target_modules: null
training:
  learning_rate: 5e-5
)";

}  // namespace

TEST_CASE("the seed's configs/vlm_ablation.yaml validates, as shipped") {
  ExperimentConfig c = load_experiment_config(std::string(VLM_CONFIGS_DIR) + "/vlm_ablation.yaml", no_files());
  CHECK(c.experiment_name == "vlm_lora_ablation");
  CHECK(c.output_dir == "results/vlm_lora_ablation");
  CHECK(c.data.train_csv == "data/quic360/train.csv");
  CHECK(c.data.num_workers == 4);
  REQUIRE(c.models.size() == 2);
  CHECK(c.models[0].model_type == "qwen_vl");
  CHECK(c.models[0].torch_dtype == "float16");
  CHECK(c.models[1].model_type == "llava");
  REQUIRE(c.lora_variants.size() == 2);
  CHECK(c.lora_variants[1].r == 32);
  CHECK(c.lora_variants[1].alpha == 64);
  CHECK(c.lora_variants[1].dropout == doctest::Approx(0.05));
  CHECK_FALSE(c.lora_variants[0].target_modules.has_value());
  CHECK(c.training.learning_rate == doctest::Approx(5e-5));  // a number, not YAML 1.1's string
  CHECK(c.training.gradient_accumulation_steps == 8);
  CHECK(c.training.warmup_ratio == doctest::Approx(0.03));
  CHECK(c.training.mixed_precision == "fp16");
  CHECK(c.training.save_total_limit.value() == 1);
  CHECK(c.training.generation_max_new_tokens == 128);
  CHECK_FALSE(c.training.generation_temperature.has_value());
  CHECK(c.training.seed == 42);
  CHECK(c.evaluation.enabled);
  CHECK(c.run_names() == std::vector<std::string>{"qwen_vl_chat__lora_r16", "qwen_vl_chat__lora_r32",
                                                  "llava_1.5_7b__lora_r16", "llava_1.5_7b__lora_r32"});
}

TEST_CASE("missing data files are reported with the key, the line and where it looked") {
  expect_error([] { load_experiment_config(std::string(VLM_CONFIGS_DIR) + "/vlm_ablation.yaml"); },
               ErrorCode::invalid_argument, {"vlm_ablation.yaml:6: data.train_csv", "data/quic360/train.csv", "not found"});
  TempDir dir;
  write_file_atomic(dir.file("train.csv"), "url,instruction,response\n");
  write_file_atomic(dir.file("val.csv"), "url,query,annotation\n");
  write_file_atomic(dir.file("c.yaml"), kMinimal);
  ExperimentConfig c = load_experiment_config(dir.file("c.yaml"));  // relative to the config's folder
  CHECK(c.data.train_csv == dir.file("train.csv"));
}

TEST_CASE("every problem is reported at once, with key paths, lines and suggestions") {
  const std::string text = R"(experiment_name: t
output_dir: out
data:
  train_csv: train.csv
  val_csv: val.csv
  num_worker: 2
models:
  - name: m
    hf_model_id: Org/Tiny
    model_type: qwen9
  - name: m
    hf_model_id: Org/Other
lora_variants:
  - name: v
    r: sixteen
    alpha: -1
    dropout: 1.5
training:
  learnin_rate: 1e-4
  per_device_train_batch_size: 0
  mixed_precision: fp8
  gradient_checkpointing: maybe
evaluation:
  enabled: yes
)";
  expect_error([&] { parse_experiment_config(text, "bad.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"bad.yaml:6: data.num_worker: unknown key; did you mean 'data.num_workers'?",
                "bad.yaml:10: models[0].model_type: \"qwen9\" is not supported",
                "bad.yaml:11: models[1].name: \"m\" is used by another model",
                "bad.yaml:15: lora_variants[0].r: must be a number, found \"sixteen\"",
                "bad.yaml:16: lora_variants[0].alpha: must be positive, found -1",
                "bad.yaml:17: lora_variants[0].dropout: must be in [0, 1)",
                "bad.yaml:19: training.learnin_rate: unknown key; did you mean 'training.learning_rate'?",
                "bad.yaml:20: training.per_device_train_batch_size: must be at least 1",
                "bad.yaml:21: training.mixed_precision: is \"fp8\"; expected one of: no, fp16, bf16",
                "bad.yaml:22: training.gradient_checkpointing: must be true or false",
                "bad.yaml:24: evaluation.enabled: must be true or false", "11 problems"});
}

TEST_CASE("a key in the wrong section names the section where it belongs") {
  const std::string text = std::string(kMinimal) + R"(  seed: 3
  max_train_samples: 4
  r: 8
evaluation:
  generation_max_new_tokens: 32
  enabled: true
  learning_rat: 1e-4
  max_eval_sample: 2
experiment_nme: x
)";
  expect_error([&] { parse_experiment_config(text, "moved.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"moved.yaml:19: training.max_train_samples: unknown key; it belongs under data (data.max_train_samples)",
                "moved.yaml:20: training.r: unknown key; it belongs in each entry of lora_variants (lora_variants[].r)",
                "moved.yaml:22: evaluation.generation_max_new_tokens: unknown key; it belongs under training "
                "(training.generation_max_new_tokens)",
                // A near miss of a key of another section gets the closest key of its own section, if any.
                "moved.yaml:24: evaluation.learning_rat: unknown key",
                "moved.yaml:25: evaluation.max_eval_sample: unknown key",
                "moved.yaml:26: experiment_nme: unknown key; did you mean 'experiment_name'?", "6 problems"});
}

TEST_CASE("duplicate keys, merge keys and tab indentation are errors that say so") {
  const std::string duplicated = std::string(kMinimal) + R"(  learning_rate: 1e-3
lora_variants:
  - name: w
)";
  expect_error([&] { parse_experiment_config(duplicated, "dup.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"dup.yaml:18: training.learning_rate: is given twice (lines 17 and 18); keep one of them",
                "dup.yaml:19: lora_variants: is given twice (lines 10 and 19)"});
  const std::string list_item = R"(experiment_name: t
output_dir: out
data: {train_csv: a.csv, train_csv: b.csv}
models:
  - name: m
    hf_model_id: Org/Tiny
    name: n
)";
  expect_error([&] { parse_experiment_config(list_item, "dup.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"dup.yaml:3: data.train_csv: is given twice (lines 3 and 3)",
                "dup.yaml:7: models[0].name: is given twice (lines 5 and 7)"});
  const std::string merged = R"(experiment_name: t
output_dir: out
defaults: &defaults
  r: 4
data: {train_csv: a.csv}
models: [{name: m, hf_model_id: Org/Tiny}]
lora_variants:
  - name: v
    <<: *defaults
  - name: w
    "<<": 3
training: {}
)";
  expect_error([&] { parse_experiment_config(merged, "merge.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"merge.yaml:9: lora_variants[0].<<: YAML merge keys (<<) are not supported; write the merged keys out",
                "merge.yaml:3: defaults: unknown key", "merge.yaml:11: lora_variants[1].<<: unknown key"});
  expect_error([] { parse_experiment_config("experiment_name: t\ndata:\n\ttrain_csv: a.csv\n", "tab.yaml", no_files()); },
               ErrorCode::corrupt_data, {"tab.yaml:", "not valid YAML", "line 3 is indented with a tab; YAML indents with spaces only"});
  expect_error([] { parse_experiment_config("data:\n  a: 1\n\tb: 2\n", "tab.yaml", no_files()); },
               ErrorCode::corrupt_data, {"line 3 is indented with a tab"});
  // An alias bomb is refused by the node budget, not expanded.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 8; ++i)
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + [&] {
      std::string items;
      for (int k = 0; k < 10; ++k) items += (k ? ", *a" : "*a") + std::to_string(i - 1);
      return items;
    }() + "]\n";
  expect_error([&] { parse_experiment_config(bomb, "bomb.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"more than 100000 YAML nodes"});
}

TEST_CASE("required keys, structure and YAML syntax") {
  expect_error([] { parse_experiment_config("models: [1", "syntax.yaml", no_files()); }, ErrorCode::corrupt_data,
               {"syntax.yaml:", "not valid YAML"});
  expect_error([] { parse_experiment_config("- a\n- b\n", "list.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"list.yaml", "mapping"});
  expect_error([] { parse_experiment_config("experiment_name: x\n", "empty.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"output_dir: is required", "data: is required", "models: must be a non-empty list", "lora_variants: must be a non-empty list"});
  std::string no_val = kMinimal;
  no_val.replace(no_val.find("  val_csv: val.csv\n"), 18, "");
  expect_error([&] { parse_experiment_config(no_val, "c.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"data.val_csv: is required while evaluation.enabled is true"});
  no_val += "evaluation:\n  enabled: false\n";
  CHECK_FALSE(parse_experiment_config(no_val, "c.yaml", no_files()).evaluation.enabled);
}

TEST_CASE("LoRA target_modules forms and model type spellings") {
  std::string text = kMinimal;
  text.replace(text.find("target_modules: null"), 20, "target_modules: [\"q_proj\", \"k_proj\", \"v_proj\"]");
  auto c = parse_experiment_config(text, "c.yaml", no_files());
  CHECK(c.lora_variants[0].target_modules.value() == std::vector<std::string>{"q_proj", "k_proj", "v_proj"});
  CHECK_FALSE(c.lora_variants[0].target_modules_is_regex);
  text = kMinimal;
  text.replace(text.find("target_modules: null"), 20, "target_modules: \".*language_model.*\\\\.(q|v)_proj\"");
  c = parse_experiment_config(text, "c.yaml", no_files());
  CHECK(c.lora_variants[0].target_modules_is_regex);
  text = kMinimal;
  text.replace(text.find("target_modules: null"), 20, "target_modules: all-linear");
  CHECK_FALSE(parse_experiment_config(text, "c.yaml", no_files()).lora_variants[0].target_modules_is_regex);
  CHECK(normalize_model_type("blip-2") == "blip2");
  CHECK(normalize_model_type("Qwen2.5-VL") == "qwen2_5_vl");
  CHECK(normalize_model_type("LLAVA") == "llava");
  CHECK(normalize_model_type("gpt-5") == "");
}

TEST_CASE("evaluation.baseline adds the untuned model's evaluation and reserves the variant name") {
  CHECK_FALSE(parse_experiment_config(kMinimal, "c.yaml", no_files()).evaluation.baseline);
  std::string text = std::string(kMinimal) + "evaluation:\n  enabled: true\n  baseline: true\n";
  CHECK(parse_experiment_config(text, "c.yaml", no_files()).evaluation.baseline);
  std::string clash = text;
  clash.replace(clash.find("  - name: v\n"), 12, "  - name: baseline\n");
  expect_error([&] { parse_experiment_config(clash, "c.yaml", no_files()); }, ErrorCode::invalid_argument,
               {"c.yaml:20: evaluation.baseline", "a LoRA variant is named \"baseline\""});
  expect_error([&] { parse_experiment_config(std::string(kMinimal) + "evaluation:\n  baseline: yes\n", "c.yaml", no_files()); },
               ErrorCode::invalid_argument, {"evaluation.baseline: must be true or false"});
}

TEST_CASE("image feature keys: defaults, values, and their errors") {
  const ExperimentConfig defaults = parse_experiment_config(kMinimal, "c.yaml", no_files());
  CHECK(defaults.training.cache_image_features);
  CHECK(defaults.training.store_image_features);
  CHECK(defaults.training.image_feature_store_dir.empty());
  CHECK(defaults.training.image_feature_store_mb == 8192);
  const std::string set = std::string(kMinimal) +
                          "  store_image_features: false\n  image_feature_store_dir: /tmp/features\n"
                          "  image_feature_store_mb: 100\n";
  const ExperimentConfig c = parse_experiment_config(set, "c.yaml", no_files());
  CHECK_FALSE(c.training.store_image_features);
  CHECK(c.training.image_feature_store_dir == "/tmp/features");
  CHECK(c.training.image_feature_store_mb == 100);
  expect_error([&] { parse_experiment_config(std::string(kMinimal) + "  image_feature_store_mb: -1\n", "c.yaml", no_files()); },
               ErrorCode::invalid_argument, {"c.yaml:18: training.image_feature_store_mb", "non-negative"});
  expect_error([&] { parse_experiment_config(std::string(kMinimal) + "  store_image_feature: true\n", "c.yaml", no_files()); },
               ErrorCode::invalid_argument, {"training.store_image_feature", "store_image_features"});
}
