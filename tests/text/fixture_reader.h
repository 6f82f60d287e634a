// Reads the gzip-compressed JSON-lines fixtures of tests/fixtures/text.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vlm::test {

std::vector<nlohmann::json> read_jsonl_gz(const std::string& path);
std::string text_fixture(const std::string& name);  // VLM_FIXTURES_DIR "/text/" + name
std::string shared_tokenizer(const std::string& name);  // VLM_SHARED_DATA_DIR "/tokenizers/" + name

}  // namespace vlm::test
