#include "pipeline/evaluate.h"

#include <chrono>
#include <filesystem>

#include "base/error.h"
#include "base/fs.h"
#include "pipeline/csv.h"
#include "session/session.h"
#include "text/tokenizer.h"

namespace vlm {
namespace {

// Decoded images are kept from the preflight up to this many bytes; beyond it they are decoded again per batch.
constexpr std::size_t kKeptImageBytes = 256u << 20;

std::string row_label(const std::string& csv, const EvaluationRow& row) {
  return csv + " data row " + std::to_string(row.index + 1) + " (line " + std::to_string(row.csv_line) + ")";
}

// The column `preferred`, else `fallback`; an error naming both and the file's columns when neither exists.
std::size_t pick_column(const CsvTable& table, const std::string& preferred, const std::string& fallback,
                        const std::string& what) {
  if (auto i = table.find_column(preferred)) return *i;
  if (!fallback.empty())
    if (auto i = table.find_column(fallback)) return *i;
  std::string have;
  for (const auto& h : table.header) have += (have.empty() ? "'" : ", '") + h + "'";
  fail(ErrorCode::invalid_argument, table.path + ": no " + what + " column: neither '" + preferred + "' nor '" +
                                        fallback + "'; the file has the columns " + have +
                                        " (rename the column or name it in the options)");
}

void log(const EvaluationJob& job, const std::string& line) {
  if (job.on_log) job.on_log(line);
}

bool cancelled(const EvaluationJob& job) { return job.cancel != nullptr && job.cancel->load(); }

std::string dump(const nlohmann::ordered_json& j, int indent = -1) {
  // Generated text may hold invalid UTF-8 (a byte-level token cut off); write U+FFFD rather than fail.
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::ordered_json generation_json(const GenerationOptions& g) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (g.max_new_tokens) j["max_new_tokens"] = *g.max_new_tokens;
  if (g.min_new_tokens) j["min_new_tokens"] = *g.min_new_tokens;
  if (g.do_sample) j["do_sample"] = *g.do_sample;
  if (g.temperature) j["temperature"] = *g.temperature;
  if (g.top_k) j["top_k"] = *g.top_k;
  if (g.top_p) j["top_p"] = *g.top_p;
  if (g.repetition_penalty) j["repetition_penalty"] = *g.repetition_penalty;
  if (g.num_beams) j["num_beams"] = *g.num_beams;
  if (g.length_penalty) j["length_penalty"] = *g.length_penalty;
  if (g.seed) j["seed"] = *g.seed;
  return j;
}

}  // namespace

std::string apply_prompt_template(const std::string& prompt_template, const std::string& query) {
  static const std::string kField = "{query}";
  std::string out;
  std::size_t at = 0;
  while (true) {
    std::size_t hit = prompt_template.find(kField, at);
    if (hit == std::string::npos) break;
    out.append(prompt_template, at, hit - at);
    out += query;
    at = hit + kField.size();
  }
  out.append(prompt_template, at, std::string::npos);
  return out;
}

std::vector<EvaluationRow> read_evaluation_rows(const EvaluationJob& job) {
  if (job.csv.empty()) fail(ErrorCode::invalid_argument, "no evaluation CSV given; name the file with the rows to evaluate");
  if (job.max_samples && *job.max_samples <= 0)
    fail(ErrorCode::invalid_argument,
         "max_samples must be positive, not " + std::to_string(*job.max_samples) + " (leave it unset for every row)");
  CsvTable table = read_csv(job.csv);
  const std::size_t query = pick_column(table, job.query_column, job.instruction_column, "query");
  const std::size_t reference = pick_column(table, job.annotation_column, job.response_column, "reference answer");
  std::optional<std::size_t> image;
  if (!job.image_column.empty()) image = table.column(job.image_column);

  std::size_t count = table.rows.size();
  if (job.max_samples) count = std::min<std::size_t>(count, static_cast<std::size_t>(*job.max_samples));
  if (count == 0) fail(ErrorCode::invalid_argument, job.csv + " has no data rows; nothing to evaluate");
  std::vector<EvaluationRow> rows;
  rows.reserve(count);
  for (std::size_t r = 0; r < count; ++r) {
    EvaluationRow row;
    row.index = static_cast<std::int64_t>(r);
    row.csv_line = table.row_lines[r];
    row.query = table.rows[r][query];
    row.reference = table.rows[r][reference];
    if (image) {
      row.image = table.rows[r][*image];
      if (row.image.empty())
        fail(ErrorCode::corrupt_data, row_label(job.csv, row) + ": the '" + table.header[*image] +
                                          "' cell is empty; give the image's path or URL, or remove the row");
    }
    if (row.reference.find_first_not_of(" \t\r\n") == std::string::npos)
      fail(ErrorCode::corrupt_data, row_label(job.csv, row) + ": the '" + table.header[reference] +
                                        "' cell (the reference answer) is empty; fill it in or remove the row");
    rows.push_back(std::move(row));
  }
  return rows;
}

bool model_type_matches(const std::string& model_type, const std::string& family, bool text_only) {
  if (model_type.empty() || model_type == "auto" || model_type == "auto-detect") return true;
  const std::string wanted = normalize_model_type(model_type);
  if (wanted.empty())
    fail(ErrorCode::invalid_argument, "model type '" + model_type +
                                          "' is not known; use one of llava, llava_next, llava_gemma, qwen_vl, "
                                          "qwen2_vl, qwen2_5_vl, blip2, causal_lm");
  if (wanted == "causal_lm") return text_only;
  if (wanted == "qwen_vl") return family == "qwen2_vl" || family == "qwen2_5_vl";
  return wanted == family;
}

EvaluationRun resolve_evaluation_run(const std::string& run, const std::string& config_path,
                                     const std::string& results_dir) {
  namespace fs = std::filesystem;
  if (run.empty()) fail(ErrorCode::invalid_argument, "empty run name");
  if (run.find('/') != std::string::npos || run == "." || run == "..")
    fail(ErrorCode::invalid_argument, "run name '" + run + "' must be a folder name (<model>__<variant>), not a path");
  EvaluationRun out;
  std::string folder = results_dir;
  if (!config_path.empty()) {
    out.config = load_experiment_config(config_path);
    if (folder.empty()) folder = out.config->output_dir;
  }
  if (folder.empty())
    fail(ErrorCode::invalid_argument, "a run name needs the folder of the runs: give the experiment config (its "
                                      "output_dir) or the results folder");
  out.run_dir = join_path(folder, run);
  if (!is_directory(out.run_dir)) {
    std::string runs;
    std::error_code ec;
    if (is_directory(folder))
      for (const auto& entry : fs::directory_iterator(folder, ec))
        if (entry.is_directory()) runs += (runs.empty() ? "" : ", ") + entry.path().filename().string();
    fail(ErrorCode::not_found, "no run '" + run + "' in " + folder +
                                   (runs.empty() ? std::string(" (the folder has no runs)") : "; the runs there: " + runs));
  }
  for (const char* name : {"metrics.json", "run.json"}) {
    const std::string path = join_path(out.run_dir, name);
    if (!is_regular_file(path)) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorCode::corrupt_data, path + " is not valid JSON: " + e.what());
    }
    if (!j.is_object()) fail(ErrorCode::corrupt_data, path + " must hold a JSON object");
    auto text = [&](const char* key) {
      auto it = j.find(key);
      return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (out.model.empty()) out.model = text("model");
    if (out.model_type.empty()) out.model_type = text("model_type");
    if (out.adapter_dir.empty()) out.adapter_dir = text("adapter_dir");
  }
  const std::string local_adapter = join_path(out.run_dir, "lora_adapter");
  if (is_directory(local_adapter)) out.adapter_dir = local_adapter;  // the folder may have moved since training
  if (!out.adapter_dir.empty() && !is_directory(out.adapter_dir))
    fail(ErrorCode::not_found, "the adapter folder " + out.adapter_dir + " of run '" + run +
                                   "' does not exist; was the training finished?");
  if (out.config) {
    for (const auto& entry : out.config->models)
      if (run.rfind(entry.name + "__", 0) == 0) out.model_entry = entry;
    if (out.model.empty() && out.model_entry) out.model = out.model_entry->hf_model_id;
    if (out.model_type.empty() && out.model_entry && out.model_entry->model_type != "auto-detect")
      out.model_type = out.model_entry->model_type;
  }
  return out;
}

