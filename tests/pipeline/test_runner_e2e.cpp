// The pipeline end to end with the real trainer and evaluation: two tiny models (Qwen2-VL and Qwen2.5-VL) x two
// LoRA variants plus the untuned baselines; every output file's schema; an interrupted run resumed and finished
// runs skipped by later invocations.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/fs.h"
#include "pipeline/runner.h"
#include "runner_test_util.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::fixture;
using vlm::test::load_json;
using vlm::test::run_entry;
using vlm::test::TempDir;
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {


// A Qwen2.5-VL checkpoint folder: the model fixture's weights with the session fixture's tokenizer files (same
// vocabulary size and special token ids).
std::string make_qwen2_5_vl_folder(const std::string& dir) {
  const std::string folder = dir + "/qwen2_5_vl_tiny";
  fs::create_directories(folder);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(fixture(std::string("model/qwen2_5_vl_window_untied/") + f), folder + "/" + f);
  }
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "preprocessor_config.json",
                        "generation_config.json"}) {
    fs::copy_file(fixture(std::string("session/qwen2_vl_tiny/") + f), folder + "/" + f);
  }
  return folder;
}

struct E2E {
  TempDir dir;
  std::string config;
  E2E() {
    const std::string data = dir.file("data");
    fs::create_directories(data);
    for (const char* image : {"square.png", "wide.png", "tall.png"}) {
      fs::copy_file(fixture(std::string("session/") + image), data + "/" + image);
    }
    write_file_atomic(data + "/train.csv",
                      "url,instruction,response\n"
                      "square.png,Describe this image .,a red table\n"
                      "wide.png,What is in the picture ?,two blue cats\n"
                      "tall.png,Describe this image .,a small green lamp\n");
    write_file_atomic(data + "/val.csv",
                      "url,query,annotation\n"
                      "wide.png,What is in the picture ?,two blue cats\n"
                      "square.png,Describe this image .,a red table\n");
    const std::string second = make_qwen2_5_vl_folder(dir.path());
    config = dir.file("e2e.yaml");
    write_file_atomic(config, R"(experiment_name: e2e
output_dir: )" + dir.file("out") + R"(
data:
  train_csv: data/train.csv
  val_csv: data/val.csv
  num_workers: 0
models:
  - name: qwen2
    hf_model_id: )" + fixture("session/qwen2_vl_tiny") + R"(
    model_type: qwen2_vl
    min_pixels: 1024
    max_pixels: 1024
  - name: qwen25
    hf_model_id: )" + second + R"(
    model_type: qwen_vl
    min_pixels: 1024
    max_pixels: 1024
lora_variants:
  - name: r4
    r: 4
    alpha: 8
  - name: r8
    r: 8
    alpha: 16
    target_modules: [q_proj, k_proj, v_proj, o_proj]
training:
  max_steps: 2
  per_device_train_batch_size: 1
  per_device_eval_batch_size: 2
  learning_rate: 1e-3
  logging_steps: 1
  save_strategy: steps
  save_steps: 1
  seed: 7
  generation_max_new_tokens: 3
evaluation:
  enabled: true
  baseline: true
)");
  }
  std::string out(const std::string& rel) const { return dir.file("out/" + rel); }
};

void check_lora_run(const E2E& e, const std::string& run, int r) {
  CAPTURE(run);
  const json metrics = load_json(e.out(run + "/metrics.json"));
  CHECK(metrics["global_step"] == 2);
  CHECK(metrics["completed"] == true);
  CHECK(metrics["trainable_parameters"].get<std::int64_t>() > 0);
  REQUIRE(metrics["log_history"].is_array());
  REQUIRE(metrics["log_history"].size() == 2);
  for (const auto& entry : metrics["log_history"]) {
    CHECK(entry["loss"].is_number());
    CHECK(entry["learning_rate"].is_number());
  }
  CHECK(metrics["log_history"][1]["step"] == 2);
  const json adapter = load_json(e.out(run + "/lora_adapter/adapter_config.json"));
  CHECK(adapter["peft_type"] == "LORA");
  CHECK(adapter["r"] == r);
  CHECK(adapter["lora_alpha"].get<double>() == 2.0 * r);
  CHECK(fs::file_size(e.out(run + "/lora_adapter/adapter_model.safetensors")) > 100);
  CHECK(is_regular_file(e.out(run + "/final/config.json")));
  CHECK(is_regular_file(e.out(run + "/final/model.safetensors")));
  CHECK(is_directory(e.out(run + "/checkpoints/checkpoint-2")));
  const json state = load_json(e.out(run + "/run_state.json"));
  CHECK(state["status"] == "completed");
  CHECK(state["training"]["status"] == "completed");
  const std::string log = read_file(e.out(run + "/run.log"));
  CHECK(log.find("train step 2/2") != std::string::npos);
  CHECK(log.find("run completed") != std::string::npos);
}

