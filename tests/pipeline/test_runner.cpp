// The ablation runner's bookkeeping (run folders, skipping, resuming, failures, the summary) with a test double
// for training and evaluation; test_runner_e2e.cpp runs the real trainer and evaluation.
#include "pipeline/runner.h"

#include <filesystem>
#include <map>
#include <set>

#include "base/fs.h"
#include "runner_test_util.h"
#include "test_util.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::fixture;
using vlm::test::load_json;
using vlm::test::run_entry;
using vlm::test::TempDir;
using json = nlohmann::ordered_json;

namespace {

// Writes what the real trainer and evaluation write, records what it was asked, and fails or stops on request.
struct FakeBackend {
  std::vector<TrainingJob> train_jobs;
  std::vector<EvaluationRequest> eval_requests;
  std::set<std::string> fail_training_for;  // run folder names
  std::map<std::string, std::int64_t> stop_at_step;
  std::int64_t steps = 4;

  PipelineBackend backend() {
    PipelineBackend b;
    b.train = [this](const TrainingJob& job) { return train(job); };
    b.evaluate = [this](const EvaluationRequest& r) { return evaluate(r); };
    return b;
  }

  TrainingSummary train(const TrainingJob& job) {
    train_jobs.push_back(job);
    const std::string run = std::filesystem::path(job.run_dir).filename().string();
    if (fail_training_for.count(run)) fail(ErrorCode::corrupt_data, "train.csv row 3: image missing (test double)");
    std::int64_t first = 1;
    if (job.training.resume_from_checkpoint == "latest") {
      for (const auto& e : std::filesystem::directory_iterator(job.run_dir + "/checkpoints")) {
        first = std::max<std::int64_t>(first, std::stoll(e.path().filename().string().substr(11)) + 1);
      }
    }
    json history = json::array();
    for (std::int64_t step = first; step <= steps; ++step) {
      const double loss = 2.0 / static_cast<double>(step);
      history.push_back({{"step", step}, {"loss", loss}});
      create_directories(job.run_dir + "/checkpoints/checkpoint-" + std::to_string(step));
      if (job.on_log) job.on_log("step " + std::to_string(step) + " done");
      TrainingProgress p;
      p.step = step;
      p.total_steps = steps;
      p.loss = loss;
      p.learning_rate = 1e-4;
      const bool go_on = job.on_progress(p);
      auto stop = stop_at_step.find(run);
      if (!go_on || (job.cancel && job.cancel->load()) || (stop != stop_at_step.end() && stop->second == step)) {
        if (stop != stop_at_step.end()) stop_at_step.erase(stop);
        TrainingSummary s;
        s.completed = false;
        return s;
      }
    }
    create_directories(job.run_dir + "/lora_adapter");
    write_file_atomic(job.run_dir + "/lora_adapter/adapter_config.json", "{\"r\": " + std::to_string(job.lora.r) + "}");
    write_file_atomic(job.run_dir + "/lora_adapter/adapter_model.safetensors", "x");
    create_directories(job.run_dir + "/final");
    json metrics;
    metrics["global_step"] = steps;
    metrics["train_runtime"] = 1.5;
    metrics["train_samples_per_second"] = 8.0;
    metrics["trainable_parameters"] = 1234;
    metrics["loss_history"] = history;
    if (first > 1) metrics["loss_history"].insert(metrics["loss_history"].begin(), json{{"step", 1}, {"loss", 2.0}});
    write_file_atomic(job.run_dir + "/metrics.json", metrics.dump());
    TrainingSummary s;
    s.completed = true;
    s.adapter_dir = job.run_dir + "/lora_adapter";
    s.trainable_parameters = 1234;
    return s;
  }

