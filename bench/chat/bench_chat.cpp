// Native side of the chat template benchmark: renders every conversation of a workload file with its template
// (parsed once) through vlm::chat::apply_chat_template, checks each prompt against the one Python produced, and
// prints the time. tools/oracle/bench_chat_template.py writes the workload, runs this program next to
// transformers' apply_chat_template and prints the ratio; run that script, not this program, for the comparison.
//
// Usage: bench_chat WORKLOAD.json [--repeat N]   |   bench_chat --probe CASES.json
//   WORKLOAD.json: {"templates": {name: text}, "special_tokens": {name: {...}},
//                   "items": [{"template", "messages", "add_generation_prompt", "expected"}]}
// Output (one JSON line): {"renders", "best_seconds", "mismatches", "parse_seconds"}
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "chat/chat_template.h"

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

// --probe CASES.json: renders {"cases": [{"template", "context"}]} and prints one JSON line per case,
// {"ok": true, "out": ...} or {"ok": false, "error": ...}; tools/oracle/fuzz_chat_templates.py compares these
// with Python.
int probe(const char* path) {
  auto cases = nlohmann::ordered_json::parse(vlm::read_file(path));
  for (const auto& c : cases["cases"]) {
    nlohmann::ordered_json result;
    try {
      vlm::chat::Template t(c["template"].get<std::string>(), "probe");
      result["ok"] = true;
      result["out"] = t.render(c["context"]);
    } catch (const vlm::Error& e) {
      result = {{"ok", false}, {"error", e.what()}};
    }
    std::printf("%s\n", result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr, "usage: %s WORKLOAD.json [--repeat N]\n       %s --probe CASES.json\n", argv[0], argv[0]);
    return 2;
  }
  if (std::strcmp(argv[1], "--probe") == 0 && argc == 3) {
    try {
      return probe(argv[2]);
    } catch (const vlm::Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
  }
  int repeat = 3;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    auto workload = nlohmann::ordered_json::parse(vlm::read_file(argv[1]));
    auto t0 = std::chrono::steady_clock::now();
    std::map<std::string, std::unique_ptr<vlm::chat::Template>> templates;
    for (auto it = workload["templates"].begin(); it != workload["templates"].end(); ++it)
      templates[it.key()] = std::make_unique<vlm::chat::Template>(it.value().get<std::string>(), it.key());
    double parse_seconds = seconds_since(t0);
    const auto& items = workload["items"];
    const auto& special = workload["special_tokens"];
    double best = 1e300;
    std::size_t mismatches = 0;
    for (int r = 0; r < repeat; ++r) {
      std::size_t bad = 0;
      auto start = std::chrono::steady_clock::now();
      for (const auto& item : items) {
        const std::string& name = item["template"].get_ref<const std::string&>();
        std::string prompt = vlm::chat::apply_chat_template(*templates.at(name), item["messages"],
                                                            item["add_generation_prompt"].get<bool>(), special[name]);
        if (prompt != item["expected"].get_ref<const std::string&>()) ++bad;
      }
      best = std::min(best, seconds_since(start));
      mismatches = bad;
    }
    std::printf("{\"renders\": %zu, \"best_seconds\": %.6f, \"mismatches\": %zu, \"parse_seconds\": %.6f}\n",
                items.size(), best, mismatches, parse_seconds);
    return mismatches == 0 ? 0 : 1;
  } catch (const vlm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