void check_evaluation(const E2E& e, const std::string& run) {
  CAPTURE(run);
  std::ifstream in(e.out(run + "/predictions.jsonl"));
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    const json p = json::parse(line);
    CHECK(p["prediction"].is_string());
    CHECK(p["reference"].is_string());
    CHECK(p["query"].is_string());
    CHECK(p["scores"].is_object());
    ++lines;
  }
  CHECK(lines == 2);
  const json m = load_json(e.out(run + "/generation_metrics.json"));
  for (const char* name : {"exact_match", "bleu", "meteor", "rougeL"}) {
    CAPTURE(name);
    REQUIRE(m["metrics"].contains(name));
    CHECK(m["metrics"][name]["value"].is_number());
    CHECK(m["metrics"][name]["implementation"].is_string());
  }
  CHECK(load_json(e.out(run + "/run_state.json"))["evaluation"]["val"]["examples"] == 2);
}

}  // namespace

TEST_CASE("two models x two variants end to end: outputs, an interrupted run resumed, finished runs skipped") {
  E2E e;
  PipelineOptions options;
  options.config_path = e.config;
  // First invocation: stop qwen2__r8 after its first update (the trainer saves checkpoint-1 and returns).
  options.on_progress = [](const PipelineProgress& p) { return !(p.run == "qwen2__r8" && p.stage == "train" && p.done == 1); };
  PipelineResult first = run_pipeline(options);
  CHECK(first.cancelled);
  CHECK(first.failed == 0);
  CHECK(run_entry(first.summary, "qwen2__baseline")["status"] == "completed");
  CHECK(run_entry(first.summary, "qwen2__r4")["status"] == "completed");
  CHECK(run_entry(first.summary, "qwen2__r8")["status"] == "interrupted");
  CHECK(run_entry(first.summary, "qwen25__r4")["status"] == "pending");
  CHECK(is_directory(e.out("qwen2__r8/checkpoints/checkpoint-1")));
  CHECK_FALSE(is_directory(e.out("qwen2__r8/checkpoints/checkpoint-2")));
  check_lora_run(e, "qwen2__r4", 4);

  // Second invocation: resumes qwen2__r8 at update 2, runs the rest, skips what is finished.
  options.on_progress = nullptr;
  std::vector<std::string> trained;
  options.on_progress = [&](const PipelineProgress& p) {
    if (p.stage == "train") trained.push_back(p.run + "@" + std::to_string(p.done));
    return true;
  };
  PipelineResult second = run_pipeline(options);
  CHECK_FALSE(second.cancelled);
  CHECK(second.failed == 0);
  CHECK(second.completed == 6);
  CHECK(second.skipped == 2);
  CHECK(trained == std::vector<std::string>{"qwen2__r8@2", "qwen25__r4@1", "qwen25__r4@2", "qwen25__r8@1", "qwen25__r8@2"});
  CHECK(run_entry(second.summary, "qwen2__r8")["this_invocation"] == "resumed");
  CHECK(run_entry(second.summary, "qwen2__r4")["this_invocation"] == "skipped");
  CHECK(read_file(e.out("qwen2__r8/run.log")).find("resumed from") != std::string::npos);
  check_lora_run(e, "qwen2__r8", 8);
  check_lora_run(e, "qwen25__r4", 4);
  check_lora_run(e, "qwen25__r8", 8);
  for (const std::string run : {"qwen2__baseline", "qwen2__r4", "qwen2__r8", "qwen25__baseline", "qwen25__r4", "qwen25__r8"}) {
    check_evaluation(e, run);
  }
  CHECK_FALSE(path_exists(e.out("qwen2__baseline/lora_adapter")));
  // The second variant of a model reads the image features the runs before it stored: its vision tower never ran.
  const json store_use = load_json(e.out("qwen25__r8/metrics.json"))["image_feature_cache"];
  CHECK(store_use["computed"] == 0);
  CHECK(store_use["read_from_store"] == 2);
  CHECK(store_use["store"].get<std::string>().rfind(e.out("image_features/"), 0) == 0);

  // The summary: every run side by side, numbers taken from the run files.
  const json summary = load_json(e.dir.file("out/ablation_summary.json"));
  CHECK(summary["counts"]["runs"] == 6);
  CHECK(summary["counts"]["completed"] == 6);
  for (const auto& r : summary["runs"]) {
    CAPTURE(r["name"]);
    CHECK(r["status"] == "completed");
    CHECK(r["evaluation"]["val"]["examples"] == 2);
    CHECK(r["evaluation"]["val"]["metrics"]["bleu"].is_number());
    if (r["kind"] == "lora") {
      CHECK(r["training"]["steps"] == 2);
      CHECK(r["training"]["final_loss"].is_number());
      CHECK(r["training"]["trainable_parameters"].get<std::int64_t>() > 0);
    }
  }
  const json& resumed = run_entry(summary, "qwen2__r8");
  CHECK(resumed["training"]["final_loss"] == load_json(e.out("qwen2__r8/metrics.json"))["log_history"][1]["loss"]);
  CHECK(read_file(e.dir.file("out/ablation_summary.md")).find("| qwen25__r8 | completed | 2 |") != std::string::npos);

  // Third invocation: nothing left to do.
  const auto stamp = fs::last_write_time(e.out("qwen25__r8/metrics.json"));
  trained.clear();
  PipelineResult third = run_pipeline(options);
  CHECK(third.skipped == 6);
  CHECK(trained.empty());
  CHECK(fs::last_write_time(e.out("qwen25__r8/metrics.json")) == stamp);
}