EvaluationSummary run_evaluation(Session& session, const EvaluationJob& job) {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  if (job.batch_size < 1)
    fail(ErrorCode::invalid_argument, "batch_size must be at least 1, not " + std::to_string(job.batch_size));
  if (job.output_dir.empty()) fail(ErrorCode::invalid_argument, "no output folder given for the evaluation results");
  check_output_folder(job.output_dir, "the output folder (--output-dir)");

  std::vector<EvaluationRow> rows = read_evaluation_rows(job);
  const std::string base_dir =
      !job.base_dir.empty() ? job.base_dir : std::filesystem::path(job.csv).parent_path().string();
  if (job.prompt_template.find("{query}") == std::string::npos)
    log(job, "warning: the prompt template has no {query}; every row gets the same text: " + job.prompt_template);

  // Metrics first: a missing WordNet must fail before any generation.
  metrics::MetricsOptions metric_options = job.metrics;
  const Tokenizer& tokenizer = session.tokenizer();
  if (!metric_options.count_tokens)
    metric_options.count_tokens = [&tokenizer](std::string_view text) {
      return static_cast<std::int64_t>(tokenizer.encode(text, /*add_special_tokens=*/false).size());
    };
  if (metric_options.max_new_tokens == 0) {
    ResolvedGenerationOptions resolved = resolve_generation_options(
        job.generation, session.generation_defaults() ? &*session.generation_defaults() : nullptr,
        session.model().info());
    if (resolved.max_new_tokens) metric_options.max_new_tokens = *resolved.max_new_tokens;
  }
  metrics::MetricsScorer scorer(metric_options);

  // Preflight: every image loads (and every URL is in the cache) before the first token is generated.
  const std::int64_t total = static_cast<std::int64_t>(rows.size());
  log(job, "checking " + std::to_string(total) + " rows of " + job.csv);
  std::vector<std::optional<RgbImage>> kept(rows.size());
  std::size_t kept_bytes = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (cancelled(job)) fail(ErrorCode::cancelled, "evaluation cancelled while checking the images");
    if (rows[i].image.empty()) continue;
    RgbImage image = load_image_reference(rows[i].image, base_dir, job.fetch, row_label(job.csv, rows[i]));
    if (kept_bytes + image.pixels.size() <= kKeptImageBytes) {
      kept_bytes += image.pixels.size();
      kept[i] = std::move(image);
    }
  }

  // Generation, batch by batch.
  std::vector<GeneratedText> outputs(rows.size());
  const auto generation_started = Clock::now();
  const std::size_t batch = static_cast<std::size_t>(job.batch_size);
  const std::size_t num_batches = (rows.size() + batch - 1) / batch;
  log(job, "generating " + std::to_string(total) + " answers in " + std::to_string(num_batches) + " batch(es) of up to " +
               std::to_string(batch));
  for (std::size_t first = 0; first < rows.size(); first += batch) {
    if (cancelled(job)) fail(ErrorCode::cancelled, "evaluation cancelled");
    const std::size_t last = std::min(rows.size(), first + batch);
    std::vector<Conversation> conversations;
    for (std::size_t i = first; i < last; ++i) {
      Conversation c;
      if (!job.system_message.empty()) c.messages.push_back({{"role", "system"}, {"content", job.system_message}});
      nlohmann::ordered_json content = nlohmann::ordered_json::array();
      if (!rows[i].image.empty()) {
        c.images.push_back(kept[i] ? std::move(*kept[i])
                                   : load_image_reference(rows[i].image, base_dir, job.fetch, row_label(job.csv, rows[i])));
        kept[i].reset();
        content.push_back({{"type", "image"}});
      }
      content.push_back({{"type", "text"}, {"text", apply_prompt_template(job.prompt_template, rows[i].query)}});
      c.messages.push_back({{"role", "user"}, {"content", content}});
      conversations.push_back(std::move(c));
    }
    GenerationOptions options = job.generation;
    if (job.cancel != nullptr) options.cancel = job.cancel;
    std::vector<GeneratedText> generated;
    try {
      generated = session.generate(conversations, options);
    } catch (const Error& e) {
      fail(e.code(), "generating the answers of " + row_label(job.csv, rows[first]) +
                         (last - first > 1 ? " to data row " + std::to_string(rows[last - 1].index + 1) : "") + ": " +
                         e.what());
    }
    for (std::size_t i = first; i < last; ++i) {
      outputs[i] = std::move(generated[i - first]);
      if (outputs[i].finish_reason == FinishReason::cancelled) fail(ErrorCode::cancelled, "evaluation cancelled");
    }
    const std::int64_t done = static_cast<std::int64_t>(last);
    if (job.on_progress && !job.on_progress(done, total))
      fail(ErrorCode::cancelled, "evaluation stopped by the progress callback after " + std::to_string(done) + " of " +
                                     std::to_string(total) + " rows");
  }
  const double generation_seconds = std::chrono::duration<double>(Clock::now() - generation_started).count();

  // Metrics. The token count of a prediction leaves out the EOS token that ended it, so that "truncated" means
  // that max_new_tokens cut the answer off.
  std::vector<metrics::Example> examples(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    examples[i].prediction = outputs[i].text;
    examples[i].references = {rows[i].reference};
    std::int64_t n = static_cast<std::int64_t>(outputs[i].tokens.size());
    if (outputs[i].finish_reason == FinishReason::eos && n > 0) --n;
    examples[i].prediction_tokens = n;
  }
  metrics::CorpusScores scores = scorer.score(examples);
  const bool with_meteor = metric_options.meteor != metrics::MeteorMode::off;

  create_directories(job.output_dir);
  EvaluationSummary summary;
  summary.examples = total;
  summary.predictions_path = join_path(job.output_dir, "predictions.jsonl");
  summary.metrics_path = join_path(job.output_dir, "generation_metrics.json");

  AtomicFile predictions(summary.predictions_path);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    nlohmann::ordered_json line;
    line["index"] = rows[i].index;
    line["csv_line"] = rows[i].csv_line;
    line["image"] = rows[i].image;
    line["query"] = rows[i].query;
    line["prediction"] = outputs[i].text;
    line["reference"] = rows[i].reference;
    line["finish_reason"] = finish_reason_name(outputs[i].finish_reason);
    line["scores"] = nlohmann::ordered_json::parse(metrics::example_scores_json(scores.examples[i], with_meteor).dump());
    predictions.write(dump(line) + "\n");
  }

  nlohmann::json corpus = metrics::corpus_scores_json(scores);
  nlohmann::ordered_json document;
  for (const char* key : {"num_examples", "metrics", "bleu_details", "token_statistics"})
    document[key] = nlohmann::ordered_json::parse(corpus.at(key).dump());
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  nlohmann::ordered_json evaluation;
  evaluation["model"] = job.model_label.empty() ? session.folder() : job.model_label;
  evaluation["model_folder"] = session.folder();
  evaluation["adapters"] = job.adapters;
  evaluation["csv"] = job.csv;
  evaluation["examples"] = total;
  evaluation["batch_size"] = job.batch_size;
  evaluation["prompt_template"] = job.prompt_template;
  evaluation["system_message"] = job.system_message;
  evaluation["max_samples"] = job.max_samples ? nlohmann::ordered_json(*job.max_samples) : nlohmann::ordered_json(nullptr);
  evaluation["generation"] = generation_json(job.generation);
  evaluation["runtime_seconds"] = seconds;
  evaluation["generation_seconds"] = generation_seconds;
  evaluation["samples_per_second"] = generation_seconds > 0 ? total / generation_seconds : 0.0;
  document["evaluation"] = evaluation;

  // predictions.jsonl first: generation_metrics.json present means the evaluation finished.
  predictions.commit();
  write_file_atomic(summary.metrics_path, dump(document, 2) + "\n");
  summary.metrics = std::move(document);
  log(job, "wrote " + summary.predictions_path + " and " + summary.metrics_path);
  return summary;
}

}  // namespace vlm