  EvaluationOutcome evaluate(const EvaluationRequest& r) {
    eval_requests.push_back(r);
    const double em = r.adapter_dir.empty() ? 0.0 : 0.75;
    r.on_progress(1, 2);
    r.on_progress(2, 2);
    write_file_atomic(r.output_dir + "/predictions.jsonl", "{\"index\": 0}\n{\"index\": 1}\n");
    json m;
    m["num_examples"] = 2;
    m["metrics"]["exact_match"] = {{"value", em}, {"implementation", "evaluate exact_match"}};
    m["metrics"]["bleu"] = {{"value", 12.5}, {"implementation", "sacrebleu 2.6.0"}};
    m["metrics"]["meteor"] = {{"value", 0.4}, {"implementation", "nltk 3.10.4"}};
    m["metrics"]["rougeL"] = {{"value", 0.6}, {"implementation", "rouge_score 0.1.2"}};
    write_file_atomic(r.output_dir + "/generation_metrics.json", m.dump());
    EvaluationOutcome o;
    o.metrics = m;
    o.examples = 2;
    return o;
  }
};

struct Experiment {
  TempDir dir;
  std::string config_path;
  explicit Experiment(const std::string& extra = "", const std::string& training = "") {
    create_directories(dir.file("data"));
    write_file_atomic(dir.file("data/train.csv"), "url,instruction,response\nimg.png,what?,a red square\n");
    write_file_atomic(dir.file("data/val.csv"), "url,query,annotation\nimg.png,what?,a red square\n");
    write(extra, training);
  }
  void write(const std::string& extra, const std::string& training = "") {
    config_path = dir.file("exp.yaml");
    write_file_atomic(config_path, R"(experiment_name: unit
output_dir: )" + dir.file("out") + R"(
data:
  train_csv: data/train.csv
  val_csv: data/val.csv
models:
  - name: qwen2
    hf_model_id: )" + fixture("session/qwen2_vl_tiny") + R"(
    model_type: qwen2_vl
  - name: qwen25
    hf_model_id: )" + fixture("model/qwen2_5_vl_window_untied") + R"(
    model_type: qwen_vl
    min_pixels: 3136
    max_pixels: 6272
lora_variants:
  - name: r4
    r: 4
    alpha: 8
  - name: r8
    r: 8
    alpha: 16
    target_modules: [q_proj, k_proj]
training:
  learning_rate: 1e-4
  generation_max_new_tokens: 8
)" + training + extra);
  }
  std::string out(const std::string& rel = "") const { return dir.file("out") + (rel.empty() ? "" : "/" + rel); }
  PipelineOptions options() const {
    PipelineOptions o;
    o.config_path = config_path;
    return o;
  }
};


}  // namespace

