// Evaluation on a CSV with the tiny Qwen2-VL checkpoint (tests/fixtures/session/qwen2_vl_tiny): its answers are
// gibberish but deterministic, so the tests check the output files' schemas and counts, that predictions equal
// the session's own answers to the same conversations, and that every metric equals core/metrics on the same
// strings.
#include "pipeline/evaluate.h"

#include <atomic>
#include <fstream>
#include <sstream>

#include "base/fs.h"
#include "pipeline/csv.h"
#include "session/session.h"
#include "test_util.h"
#include "text/tokenizer.h"

using namespace vlm;
using vlm::test::expect_error;
using vlm::test::fixture;
using vlm::test::read_bytes;
using vlm::test::TempDir;

namespace {

// transformers' greedy answer of the tiny model to wide.png + "Describe this image ." (tests/fixtures/session).
const char* kWideAnswer = "assistant assistant assistant assistant assistant w101 w101 w101";

Session& tiny_session() {
  static std::unique_ptr<Session> session = [] {
    SessionOptions o;
    o.model = fixture("session/qwen2_vl_tiny");
    return Session::open(o);
  }();
  return *session;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_bytes(path));
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A data folder with the fixture images copied next to the CSV (relative paths) and one absolute path.
struct DataDir {
  TempDir dir;
  DataDir() {
    create_directories(dir.file("images"));
    for (const char* name : {"wide.png", "tall.png", "square.png"})
      write_file_atomic(dir.file(std::string("images/") + name), read_bytes(fixture(std::string("session/") + name)));
  }
  std::string csv(const std::string& name, const std::string& text) {
    write_file_atomic(dir.file(name), text);
    return dir.file(name);
  }
};

std::string standard_csv() {
  return "url,query,annotation\n"
         "images/wide.png,Describe this image .,\"" + std::string(kWideAnswer) + "\"\n"
         "images/tall.png,What is in the room ?,a cat on a sofa\n"
         "images/square.png,\"how many cats and dog ?\",two cats\n" +
         fixture("session/wide.png") + ",What is in the room ?,w101 w101\n"
         "images/square.png,Describe this image .,assistant\n";
}

EvaluationJob base_job(const std::string& csv, const std::string& out) {
  EvaluationJob job;
  job.csv = csv;
  job.output_dir = out;
  job.generation.max_new_tokens = 8;
  job.generation.do_sample = false;
  return job;
}

Conversation conversation(const std::string& image, const std::string& text, const std::string& system = "") {
  Conversation c;
  if (!system.empty()) c.messages.push_back({{"role", "system"}, {"content", system}});
  c.images.push_back(load_image(image));
  c.messages.push_back({{"role", "user"}, {"content", {{{"type", "image"}}, {{"type", "text"}, {"text", text}}}}});
  return c;
}

}  // namespace

