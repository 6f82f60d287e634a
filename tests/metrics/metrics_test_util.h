// Shared helpers of the metrics tests: JSON Lines fixtures and the WordNet folder.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace vlm::test {

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << path);
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << path);
  return nlohmann::json::parse(in);
}

// Debian's WordNet 3.0 (wordnet-base); VLM_TEST_WORDNET_DIR overrides it.
inline std::string wordnet_dir() {
  const char* env = std::getenv("VLM_TEST_WORDNET_DIR");
  return env && *env ? env : "/usr/share/wordnet";
}

}  // namespace vlm::test