TEST_CASE("a grid of 2 models x 2 variants plus baselines: every run folder, file and summary field") {
  Experiment e("evaluation:\n  enabled: true\n  baseline: true\n");
  FakeBackend fake;
  std::vector<std::string> logs;
  std::vector<PipelineProgress> progress;
  PipelineOptions o = e.options();
  o.on_log = [&](const std::string& run, const std::string& line) { logs.push_back(run + "|" + line); };
  o.on_progress = [&](const PipelineProgress& p) {
    progress.push_back(p);
    return true;
  };
  PipelineResult result = run_pipeline(o, fake.backend());
  CHECK(result.total == 6);
  CHECK(result.completed == 6);
  CHECK(result.failed == 0);
  CHECK(result.skipped == 0);
  CHECK_FALSE(result.cancelled);
  REQUIRE(fake.train_jobs.size() == 4);
  REQUIRE(fake.eval_requests.size() == 6);

  // What the trainer was asked.
  const TrainingJob& first = fake.train_jobs[0];
  CHECK(first.run_dir == e.out("qwen2__r4"));
  CHECK(first.model == fixture("session/qwen2_vl_tiny"));
  CHECK(first.image.min_pixels.value() == 224 * 224);  // the seed's fixed 224x224 mode
  CHECK(first.image.max_pixels.value() == 224 * 224);
  CHECK((first.load.dtype == torch::kFloat));  // auto on the CPU
  CHECK(first.load.device.is_cpu());
  CHECK(first.data.train_csv == e.dir.file("data/train.csv"));
  CHECK(first.data_base_dir == e.dir.file("data"));
  CHECK(first.lora.r == 4);
  CHECK(first.training.learning_rate == doctest::Approx(1e-4));
  CHECK(first.training.resume_from_checkpoint.empty());
  CHECK(fake.train_jobs[1].lora.target_modules.value() == std::vector<std::string>{"q_proj", "k_proj"});
  CHECK(fake.train_jobs[2].image.min_pixels.value() == 3136);  // explicit limits win
  CHECK(fake.train_jobs[2].image.max_pixels.value() == 6272);
  // What the evaluation was asked: the baseline without an adapter, then each run with its own.
  CHECK(fake.eval_requests[0].run == "qwen2__baseline");
  CHECK(fake.eval_requests[0].adapter_dir.empty());
  CHECK(fake.eval_requests[0].output_dir == e.out("qwen2__baseline"));
  CHECK(fake.eval_requests[1].adapter_dir == e.out("qwen2__r4/lora_adapter"));
  CHECK(fake.eval_requests[1].csv == e.dir.file("data/val.csv"));
  CHECK(fake.eval_requests[1].base_dir == e.dir.file("data"));
  CHECK(fake.eval_requests[1].generation.max_new_tokens.value() == 8);
  CHECK(fake.eval_requests[1].generation.num_beams.value() == 1);

  // Files of a trained run.
  for (const std::string run : {"qwen2__r4", "qwen2__r8", "qwen25__r4", "qwen25__r8"}) {
    CAPTURE(run);
    for (const std::string f : {"metrics.json", "predictions.jsonl", "generation_metrics.json", "run_config.json",
                                "run_state.json", "run.log", "lora_adapter/adapter_config.json"}) {
      CHECK_MESSAGE(is_regular_file(e.out(run + "/" + f)), f);
    }
    CHECK_FALSE(path_exists(e.out(run + "/error.json")));
    const json state = load_json(e.out(run + "/run_state.json"));
    CHECK(state["status"] == "completed");
    CHECK(state["training"]["status"] == "completed");
    CHECK(state["evaluation"]["val"]["status"] == "completed");
    CHECK(state["evaluation"]["val"]["examples"] == 2);
    const json settings = load_json(e.out(run + "/run_config.json"));
    CHECK(settings["kind"] == "lora");
    CHECK(settings["training"]["learning_rate"] == 1e-4);
    const std::string log = read_file(e.out(run + "/run.log"));
    CHECK(log.find("train step 4/4") != std::string::npos);
    CHECK(log.find("step 2 done") != std::string::npos);  // the trainer's own log lines
    CHECK(log.find("val 2/2") != std::string::npos);
    CHECK(log.find("run completed") != std::string::npos);
  }
  CHECK(is_regular_file(e.out("qwen2__baseline/generation_metrics.json")));
  CHECK_FALSE(path_exists(e.out("qwen2__baseline/metrics.json")));
  CHECK(load_json(e.out("qwen2__baseline/run_config.json"))["kind"] == "baseline");

  // The summary.
  const json summary = load_json(e.out("ablation_summary.json"));
  CHECK(summary == result.summary);
  CHECK(summary["experiment_name"] == "unit");
  CHECK(summary["output_dir"] == e.out());
  CHECK(summary["counts"]["runs"] == 6);
  CHECK(summary["counts"]["completed"] == 6);
  CHECK(summary["counts"]["failed"] == 0);
  REQUIRE(summary["runs"].size() == 6);
  std::vector<std::string> names;
  for (const auto& r : summary["runs"]) names.push_back(r["name"]);
  CHECK(names == std::vector<std::string>{"qwen2__baseline", "qwen2__r4", "qwen2__r8", "qwen25__baseline",
                                          "qwen25__r4", "qwen25__r8"});
  const json& r8 = run_entry(summary, "qwen25__r8");
  CHECK(r8["model"] == "qwen25");
  CHECK(r8["variant"] == "r8");
  CHECK(r8["kind"] == "lora");
  CHECK(r8["status"] == "completed");
  CHECK(r8["this_invocation"] == "ran");
  CHECK(r8["lora"]["r"] == 8);
  CHECK(r8["lora"]["alpha"] == 16.0);
  CHECK(r8["training"]["steps"] == 4);
  CHECK(r8["training"]["first_loss"] == 2.0);
  CHECK(r8["training"]["final_loss"] == 0.5);
  CHECK(r8["training"]["runtime_seconds"] == 1.5);
  CHECK(r8["training"]["samples_per_second"] == 8.0);
  CHECK(r8["training"]["trainable_parameters"] == 1234);
  CHECK(r8["evaluation"]["val"]["examples"] == 2);
  CHECK(r8["evaluation"]["val"]["metrics"]["exact_match"] == 0.75);
  CHECK(r8["evaluation"]["val"]["metrics"]["bleu"] == 12.5);
  CHECK(r8["error"].is_null());
  CHECK(r8["paths"]["lora_adapter"] == e.out("qwen25__r8/lora_adapter"));
  CHECK(r8["paths"]["final"] == e.out("qwen25__r8/final"));
  CHECK(r8["paths"]["predictions"] == e.out("qwen25__r8/predictions.jsonl"));
  CHECK(r8["paths"]["log"] == e.out("qwen25__r8/run.log"));
  const json& base = run_entry(summary, "qwen2__baseline");
  CHECK(base["kind"] == "baseline");
  CHECK(base["variant"].is_null());
  CHECK(base["training"].is_null());
  CHECK(base["evaluation"]["val"]["metrics"]["exact_match"] == 0.0);

  // The Markdown and text tables.
  const std::string md = read_file(e.out("ablation_summary.md"));
  CHECK(md.find("# unit") == 0);
  CHECK(md.find("| run | status | steps | loss first -> final | EM | BLEU-4 | METEOR | ROUGE-L | examples |") != std::string::npos);
  CHECK(md.find("| qwen25__r8 | completed | 4 | 2.0000 -> 0.5000 | 0.7500 | 12.50 | 0.4000 | 0.6000 | 2 |") != std::string::npos);
  CHECK(md.find("| qwen2__baseline | completed | - | - | 0.0000 | 12.50 | 0.4000 | 0.6000 | 2 |") != std::string::npos);
  CHECK(result.table.find("qwen25__r8        completed  4      2.0000 -> 0.5000     0.7500  12.50") != std::string::npos);
  CHECK(result.table.find("summary: " + e.out("ablation_summary.json")) != std::string::npos);

  // Callbacks: every training step and evaluated example, in order, with run indices.
  std::size_t train_updates = 0;
  for (const auto& p : progress) train_updates += p.stage == "train";
  CHECK(train_updates == 16);
  CHECK(progress.front().run == "qwen2__baseline");
  CHECK(progress.front().stage == "evaluate");
  CHECK(progress.front().num_runs == 6);
  CHECK(progress[2].stage == "train");
  CHECK(progress[2].loss.value() == 2.0);
  CHECK(progress.back().run_index == 5);
  bool saw_trainer_line = false;
  for (const auto& l : logs) saw_trainer_line |= l == "qwen2__r8|step 3 done";
  CHECK(saw_trainer_line);
}