TEST_CASE("evaluate: predictions.jsonl and generation_metrics.json for every row, batched") {
  DataDir data;
  const std::string csv = data.csv("val.csv", standard_csv());
  EvaluationJob job = base_job(csv, data.dir.file("out"));
  job.batch_size = 2;
  std::vector<std::pair<std::int64_t, std::int64_t>> progress;
  job.on_progress = [&](std::int64_t done, std::int64_t total) {
    progress.emplace_back(done, total);
    return true;
  };
  std::vector<std::string> log;
  job.on_log = [&](const std::string& line) { log.push_back(line); };
  EvaluationSummary summary = run_evaluation(tiny_session(), job);

  CHECK(summary.examples == 5);
  CHECK(summary.predictions_path == data.dir.file("out/predictions.jsonl"));
  CHECK(summary.metrics_path == data.dir.file("out/generation_metrics.json"));
  CHECK(progress == std::vector<std::pair<std::int64_t, std::int64_t>>{{2, 5}, {4, 5}, {5, 5}});
  CHECK_FALSE(log.empty());

  auto lines = read_jsonl(summary.predictions_path);
  REQUIRE(lines.size() == 5);
  CsvTable table = read_csv(csv);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    CAPTURE(i);
    std::vector<std::string> keys;
    for (auto it = l.begin(); it != l.end(); ++it) keys.push_back(it.key());
    CHECK(keys == std::vector<std::string>{"csv_line", "finish_reason", "image", "index", "prediction", "query",
                                           "reference", "scores"});  // nlohmann::json sorts keys
    CHECK(l["index"] == i);
    CHECK(l["csv_line"] == table.row_lines[i]);
    CHECK(l["image"] == table.rows[i][0]);
    CHECK(l["query"] == table.rows[i][1]);
    CHECK(l["reference"] == table.rows[i][2]);
    for (const char* k : {"exact_match", "exact_match_normalized", "sentence_bleu", "rougeL", "rougeLsum", "meteor",
                          "prediction_words", "empty_prediction", "prediction_tokens", "truncated"})
      CHECK_MESSAGE(l["scores"].contains(k), k);
  }
  // Row 0 is the oracle case: transformers' greedy answer, which is also its reference.
  CHECK(lines[0]["prediction"] == kWideAnswer);
  CHECK(lines[0]["finish_reason"] == "length");
  CHECK(lines[0]["scores"]["exact_match"] == 1.0);
  CHECK(lines[0]["scores"]["prediction_tokens"] == 8);
  CHECK(lines[0]["scores"]["truncated"] == true);

  // Each prediction equals the session's answer to the same conversation alone.
  GenerationOptions g = job.generation;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string image = table.rows[i][0][0] == '/' ? table.rows[i][0] : data.dir.file(table.rows[i][0]);
    auto alone = tiny_session().generate({conversation(image, table.rows[i][1])}, g);
    CHECK(lines[i]["prediction"] == alone[0].text);
  }

  // Every metric equals core/metrics on the same strings.
  metrics::MetricsOptions mo;
  mo.max_new_tokens = 8;
  const Tokenizer& tok = tiny_session().tokenizer();
  mo.count_tokens = [&tok](std::string_view text) { return static_cast<std::int64_t>(tok.encode(text, false).size()); };
  metrics::MetricsScorer scorer(mo);
  std::vector<metrics::Example> examples;
  for (const auto& l : lines) {
    metrics::Example e;
    e.prediction = l["prediction"];
    e.references = {l["reference"].get<std::string>()};
    e.prediction_tokens = l["scores"]["prediction_tokens"];
    examples.push_back(e);
  }
  metrics::CorpusScores expected = scorer.score(examples);
  auto doc = nlohmann::json::parse(read_bytes(summary.metrics_path));
  CHECK(doc["num_examples"] == 5);
  REQUIRE(doc["metrics"].size() == expected.metrics.size());
  for (const auto& m : expected.metrics) {
    CAPTURE(m.name);
    CHECK(doc["metrics"][m.name]["value"].get<double>() == m.value);
    CHECK(doc["metrics"][m.name]["implementation"] == m.implementation);
  }
  CHECK(doc["metrics"]["exact_match"]["value"].get<double>() == doctest::Approx(0.2));
  CHECK(doc["metrics"]["bleu"]["implementation"].get<std::string>().find("sacrebleu") != std::string::npos);
  CHECK(doc["token_statistics"]["reference_tokens"]["mean"].get<double>() == expected.tokens.reference_tokens.mean);
  CHECK(doc["token_statistics"]["reference_tokens"]["max"].get<std::int64_t>() > 0);
  CHECK(doc["token_statistics"]["max_new_tokens"] == 8);
  for (std::size_t i = 0; i < lines.size(); ++i)
    CHECK(lines[i]["scores"] == metrics::example_scores_json(expected.examples[i], true));
  CHECK(doc["bleu_details"]["sys_len"] == expected.bleu.stats.sys_len);
  const auto& ev = doc["evaluation"];
  CHECK(ev["csv"] == csv);
  CHECK(ev["examples"] == 5);
  CHECK(ev["batch_size"] == 2);
  CHECK(ev["model_folder"] == tiny_session().folder());
  CHECK(ev["generation"]["max_new_tokens"] == 8);
  CHECK(ev["adapters"].empty());
  CHECK(summary.metrics == nlohmann::ordered_json::parse(read_bytes(summary.metrics_path)));
}

