// vlm_score_predictions: scores a predictions file with vlmrt's evaluation metrics, through the public C API only.
//
// Input: JSON Lines (one object per line with a prediction and one or more references) or CSV (a header row naming
// the columns). Output: the corpus metrics JSON (what generation_metrics.json holds), each metric with the name of
// the reference implementation it equals; optionally the input records with per-example scores.
//
// Exit codes: 0 ok, 2 bad usage, 3 bad input, 4 runtime failure.
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "vlmrt.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitBadInput = 3;
constexpr int kExitFailure = 4;

struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Record {
  std::string prediction;
  std::vector<std::string> references;
  int64_t prediction_tokens = -1;
  nlohmann::json original;  // the JSONL object, or the CSV row as an object
};

std::string read_all(const std::string& path) {
  // Only regular files: opening a FIFO would wait for a writer.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw BadInput(path + " is not a regular file (a directory, FIFO or device); give the path of a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput("cannot open " + path + " for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> references_of(const nlohmann::json& value, const std::string& where) {
  std::vector<std::string> out;
  if (value.is_string()) {
    out.push_back(value.get<std::string>());
  } else if (value.is_array()) {
    for (const auto& v : value) {
      if (!v.is_string()) throw BadInput(where + ": every reference must be a string");
      out.push_back(v.get<std::string>());
    }
  } else {
    throw BadInput(where + ": the reference field must be a string or an array of strings");
  }
  if (out.empty()) throw BadInput(where + ": no reference (an empty array); give at least one");
  return out;
}

std::vector<Record> read_jsonl(const std::string& path, const std::string& prediction_field,
                               const std::string& reference_field, const std::string& tokens_field) {
  std::vector<Record> records;
  std::istringstream in(read_all(path));
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(line_no);
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw BadInput(where + ": not valid JSON (" + e.what() + ")");
    }
    if (!obj.is_object()) throw BadInput(where + ": expected a JSON object per line");
    Record r;
    auto p = obj.find(prediction_field);
    if (p == obj.end() || !p->is_string()) {
      throw BadInput(where + ": no string field \"" + prediction_field + "\" (choose it with --prediction-field)");
    }
    r.prediction = p->get<std::string>();
    std::string ref_key = reference_field;
    if (ref_key.empty()) ref_key = obj.contains("references") ? "references" : "reference";
    auto refs = obj.find(ref_key);
    if (refs == obj.end()) {
      throw BadInput(where + ": no field \"" + ref_key + "\" (choose it with --reference-field)");
    }
    r.references = references_of(*refs, where);
    if (!tokens_field.empty()) {
      auto t = obj.find(tokens_field);
      if (t != obj.end() && !t->is_null()) {
        if (!t->is_number_integer()) throw BadInput(where + ": \"" + tokens_field + "\" must be an integer");
        r.prediction_tokens = t->get<int64_t>();
      }
    }
    r.original = std::move(obj);
    records.push_back(std::move(r));
  }
  return records;
}

// RFC 4180: fields separated by commas, optionally double-quoted (with "" for a quote), rows by newlines.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  size_t line_no = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line_no;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
      rows.push_back(std::move(row));
      row.clear();
      ++line_no;
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (quoted) throw BadInput(path + ": a quoted field is not closed (from line " + std::to_string(line_no) + ")");
  if (field_started || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<Record> read_csv(const std::string& path, const std::string& prediction_field,
                             const std::string& reference_field, const std::string& tokens_field) {
  auto rows = parse_csv(read_all(path), path);
  if (rows.empty()) throw BadInput(path + ": empty CSV (a header row is required)");
  const auto header = rows[0];
  long pred_col = -1, tokens_col = -1;
  std::vector<size_t> ref_cols;
  for (size_t c = 0; c < header.size(); ++c) {
    const std::string& name = header[c];
    if (name == prediction_field) pred_col = static_cast<long>(c);
    if (!tokens_field.empty() && name == tokens_field) tokens_col = static_cast<long>(c);
    const bool is_ref = reference_field.empty() ? name.rfind("reference", 0) == 0 : name == reference_field;
    if (is_ref) ref_cols.push_back(c);
  }
  if (pred_col < 0) throw BadInput(path + ": no column named \"" + prediction_field + "\" in the header");
  if (ref_cols.empty()) {
    throw BadInput(path + ": no reference column (a header starting with \"reference\", or --reference-field)");
  }
  std::vector<Record> records;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (row.size() == 1 && row[0].empty()) continue;  // blank line
    const std::string where = path + " row " + std::to_string(i + 1);
    if (row.size() != header.size()) {
      throw BadInput(where + ": " + std::to_string(row.size()) + " fields, the header has " +
                     std::to_string(header.size()));
    }
    Record r;
    r.prediction = row[pred_col];
    // The first reference column always counts (an empty reference is a reference); further ones when filled.
    for (size_t k = 0; k < ref_cols.size(); ++k) {
      if (k == 0 || !row[ref_cols[k]].empty()) r.references.push_back(row[ref_cols[k]]);
    }
    if (tokens_col >= 0 && !row[tokens_col].empty()) {
      char* end = nullptr;
      long long v = std::strtoll(row[tokens_col].c_str(), &end, 10);
      if (*end != '\0') throw BadInput(where + ": \"" + tokens_field + "\" is not an integer");
      r.prediction_tokens = v;
    }
    r.original = nlohmann::json::object();
    for (size_t c = 0; c < header.size(); ++c) r.original[header[c]] = row[c];
    records.push_back(std::move(r));
  }
  return records;
}