TEST_CASE("a second invocation skips finished runs; an interrupted run resumes from its checkpoint") {
  Experiment e;
  FakeBackend fake;
  fake.stop_at_step["qwen2__r8"] = 2;  // the trainer stops after saving checkpoint-2
  PipelineResult first = run_pipeline(e.options(), fake.backend());
  CHECK(first.cancelled);
  CHECK(first.completed == 1);
  CHECK(fake.train_jobs.size() == 2);  // qwen2__r4, then qwen2__r8 stops; the rest never starts
  const json state = load_json(e.out("qwen2__r8/run_state.json"));
  CHECK(state["status"] == "interrupted");
  CHECK(state["training"]["status"] == "interrupted");
  CHECK(is_directory(e.out("qwen2__r8/checkpoints/checkpoint-2")));
  CHECK_FALSE(path_exists(e.out("qwen25__r4")));
  CHECK(run_entry(first.summary, "qwen2__r8")["status"] == "interrupted");
  CHECK(run_entry(first.summary, "qwen25__r4")["status"] == "pending");
  CHECK(first.summary["counts"]["interrupted"] == 1);
  CHECK(first.summary["counts"]["pending"] == 2);

  fake.train_jobs.clear();
  fake.eval_requests.clear();
  PipelineResult second = run_pipeline(e.options(), fake.backend());
  CHECK_FALSE(second.cancelled);
  CHECK(second.completed == 4);
  CHECK(second.skipped == 1);
  REQUIRE(fake.train_jobs.size() == 3);
  CHECK(fake.train_jobs[0].run_dir == e.out("qwen2__r8"));
  CHECK(fake.train_jobs[0].training.resume_from_checkpoint == "latest");
  CHECK(fake.train_jobs[1].training.resume_from_checkpoint.empty());
  CHECK(fake.eval_requests.size() == 3);
  CHECK(run_entry(second.summary, "qwen2__r4")["this_invocation"] == "skipped");
  CHECK(run_entry(second.summary, "qwen2__r8")["this_invocation"] == "resumed");
  CHECK(run_entry(second.summary, "qwen2__r8")["training"]["final_loss"] == 0.5);
  const std::string log = read_file(e.out("qwen2__r8/run.log"));
  CHECK(log.find("resuming from the latest checkpoint") != std::string::npos);
  CHECK(log.find("train step 2/4") < log.find("resuming"));  // the first attempt's lines are kept

  fake.train_jobs.clear();
  fake.eval_requests.clear();
  PipelineResult third = run_pipeline(e.options(), fake.backend());
  CHECK(third.skipped == 4);
  CHECK(fake.train_jobs.empty());
  CHECK(fake.eval_requests.empty());
}