TEST_CASE("evaluate: prompt template, system message, max_samples and the training columns") {
  DataDir data;
  const std::string csv = data.csv("train_style.csv",
                                   "instruction,response,url\n"
                                   "cats,two cats,images/square.png\n"
                                   "room,a sofa,images/tall.png\n"
                                   "never,reached,images/missing.png\n");
  EvaluationJob job = base_job(csv, data.dir.file("out"));
  job.prompt_template = "Question: {query} ({query})";
  job.system_message = "You are terse .";
  job.max_samples = 2;
  job.batch_size = 4;
  EvaluationSummary summary = run_evaluation(tiny_session(), job);
  CHECK(summary.examples == 2);
  auto lines = read_jsonl(summary.predictions_path);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["query"] == "room");
  CHECK(lines[1]["reference"] == "a sofa");
  auto alone = tiny_session().generate(
      {conversation(data.dir.file("images/tall.png"), "Question: room (room)", "You are terse .")}, job.generation);
  CHECK(lines[1]["prediction"] == alone[0].text);
  CHECK(summary.metrics["evaluation"]["max_samples"] == 2);
  CHECK(summary.metrics["evaluation"]["system_message"] == "You are terse .");
  CHECK(apply_prompt_template("{query}", "x") == "x");
  CHECK(apply_prompt_template("a {query} b {query}", "q") == "a q b q");
  CHECK(apply_prompt_template("{ query } {{query}}", "q") == "{ query } {q}");
}

TEST_CASE("evaluate: bad rows fail before anything is generated, naming the file, row and line") {
  DataDir data;
  const std::string out = data.dir.file("out");
  std::int64_t progress_calls = 0;
  auto job_for = [&](const std::string& name, const std::string& text) {
    EvaluationJob job = base_job(data.csv(name, text), out);
    job.on_progress = [&](std::int64_t, std::int64_t) {
      ++progress_calls;
      return true;
    };
    return job;
  };
  expect_error([&] { run_evaluation(tiny_session(), job_for("a.csv", "url,query,annotation\nimages/wide.png,q,r\nimages/nope.png,q,r\n")); },
               ErrorCode::not_found, {"a.csv data row 2 (line 3)", "nope.png"});
  write_file_atomic(data.dir.file("images/broken.png"), read_bytes(fixture("image/corrupt_idat.png")));
  expect_error([&] { run_evaluation(tiny_session(), job_for("b.csv", "url,query,annotation\nimages/wide.png,q,r\n\"images/broken.png\",q,r\n")); },
               ErrorCode::corrupt_data, {"b.csv data row 2 (line 3)", "broken.png"});
  expect_error([&] { run_evaluation(tiny_session(), job_for("c.csv", "url,query,annotation\n,q,r\n")); },
               ErrorCode::corrupt_data, {"c.csv data row 1 (line 2)", "'url' cell is empty"});
  expect_error([&] { run_evaluation(tiny_session(), job_for("d.csv", "url,query,annotation\nimages/wide.png,q,\"  \"\n")); },
               ErrorCode::corrupt_data, {"d.csv data row 1 (line 2)", "'annotation'", "reference answer"});
  expect_error([&] { run_evaluation(tiny_session(), job_for("e.csv", "url,question,annotation\nimages/wide.png,q,r\n")); },
               ErrorCode::invalid_argument, {"e.csv", "'query'", "'instruction'", "'question'"});
  expect_error([&] { run_evaluation(tiny_session(), job_for("f.csv", "image,query,annotation\nimages/wide.png,q,r\n")); },
               ErrorCode::invalid_argument, {"f.csv", "'url'", "'image'"});
  expect_error([&] { run_evaluation(tiny_session(), job_for("g.csv", "url,query,annotation\n")); },
               ErrorCode::invalid_argument, {"g.csv", "no data rows"});
  expect_error([&] { run_evaluation(tiny_session(), job_for("h.csv", "url,query,annotation\nimages/wide.png,q\n")); },
               ErrorCode::corrupt_data, {"h.csv:2"});
  CHECK(progress_calls == 0);
  CHECK_FALSE(path_exists(out + "/predictions.jsonl"));
  CHECK_FALSE(path_exists(out + "/generation_metrics.json"));

  EvaluationJob job = job_for("ok.csv", "url,query,annotation\nimages/wide.png,q,r\n");
  job.batch_size = 0;
  expect_error([&] { run_evaluation(tiny_session(), job); }, ErrorCode::invalid_argument, {"batch_size"});
  job.batch_size = 1;
  job.max_samples = 0;
  expect_error([&] { run_evaluation(tiny_session(), job); }, ErrorCode::invalid_argument, {"max_samples"});
  job.max_samples.reset();
  job.csv = data.dir.file("absent.csv");
  expect_error([&] { run_evaluation(tiny_session(), job); }, ErrorCode::not_found, {"absent.csv"});
}

