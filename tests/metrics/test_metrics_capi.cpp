// The metrics through the public C API (vlm_metrics_*) and the vlm_score_predictions program.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics_test_util.h"
#include "vlmrt.h"

namespace {

struct CExamples {
  std::vector<nlohmann::json> rows;
  std::vector<std::vector<const char*>> refs;
  std::vector<std::string> storage_pred;
  std::vector<std::vector<std::string>> storage_refs;
  std::vector<vlm_metrics_example> examples;
};

CExamples load_conformance() {
  CExamples c;
  c.rows = vlm::test::read_jsonl(vlm::test::fixture("metrics/conformance.jsonl"));
  for (const auto& row : c.rows) {
    c.storage_pred.push_back(row["prediction"]);
    c.storage_refs.push_back(row["references"].get<std::vector<std::string>>());
  }
  c.refs.resize(c.rows.size());
  for (size_t i = 0; i < c.rows.size(); ++i) {
    for (const auto& r : c.storage_refs[i]) c.refs[i].push_back(r.c_str());
    vlm_metrics_example e;
    e.prediction = c.storage_pred[i].c_str();
    e.references = c.refs[i].data();
    e.num_references = c.refs[i].size();
    e.prediction_tokens = -1;
    e.reference_tokens = nullptr;
    c.examples.push_back(e);
  }
  return c;
}

int64_t count_bytes_div3(const char* /*text*/, size_t length, void* user) {
  ++*static_cast<int*>(user);
  return static_cast<int64_t>(length / 3);
}

std::string run(const std::string& command, int* exit_code) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace

TEST_CASE("C API: conformance corpus values equal the reference packages") {
  CExamples c = load_conformance();
  auto expected = vlm::test::read_json(vlm::test::fixture("metrics/conformance_corpus.json"));
  vlm_metrics_options options;
  vlm_metrics_options_init(&options);
  CHECK(options.struct_size == sizeof options);
  CHECK(options.meteor_alpha == 0.9);
  const std::string wn = vlm::test::wordnet_dir();
  options.wordnet_dir = wn.c_str();
  options.num_threads = 2;
  int calls = 0;
  options.count_tokens = count_bytes_div3;
  options.count_tokens_user_data = &calls;
  options.num_threads = 1;  // the counter above is not thread-safe
  vlm_metrics_result* result = nullptr;
  REQUIRE_MESSAGE(vlm_metrics_score(c.examples.data(), c.examples.size(), &options, &result) == VLM_OK,
                  vlm_last_error());
  CHECK(vlm_metrics_result_num_examples(result) == c.examples.size());
  CHECK(calls > static_cast<int>(c.examples.size()));  // predictions and references were counted
  for (const char* name : {"bleu", "meteor", "rougeL", "rougeLsum", "exact_match", "exact_match_normalized",
                           "sentence_bleu"}) {
    double v = -1;
    const char* impl = nullptr;
    REQUIRE(vlm_metrics_result_value(result, name, &v, &impl) == VLM_OK);
    CHECK_MESSAGE(std::fabs(v - expected[name].get<double>()) <= 1e-9, name);
    CHECK(impl != nullptr);
  }
  double v = 0;
  CHECK(vlm_metrics_result_value(result, "cider", &v, nullptr) == VLM_ERR_NOT_FOUND);
  CHECK(std::string(vlm_last_error()).find("bleu") != std::string::npos);  // lists what exists

  char* json = nullptr;
  REQUIRE(vlm_metrics_result_corpus_json(result, &json) == VLM_OK);
  auto doc = nlohmann::json::parse(json);
  vlm_string_free(json);
  CHECK(doc["metrics"]["bleu"]["implementation"].get<std::string>().find("sacrebleu 2.6.0") != std::string::npos);
  CHECK(doc["token_statistics"]["prediction_tokens"]["max"].is_number_integer());

  char* ex = nullptr;
  REQUIRE(vlm_metrics_result_example_json(result, 4, &ex) == VLM_OK);
  auto e = nlohmann::json::parse(ex);
  vlm_string_free(ex);
  CHECK(std::fabs(e["meteor"].get<double>() - c.rows[4]["meteor"].get<double>()) <= 1e-9);
  CHECK(vlm_metrics_result_example_json(result, c.examples.size(), &ex) == VLM_ERR_INVALID_ARGUMENT);
  vlm_metrics_result_free(result);
  vlm_metrics_result_free(nullptr);
}

TEST_CASE("C API: bad arguments give a status and a message, outputs untouched") {
  vlm_metrics_result* result = reinterpret_cast<vlm_metrics_result*>(0x1);
  const char* refs[] = {"a"};
  vlm_metrics_example e{"a", refs, 1, -1, nullptr};
  CHECK(vlm_metrics_score(&e, 1, nullptr, nullptr) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_metrics_score(nullptr, 1, nullptr, &result) == VLM_ERR_INVALID_ARGUMENT);
  vlm_metrics_example no_refs{"a", nullptr, 0, -1, nullptr};
  CHECK(vlm_metrics_score(&no_refs, 1, nullptr, &result) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(std::string(vlm_last_error()).find("examples[0]") != std::string::npos);
  vlm_metrics_options o;
  vlm_metrics_options_init(&o);
  o.struct_size = 8;
  CHECK(vlm_metrics_score(&e, 1, &o, &result) == VLM_ERR_INVALID_ARGUMENT);
  vlm_metrics_options_init(&o);
  o.meteor_mode = 7;
  CHECK(vlm_metrics_score(&e, 1, &o, &result) == VLM_ERR_INVALID_ARGUMENT);
  vlm_metrics_options_init(&o);
  o.wordnet_dir = "/nonexistent/wordnet";
  CHECK(vlm_metrics_score(&e, 1, &o, &result) == VLM_ERR_NOT_FOUND);
  CHECK(std::string(vlm_last_error()).find("wordnet-base") != std::string::npos);
  const char* bad_regex[] = {"("};
  vlm_metrics_options_init(&o);
  o.meteor_mode = VLM_METEOR_OFF;
  o.em_regexes_to_ignore = bad_regex;
  o.em_num_regexes_to_ignore = 1;
  CHECK(vlm_metrics_score(&e, 1, &o, &result) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(result == reinterpret_cast<vlm_metrics_result*>(0x1));
  // No per-example scores were kept.
  vlm_metrics_options_init(&o);
  o.meteor_mode = VLM_METEOR_OFF;
  o.per_example = 0;
  vlm_metrics_result* r = nullptr;
  REQUIRE(vlm_metrics_score(&e, 1, &o, &r) == VLM_OK);
  char* ex = nullptr;
  CHECK(vlm_metrics_result_example_json(r, 0, &ex) == VLM_ERR_INVALID_ARGUMENT);
  double value = 0;
  CHECK(vlm_metrics_result_value(r, "meteor", &value, nullptr) == VLM_ERR_NOT_FOUND);
  CHECK(vlm_metrics_result_value(r, "exact_match", &value, nullptr) == VLM_OK);
  CHECK(value == 1.0);
  vlm_metrics_result_free(r);
}

#ifdef VLM_SCORE_PREDICTIONS_PATH
TEST_CASE("vlm_score_predictions: JSONL and CSV, outputs, exit codes") {
  vlm::test::TempDir dir;
  const std::string cli = VLM_SCORE_PREDICTIONS_PATH;
  const std::string wn = " --wordnet " + vlm::test::wordnet_dir();
  vlm::test::write_bytes(dir.file("p.jsonl"),
                         "{\"prediction\": \"The cat sat on the mat.\", \"reference\": \"The cat is sitting on the mat.\", \"n\": 9}\n"
                         "{\"prediction\": \"A quick brown dog jumps over the lazy fox!\", \"references\": [\"A fast brown fox jumps over the lazy dog.\"], \"n\": 12}\n"
                         "\n"
                         "{\"prediction\": \"Hello world\", \"reference\": [\"Hello there world\", \"Hello there big world\"], \"n\": 2}\n");
  int rc = -1;
  std::string out = run(cli + " " + dir.file("p.jsonl") + wn + " --tokens-field n --max-new-tokens 12 --scored " +
                            dir.file("scored.jsonl") + " -o " + dir.file("m.json"),
                        &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  auto m = vlm::test::read_json(dir.file("m.json"));
  CHECK(m["metrics"]["bleu"]["value"].get<double>() == doctest::Approx(34.10431952042834).epsilon(1e-12));
  CHECK(m["num_examples"] == 3);
  CHECK(m["token_statistics"]["truncated_share"].get<double>() == doctest::Approx(1.0 / 3));
  auto scored = vlm::test::read_jsonl(dir.file("scored.jsonl"));
  REQUIRE(scored.size() == 3);
  CHECK(scored[0]["scores"]["sentence_bleu"].get<double>() == doctest::Approx(42.38365628278778).epsilon(1e-12));
  CHECK(scored[2]["n"] == 2);  // the input record is kept

  vlm::test::write_bytes(dir.file("p.csv"),
                         "id,prediction,reference,reference_2\n"
                         "1,The cat sat on the mat.,The cat is sitting on the mat.,\n"
                         "2,\"A quick brown dog jumps over the lazy fox!\",\"A fast brown fox jumps over the lazy dog.\",\n"
                         "3,Hello world,Hello there world,\"hi, \"\"there\"\"\"\n");
  out = run(cli + " " + dir.file("p.csv") + wn, &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  auto csv = nlohmann::json::parse(out);
  CHECK(csv["metrics"]["bleu"]["value"].get<double>() == doctest::Approx(34.10431952042834).epsilon(1e-12));

  out = run(cli + " --help", &rc);
  CHECK(rc == 0);
  CHECK(out.find("Exit codes") != std::string::npos);
  out = run(cli + " --no-such-option x", &rc);
  CHECK(rc == 2);
  out = run(cli + " " + dir.file("missing.jsonl"), &rc);
  CHECK(rc == 3);
  vlm::test::write_bytes(dir.file("bad.jsonl"), "{\"prediction\": \"a\"}\n");
  out = run(cli + " " + dir.file("bad.jsonl"), &rc);
  CHECK(rc == 3);
  CHECK(out.find("line 1") != std::string::npos);
  out = run(cli + " " + dir.file("p.jsonl") + " --wordnet /nonexistent/wordnet", &rc);
  CHECK(rc == 4);
  CHECK(out.find("wordnet-base") != std::string::npos);
  out = run(cli + " " + dir.file("p.jsonl") + " --meteor no-wordnet --wordnet /nonexistent/wordnet", &rc);
  CHECK(rc == 0);
  CHECK(out.find("meteor_no_wordnet") != std::string::npos);
}
#endif