TEST_CASE("a failing run is recorded and the grid goes on; fixed, it runs on the next invocation") {
  Experiment e;
  FakeBackend fake;
  fake.fail_training_for = {"qwen2__r8"};
  PipelineResult result = run_pipeline(e.options(), fake.backend());
  CHECK(result.failed == 1);
  CHECK(result.completed == 3);
  const json error = load_json(e.out("qwen2__r8/error.json"));
  CHECK(error["run"] == "qwen2__r8");
  CHECK(error["stage"] == "train");
  CHECK(error["code"] == "corrupt data");
  CHECK(std::string(error["message"]).find("train.csv row 3") != std::string::npos);
  const json& entry = run_entry(result.summary, "qwen2__r8");
  CHECK(entry["status"] == "failed");
  CHECK(entry["error"]["message"] == error["message"]);
  CHECK(result.summary["counts"]["failed"] == 1);
  CHECK(read_file(e.out("ablation_summary.md")).find("| qwen2__r8 | failed |") != std::string::npos);
  CHECK(read_file(e.out("qwen2__r8/run.log")).find("FAILED (train)") != std::string::npos);

  fake.fail_training_for.clear();
  fake.train_jobs.clear();
  PipelineResult again = run_pipeline(e.options(), fake.backend());
  CHECK(again.failed == 0);
  CHECK(fake.train_jobs.size() == 1);
  CHECK_FALSE(path_exists(e.out("qwen2__r8/error.json")));
  CHECK(run_entry(again.summary, "qwen2__r8")["status"] == "completed");
}

TEST_CASE("a model that cannot be found fails its runs only") {
  Experiment e;
  std::string text = read_file(e.config_path);
  text.replace(text.find(fixture("model/qwen2_5_vl_window_untied")), fixture("model/qwen2_5_vl_window_untied").size(),
               "NoSuchOrg/NoSuchModel");
  write_file_atomic(e.config_path, text);
  FakeBackend fake;
  PipelineResult result = run_pipeline(e.options(), fake.backend());
  CHECK(result.failed == 2);
  CHECK(result.completed == 2);
  const json error = load_json(e.out("qwen25__r4/error.json"));
  CHECK(error["stage"] == "setup");
  CHECK(error["code"] == "not found");
  CHECK(std::string(error["message"]).find("NoSuchOrg/NoSuchModel") != std::string::npos);
}