void write_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long>(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << content;
    out.flush();
    if (!out) throw std::runtime_error("writing " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

int exit_code_for(vlm_status status) {
  switch (status) {
    case VLM_ERR_INVALID_ARGUMENT:
    case VLM_ERR_CORRUPT_DATA:
      return kExitBadInput;
    default:
      return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Scores a predictions file with vlmrt's evaluation metrics and prints the metrics JSON.\n\n"
      "Metrics (each equal to a named reference implementation, which the output names):\n"
      "  exact_match, exact_match_normalized  HF evaluate exact_match (plain / after ' '.join(text.split()))\n"
      "  bleu                                 sacrebleu 2.6.0 corpus_bleu (13a, exp smoothing, 0-100)\n"
      "  sentence_bleu                        sacrebleu 2.6.0 sentence_bleu, mean over examples\n"
      "  meteor                               nltk 3.10.4 meteor_score, HF evaluate settings, WordNet 3.0,\n"
      "                                       nltk word_tokenize tokens (Punkt sentence split), mean\n"
      "  rougeL, rougeLsum                    rouge_score 0.1.2 F-measure, mean (no bootstrap)\n"
      "  token_statistics                     words (str.split()), tokens (from --tokens-field), empty and\n"
      "                                       truncated shares\n"
      "With several references an example keeps its best score (BLEU merges them as sacrebleu does).\n\n"
      "Input: JSON Lines, one object per line with a prediction field and a reference field (a string or an\n"
      "array of strings; by default \"references\" if present, else \"reference\"); or CSV with a header row: the\n"
      "prediction column and every column whose name starts with \"reference\" (the first always counts, further\n"
      "ones when not empty).\n\n"
      "Exit codes: 0 ok, 2 bad usage, 3 bad input, 4 runtime failure (e.g. WordNet missing).",
      "vlm_score_predictions"};
  std::string input, format = "auto", output, scored, prediction_field = "prediction", reference_field, tokens_field;
  std::string meteor = "full", wordnet_dir;
  std::vector<std::string> em_regexes;
  bool em_ignore_case = false, em_ignore_punctuation = false, em_ignore_numbers = false, rouge_stemmer = false;
  bool meteor_preserve_line = false;
  int64_t max_new_tokens = 0;
  int threads = 0;
  app.add_option("input", input, "predictions file (.jsonl or .csv)")->required();
  app.add_option("--format", format, "input format: auto (from the extension), jsonl or csv")
      ->check(CLI::IsMember({"auto", "jsonl", "csv"}));
  app.add_option("-o,--output", output, "write the metrics JSON to this file (atomically) instead of stdout");
  app.add_option("--scored", scored,
                 "also write the input records with a \"scores\" object each, as JSON Lines (predictions.jsonl)");
  app.add_option("--prediction-field", prediction_field, "field/column of the prediction (default: prediction)");
  app.add_option("--reference-field", reference_field,
                 "field/column of the reference(s) (default: references or reference; CSV: reference*)");
  app.add_option("--tokens-field", tokens_field,
                 "field/column with the number of generated tokens of each prediction (for token statistics "
                 "and the truncated share)");
  app.add_option("--max-new-tokens", max_new_tokens,
                 "generation limit: predictions with that many tokens count as truncated (needs --tokens-field)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--em-regex", em_regexes,
                 "exact match: delete matches of this regex (PCRE2 syntax) from both sides first; repeatable");
  app.add_flag("--em-ignore-case", em_ignore_case, "exact match: lowercase both sides (Python str.lower)");
  app.add_flag("--em-ignore-punctuation", em_ignore_punctuation, "exact match: delete ASCII punctuation");
  app.add_flag("--em-ignore-numbers", em_ignore_numbers, "exact match: delete ASCII digits");
  app.add_flag("--rouge-stemmer", rouge_stemmer, "ROUGE: Porter-stem tokens (rouge_score use_stemmer=True)");
  app.add_option("--meteor", meteor,
                 "METEOR: full (with WordNet; fails if WordNet is missing), no-wordnet (reported as "
                 "meteor_no_wordnet) or off")
      ->check(CLI::IsMember({"full", "no-wordnet", "off"}));
  app.add_flag("--meteor-preserve-line", meteor_preserve_line,
               "METEOR: tokenize with word_tokenize(preserve_line=True), without the Punkt sentence split");
  app.add_option("--wordnet", wordnet_dir, "WordNet 3.0 folder (default /usr/share/wordnet, Debian's wordnet-base)");
  app.add_option("--threads", threads, "threads scoring examples (0 = one per CPU; default 0)")
      ->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (max_new_tokens > 0 && tokens_field.empty()) {
    std::fprintf(stderr, "error: --max-new-tokens needs --tokens-field (the token count of each prediction)\n");
    return kExitUsage;
  }

  std::vector<Record> records;
  try {
    std::string fmt = format;
    if (fmt == "auto") {
      auto ends_with = [&](const char* ext) {
        std::string e(ext);
        return input.size() >= e.size() && input.compare(input.size() - e.size(), e.size(), e) == 0;
      };
      if (ends_with(".csv")) {
        fmt = "csv";
      } else if (ends_with(".jsonl") || ends_with(".json") || ends_with(".ndjson")) {
        fmt = "jsonl";
      } else {
        std::fprintf(stderr, "error: cannot tell the format of %s from its extension; pass --format jsonl|csv\n",
                     input.c_str());
        return kExitUsage;
      }
    }
    records = fmt == "csv" ? read_csv(input, prediction_field, reference_field, tokens_field)
                           : read_jsonl(input, prediction_field, reference_field, tokens_field);
  } catch (const BadInput& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kExitBadInput;
  }
  if (records.empty()) {
    std::fprintf(stderr, "error: %s has no records\n", input.c_str());
    return kExitBadInput;
  }
  if (max_new_tokens > 0) {
    for (size_t i = 0; i < records.size(); ++i) {
      if (records[i].prediction_tokens < 0) {
        std::fprintf(stderr, "error: record %zu has no \"%s\" value; the truncated share needs it on every record\n",
                     i + 1, tokens_field.c_str());
        return kExitBadInput;
      }
    }
  }

  std::vector<std::vector<const char*>> ref_ptrs(records.size());
  std::vector<vlm_metrics_example> examples(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    for (const auto& r : records[i].references) ref_ptrs[i].push_back(r.c_str());
    examples[i].prediction = records[i].prediction.c_str();
    examples[i].references = ref_ptrs[i].data();
    examples[i].num_references = ref_ptrs[i].size();
    examples[i].prediction_tokens = records[i].prediction_tokens;
    examples[i].reference_tokens = nullptr;
  }
  std::vector<const char*> regex_ptrs;
  for (const auto& r : em_regexes) regex_ptrs.push_back(r.c_str());
  vlm_metrics_options options;
  vlm_metrics_options_init(&options);
  options.em_regexes_to_ignore = regex_ptrs.data();
  options.em_num_regexes_to_ignore = regex_ptrs.size();
  options.em_ignore_case = em_ignore_case;
  options.em_ignore_punctuation = em_ignore_punctuation;
  options.em_ignore_numbers = em_ignore_numbers;
  options.rouge_use_stemmer = rouge_stemmer;
  options.meteor_mode = meteor == "full" ? VLM_METEOR_FULL : meteor == "no-wordnet" ? VLM_METEOR_WITHOUT_WORDNET
                                                                                      : VLM_METEOR_OFF;
  if (!wordnet_dir.empty()) options.wordnet_dir = wordnet_dir.c_str();
  options.meteor_preserve_line = meteor_preserve_line;
  options.max_new_tokens = max_new_tokens;
  options.num_threads = threads;
  options.per_example = scored.empty() ? 0 : 1;

  vlm_metrics_result* result = nullptr;
  vlm_status st = vlm_metrics_score(examples.data(), examples.size(), &options, &result);
  if (st != VLM_OK) {
    // Map example indices back to input records: "examples[3]" / "example 3" are 0-based.
    std::fprintf(stderr, "error: %s (%s; example numbers count records from 0)\n", vlm_last_error(),
                 vlm_status_name(st));
    return exit_code_for(st);
  }
  int rc = kExitOk;
  try {
    char* json = nullptr;
    if (vlm_metrics_result_corpus_json(result, &json) != VLM_OK) throw std::runtime_error(vlm_last_error());
    nlohmann::json doc = nlohmann::json::parse(json);
    vlm_string_free(json);
    doc["input"] = input;
    doc["vlmrt_version"] = vlm_version();
    const std::string text = doc.dump(2) + "\n";
    if (output.empty()) {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      write_atomically(output, text);
    }
    if (!scored.empty()) {
      std::string lines;
      for (size_t i = 0; i < records.size(); ++i) {
        char* ex = nullptr;
        if (vlm_metrics_result_example_json(result, i, &ex) != VLM_OK) throw std::runtime_error(vlm_last_error());
        nlohmann::json row = records[i].original;
        row["scores"] = nlohmann::json::parse(ex);
        vlm_string_free(ex);
        lines += row.dump() + "\n";
      }
      write_atomically(scored, lines);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    rc = kExitFailure;
  }
  vlm_metrics_result_free(result);
  return rc;
}
