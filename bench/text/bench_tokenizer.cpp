// Native side of the tokenizer benchmark (the Python side and the driver: tools/bench/bench_tokenizer.py).
//
//   bench_tokenizer <tokenizer folder or file> <corpus.jsonl> [raw|transformers] [load_repeats]
//
// Prints one JSON object: load time (best of load_repeats), single-thread encode time over all corpus lines,
// bytes, token count and an id checksum (the driver compares it with the Python side's).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <tokenizer> <corpus.jsonl> [raw|transformers] [load_repeats]\n", argv[0]);
    return 2;
  }
  try {
    vlm::TokenizerOptions options;
    if (argc > 3 && std::string(argv[3]) == "raw") options.flavor = vlm::TokenizerOptions::Flavor::raw;
    const int repeats = argc > 4 ? std::max(1, std::atoi(argv[4])) : 3;
    using clock = std::chrono::steady_clock;
    double best_load = 1e30;
    std::shared_ptr<vlm::Tokenizer> tok;
    for (int r = 0; r < repeats; ++r) {
      tok.reset();
      const auto t0 = clock::now();
      tok = vlm::Tokenizer::load(argv[1], options);
      best_load = std::min(best_load, std::chrono::duration<double>(clock::now() - t0).count());
    }
    const std::string data = vlm::read_file(argv[2]);
    std::vector<std::string> lines;
    std::size_t bytes = 0, pos = 0;
    while (pos < data.size()) {
      std::size_t end = data.find('\n', pos);
      if (end == std::string::npos) end = data.size();
      if (end > pos) {
        lines.push_back(nlohmann::json::parse(data.begin() + pos, data.begin() + end).get<std::string>());
        bytes += lines.back().size();
      }
      pos = end + 1;
    }
    const auto t0 = clock::now();
    std::uint64_t tokens = 0, checksum = 0;
    for (const std::string& line : lines) {
      const auto ids = tok->encode(line, false);
      tokens += ids.size();
      for (std::int32_t id : ids) checksum = checksum * 1000003u + static_cast<std::uint32_t>(id);
    }
    const double encode_s = std::chrono::duration<double>(clock::now() - t0).count();
    nlohmann::json out = {{"load_s", best_load},   {"encode_s", encode_s}, {"bytes", bytes},
                          {"lines", lines.size()}, {"tokens", tokens},     {"checksum", checksum},
                          {"mb_per_s", bytes / 1e6 / encode_s}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const vlm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
