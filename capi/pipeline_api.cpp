// C API: the ablation pipeline (include/vlmrt.h, "The ablation pipeline").
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "capi_internal.h"
#include "pipeline/runner.h"

using namespace vlm::capi;

void vlm_pipeline_options_init(vlm_pipeline_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->evaluate = 1;
}

vlm_status vlm_pipeline_run(const vlm_pipeline_options* options, char** out_summary_json,
                            vlm_pipeline_counts* out_counts) {
  return guard([&] {
    check_struct_size(options, sizeof *options, "options");
    require(options->config_path, "options->config_path");
    if (options->num_only_runs > 0) require(options->only_runs, "options->only_runs");
    vlm::PipelineOptions o;
    o.config_path = options->config_path;
    if (options->output_dir != nullptr) o.output_dir = options->output_dir;
    for (std::size_t i = 0; i < options->num_only_runs; ++i) {
      require(options->only_runs[i], "options->only_runs[i]");
      o.only_runs.emplace_back(options->only_runs[i]);
    }
    o.validate_only = options->validate_only != 0;
    o.evaluate = options->evaluate != 0;
    o.display = options->show_progress ? vlm::ProgressDisplay::detect_mode(stderr) : vlm::ProgressDisplay::Mode::off;
    o.display_stream = stderr;
    if (options->on_progress != nullptr) {
      const auto callback = options->on_progress;
      void* user_data = options->user_data;
      o.on_progress = [callback, user_data](const vlm::PipelineProgress& p) {
        vlm_pipeline_progress c;
        c.run = p.run.c_str();
        c.stage = p.stage == "train" ? "train" : p.stage == "test" ? "test" : "evaluate";
        c.run_index = p.run_index;
        c.num_runs = p.num_runs;
        c.done = p.done;
        c.total = p.total;
        c.loss = p.loss.value_or(std::numeric_limits<double>::quiet_NaN());
        c.learning_rate = p.learning_rate.value_or(std::numeric_limits<double>::quiet_NaN());
        c.elapsed_seconds = p.elapsed_seconds;
        return callback(&c, user_data) != 0;
      };
    }
    if (options->on_log != nullptr) {
      const auto callback = options->on_log;
      void* user_data = options->user_data;
      o.on_log = [callback, user_data](const std::string& run, const std::string& line) {
        callback(run.c_str(), line.c_str(), user_data);
      };
    }
    vlm::PipelineResult result = vlm::run_pipeline(o);
    char* json = out_summary_json != nullptr ? copy_string(result.summary.dump(2)) : nullptr;
    if (out_summary_json != nullptr) *out_summary_json = json;
    if (out_counts != nullptr) {
      out_counts->runs = result.total;
      out_counts->completed = result.completed;
      out_counts->skipped = result.skipped;
      out_counts->failed = result.failed;
      out_counts->cancelled = result.cancelled ? 1 : 0;
    }
  });
}

vlm_status vlm_pipeline_summary_table(const char* summary_json, int markdown, char** out_table) {
  return guard([&] {
    require(summary_json, "summary_json");
    require(out_table, "out_table");
    nlohmann::ordered_json summary;
    try {
      summary = nlohmann::ordered_json::parse(summary_json);
    } catch (const nlohmann::json::exception& e) {
      vlm::fail(vlm::ErrorCode::corrupt_data, std::string("summary_json is not valid JSON: ") + e.what());
    }
    if (!summary.is_object() || !summary.contains("runs") || !summary["runs"].is_array()) {
      vlm::fail(vlm::ErrorCode::invalid_argument, "summary_json has no \"runs\" list (pass ablation_summary.json's content)");
    }
    *out_table = copy_string(vlm::format_summary_table(summary, markdown != 0));
  });
}
