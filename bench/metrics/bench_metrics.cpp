// Native side of the metrics benchmark: scores a JSON Lines file of {"prediction", "references"} pairs with every
// metric (exact match x2, corpus + sentence BLEU, METEOR with WordNet, ROUGE-L, ROUGE-Lsum, token statistics) and
// prints the time. tools/bench/bench_metrics.py runs this next to the Python reference packages and prints the
// ratio; run that script, not this program, for the comparison.
//
// Usage: bench_metrics PAIRS.jsonl [--repeat N] [--threads N] [--wordnet DIR] [--json OUT.json] [--breakdown]
//   --threads: MetricsOptions::num_threads (default 1; 0 = one per hardware thread)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "metrics/metrics.h"
#include "metrics/wordnet.h"

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: %s PAIRS.jsonl [--repeat N] [--threads N] [--wordnet DIR] [--json OUT.json] [--breakdown]\n", argv[0]);
    return 2;
  }
  std::string pairs_path = argv[1];
  int repeat = 3;
  std::string wordnet_dir = "/usr/share/wordnet";
  std::string json_out;
  int threads = 1;
  bool breakdown = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--wordnet" && i + 1 < argc) {
      wordnet_dir = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::max(0, std::atoi(argv[++i]));
    } else if (a == "--breakdown") {
      breakdown = true;
    } else if (a == "--json" && i + 1 < argc) {
      json_out = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    std::vector<vlm::metrics::Example> examples;
    std::ifstream in(pairs_path);
    if (!in) vlm::fail(vlm::ErrorCode::not_found, "cannot open " + pairs_path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      vlm::metrics::Example ex;
      ex.prediction = j.at("prediction");
      ex.references = j.at("references").get<std::vector<std::string>>();
      examples.push_back(std::move(ex));
    }
    auto t0 = std::chrono::steady_clock::now();
    auto wn = vlm::metrics::WordNet::shared(wordnet_dir);
    const double load_s = seconds_since(t0);

    vlm::metrics::MetricsOptions options;
    options.wordnet_dir = wordnet_dir;
    options.max_new_tokens = 32;
    options.num_threads = threads;
    options.count_tokens = [](std::string_view text) { return static_cast<std::int64_t>(text.size() / 4 + 1); };
    vlm::metrics::MetricsScorer scorer(options);
    double best = 1e300;
    vlm::metrics::CorpusScores result;
    for (int r = 0; r < repeat; ++r) {
      auto t1 = std::chrono::steady_clock::now();
      result = scorer.score(examples);
      best = std::min(best, seconds_since(t1));
    }
    std::printf("native: %zu pairs, %d thread(s) (0 = all), WordNet load %.3f s, scoring best of %d: %.3f s\n",
                examples.size(), threads, load_s, repeat, best);
    for (const auto& m : result.metrics) std::printf("  %-24s %.12f\n", m.name.c_str(), m.value);
    // Where the time goes: each metric alone over all pairs.
    auto time_it = [&](const char* name, auto&& body) {
      if (!breakdown) return;
      auto t = std::chrono::steady_clock::now();
      double sink = 0;
      for (const auto& ex : examples) sink += body(ex);
      std::printf("  time %-22s %.3f s (checksum %.6f)\n", name, seconds_since(t), sink);
    };
    time_it("exact_match (both)", [&](const vlm::metrics::Example& ex) {
      return scorer.exact_match(ex.prediction, ex.references, false) +
             scorer.exact_match(ex.prediction, ex.references, true);
    });
    time_it("sentence_bleu", [&](const vlm::metrics::Example& ex) {
      return vlm::metrics::sentence_bleu(ex.prediction, ex.references);
    });
    time_it("meteor", [&](const vlm::metrics::Example& ex) { return scorer.meteor(ex.prediction, ex.references); });
    time_it("rougeL", [&](const vlm::metrics::Example& ex) { return scorer.rouge_l(ex.prediction, ex.references); });
    time_it("rougeLsum",
            [&](const vlm::metrics::Example& ex) { return scorer.rouge_lsum(ex.prediction, ex.references); });
    if (!json_out.empty()) {
      nlohmann::json j = vlm::metrics::corpus_scores_json(result);
      j["seconds"] = best;
      j["wordnet_load_seconds"] = load_s;
      nlohmann::json per = nlohmann::json::array();
      for (const auto& e : result.examples) per.push_back(vlm::metrics::example_scores_json(e, true));
      j["examples"] = per;
      vlm::write_file_atomic(json_out, j.dump());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 3;
  }
  return 0;
}
