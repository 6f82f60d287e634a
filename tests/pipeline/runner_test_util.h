// Reading a pipeline run's JSON outputs in the runner tests (test_runner.cpp, test_runner_e2e.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "base/fs.h"
#include "test_util.h"

namespace vlm::test {

inline nlohmann::ordered_json load_json(const std::string& path) { return nlohmann::ordered_json::parse(read_file(path)); }

// The entry of run `name` in an ablation_summary.json; fails the test when there is none.
inline const nlohmann::ordered_json& run_entry(const nlohmann::ordered_json& summary, const std::string& name) {
  for (const auto& r : summary["runs"]) {
    if (r["name"] == name) return r;
  }
  FAIL("no run " << name);
  static nlohmann::ordered_json none;
  return none;
}

}  // namespace vlm::test