TEST_CASE("changed training settings are refused for a finished run; changed generation settings re-evaluate") {
  Experiment e;
  FakeBackend fake;
  PipelineOptions o = e.options();
  o.only_runs = {"qwen2__r4"};
  run_pipeline(o, fake.backend());
  CHECK(fake.train_jobs.size() == 1);

  e.write("", "  generation_num_beams: 2\n");
  fake.train_jobs.clear();
  fake.eval_requests.clear();
  PipelineResult reeval = run_pipeline(o, fake.backend());
  CHECK(reeval.failed == 0);
  CHECK(fake.train_jobs.empty());
  REQUIRE(fake.eval_requests.size() == 1);
  CHECK(fake.eval_requests[0].generation.num_beams.value() == 2);
  CHECK(read_file(e.out("qwen2__r4/run.log")).find("settings changed (generation.num_beams)") != std::string::npos);

  std::string text = read_file(e.config_path);
  text.replace(text.find("learning_rate: 1e-4"), 19, "learning_rate: 2e-4");
  write_file_atomic(e.config_path, text);
  PipelineResult changed = run_pipeline(o, fake.backend());
  CHECK(changed.failed == 1);
  const json error = load_json(e.out("qwen2__r4/error.json"));
  CHECK(std::string(error["message"]).find("training.learning_rate was 0.0001, now 0.0002") != std::string::npos);
  CHECK(std::string(error["message"]).find("delete the folder") != std::string::npos);
}

TEST_CASE("--only selects runs by run, model or variant name; an unknown name lists the runs") {
  Experiment e("evaluation:\n  baseline: true\n");
  FakeBackend fake;
  PipelineOptions o = e.options();
  o.only_runs = {"r8", "qwen2__baseline"};
  PipelineResult result = run_pipeline(o, fake.backend());
  CHECK(result.total == 3);
  REQUIRE(fake.train_jobs.size() == 2);
  CHECK(fake.train_jobs[0].run_dir == e.out("qwen2__r8"));
  CHECK(fake.train_jobs[1].run_dir == e.out("qwen25__r8"));
  CHECK(run_entry(result.summary, "qwen2__r4")["status"] == "pending");
  CHECK(run_entry(result.summary, "qwen2__r4")["this_invocation"] == "not_run");
  CHECK(result.summary["runs"].size() == 6);  // the summary always lists the whole grid

  o.only_runs = {"qwen2__r16"};
  expect_error([&] { run_pipeline(o, fake.backend()); }, ErrorCode::invalid_argument,
               {"\"qwen2__r16\" matches no run", "runs are: qwen2__baseline, qwen2__r4, qwen2__r8"});
}

TEST_CASE("train only (evaluate = false), then evaluation alone; an output_dir override") {
  Experiment e;
  FakeBackend fake;
  PipelineOptions o = e.options();
  o.evaluate = false;
  o.output_dir = e.dir.file("elsewhere");
  run_pipeline(o, fake.backend());
  CHECK(fake.train_jobs.size() == 4);
  CHECK(fake.eval_requests.empty());
  CHECK(is_regular_file(e.dir.file("elsewhere/qwen2__r4/metrics.json")));
  CHECK_FALSE(path_exists(e.dir.file("elsewhere/qwen2__r4/predictions.jsonl")));
  CHECK_FALSE(path_exists(e.out()));
  o.evaluate = true;
  fake.train_jobs.clear();
  PipelineResult result = run_pipeline(o, fake.backend());
  CHECK(fake.train_jobs.empty());
  CHECK(fake.eval_requests.size() == 4);
  CHECK(result.completed == 4);
  CHECK(result.skipped == 0);
}