TEST_CASE("evaluate: stopping through the progress callback or the cancel flag writes nothing") {
  DataDir data;
  const std::string csv = data.csv("val.csv", standard_csv());
  EvaluationJob job = base_job(csv, data.dir.file("out"));
  job.on_progress = [](std::int64_t done, std::int64_t) { return done < 2; };
  expect_error([&] { run_evaluation(tiny_session(), job); }, ErrorCode::cancelled, {"2 of 5"});
  CHECK_FALSE(path_exists(data.dir.file("out/predictions.jsonl")));
  std::atomic<bool> cancel{true};
  job.on_progress = nullptr;
  job.cancel = &cancel;
  expect_error([&] { run_evaluation(tiny_session(), job); }, ErrorCode::cancelled, {"cancelled"});
  CHECK_FALSE(path_exists(data.dir.file("out/generation_metrics.json")));
}

TEST_CASE("evaluate: answers and metrics equal transformers + PEFT + the reference metric packages") {
  // tests/fixtures/evaluate (tools/oracle/gen_evaluate_fixtures.py): the tiny model alone and with a PEFT adapter.
  const auto expected = nlohmann::json::parse(read_bytes(fixture("evaluate/expected.json")));
  for (const char* variant : {"base", "adapter_run"}) {
    const std::string name = variant;
    CAPTURE(name);
    const bool with_adapter = name == "adapter_run";
    SessionOptions o;
    o.model = fixture("session/qwen2_vl_tiny");
    auto session = Session::open(o);
    if (with_adapter) session->load_adapter(fixture("train/adapter_after_curve"));
    TempDir out;
    EvaluationJob job;
    job.csv = fixture("evaluate/val.csv");
    job.output_dir = out.path();
    job.prompt_template = expected["prompt_template"];
    job.system_message = expected["system_message"];
    job.generation.max_new_tokens = expected["max_new_tokens"].get<int>();
    job.batch_size = 3;
    if (with_adapter) job.adapters = {fixture("train/adapter_after_curve")};
    EvaluationSummary summary = run_evaluation(*session, job);
    auto lines = read_jsonl(summary.predictions_path);
    const auto& want = expected[variant];
    REQUIRE(lines.size() == want["predictions"].size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      CAPTURE(i);
      CHECK(lines[i]["prediction"] == want["predictions"][i]["text"]);
      CHECK(lines[i]["reference"] == expected["references"][i]);
    }
    const auto& m = summary.metrics["metrics"];
    for (const char* name : {"exact_match", "bleu", "sentence_bleu", "rougeL", "rougeLsum"}) {
      CAPTURE(name);
      CHECK(m[name]["value"].get<double>() == doctest::Approx(want["metrics"][name].get<double>()).epsilon(1e-12));
    }
    CHECK(summary.metrics["evaluation"]["adapters"].size() == (with_adapter ? 1u : 0u));
    MESSAGE(name << ": bleu " << m["bleu"]["value"].get<double>() << " (sacrebleu "
                    << want["metrics"]["bleu"].get<double>() << "), rougeL " << m["rougeL"]["value"].get<double>()
                    << " (rouge_score " << want["metrics"]["rougeL"].get<double>() << ")");
  }
}