TEST_CASE("validate_only checks models and files and writes nothing") {
  Experiment e;
  FakeBackend fake;
  PipelineOptions o = e.options();
  o.validate_only = true;
  PipelineResult result = run_pipeline(o, fake.backend());
  CHECK(result.summary["valid"] == true);
  CHECK(result.summary["runs"].size() == 4);
  CHECK(result.summary["models"][0]["model_type"] == "qwen2_vl");
  CHECK(result.summary["models"][1]["model_type"] == "qwen2_5_vl");
  CHECK(result.summary["models"][0]["dtype"] == "float32");
  CHECK(result.table.find("is valid: 4 runs") != std::string::npos);
  CHECK(fake.train_jobs.empty());
  CHECK_FALSE(path_exists(e.out()));

  {  // A system folder as the output folder is found by validate_only too, from the config or the options.
    PipelineOptions root = o;
    root.output_dir = "/";
    expect_error([&] { run_pipeline(root, fake.backend()); }, ErrorCode::invalid_argument,
                 {"the output folder \"/\" is a system or home folder"});
    std::string text = read_file(e.config_path);
    const std::string saved = text;
    const auto at = text.find("output_dir: ");
    REQUIRE(at != std::string::npos);
    text.replace(at, text.find('\n', at) - at, "output_dir: /etc");
    write_file_atomic(e.config_path, text);
    PipelineOptions from_config = o;
    from_config.output_dir.clear();
    expect_error([&] { run_pipeline(from_config, fake.backend()); }, ErrorCode::invalid_argument,
                 {": output_dir \"/etc\" is a system or home folder"});
    write_file_atomic(e.config_path, saved);
  }

  std::string text = read_file(e.config_path);
  text.replace(text.find("model_type: qwen2_vl"), 20, "model_type: llava");
  text.replace(text.find(fixture("model/qwen2_5_vl_window_untied")), fixture("model/qwen2_5_vl_window_untied").size(),
               "NoSuchOrg/NoSuchModel");
  write_file_atomic(e.config_path, text);
  expect_error([&] { run_pipeline(o, fake.backend()); }, ErrorCode::not_found,
               {"2 models cannot be used", "models[0] (qwen2): model \"qwen2\": model_type is \"llava\" but",
                "says \"qwen2_vl\"", "models[1] (qwen25):", "NoSuchOrg/NoSuchModel"});
  CHECK_FALSE(path_exists(e.out()));

  write_file_atomic(e.config_path, "experiment_name: x\n");
  expect_error([&] { run_pipeline(o, fake.backend()); }, ErrorCode::invalid_argument, {"output_dir: is required"});
}

TEST_CASE("auto dtype, durations, progress lines and the display") {
  CHECK(resolve_torch_dtype("auto", "float16", false) == "float32");
  CHECK(resolve_torch_dtype("auto", "bfloat16", true) == "bfloat16");
  CHECK(resolve_torch_dtype("auto", "", true) == "float32");
  CHECK(resolve_torch_dtype("float16", "float32", false) == "float16");
  CHECK(format_duration(7) == "0:07");
  CHECK(format_duration(723.4) == "12:03");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(-1) == "?");
  CHECK(format_progress_line("train a", 7, 20, 4.0, 20, "loss 1.2") ==
        "train a [#######.............]  35% 7/20 1.75 it/s ETA 0:07 loss 1.2");
  CHECK(format_progress_line("train a", 2, 4, 8.0, 0, "") == "train a  50% 2/4 4.00 s/it ETA 0:08");
  CHECK(format_progress_line("eval", 4, 4, 2.0, 0, "") == "eval 100% 4/4 2.00 it/s in 0:02");
  CHECK(format_progress_line("eval", 0, 4, 0.0, 4, "") == "eval [....]   0% 0/4");

  TempDir dir;
  std::FILE* f = std::fopen(dir.file("progress.txt").c_str(), "w+");
  REQUIRE(f != nullptr);
  {
    ProgressDisplay lines(f, ProgressDisplay::Mode::lines, 3600.0);
    lines.begin("train r", 3);
    lines.update(1, "loss 2");
    lines.update(2, "loss 1");  // within the interval: not printed
    lines.log("a message");
    lines.update(3, "loss 0.5");
    lines.end();
  }
  std::fclose(f);
  const std::string text = read_file(dir.file("progress.txt"));
  CHECK(text.find("train r  33% 1/3") == 0);
  CHECK(text.find("2/3") == std::string::npos);
  CHECK(text.find("\na message\ntrain r 100% 3/3") != std::string::npos);
  CHECK(text.find("loss 0.5\n") != std::string::npos);
  CHECK(ProgressDisplay::detect_mode(nullptr) == ProgressDisplay::Mode::off);
}

TEST_CASE("the summary table tolerates foreign JSON") {
  CHECK(format_summary_table(json::parse(R"({"runs": [1, {"name": "x"}]})"), true).find("| x |  | - |") != std::string::npos);
  CHECK(format_summary_table(json::parse("{}"), false).find("run  status") == 0);
}
