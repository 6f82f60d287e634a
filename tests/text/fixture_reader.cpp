#include "fixture_reader.h"

#include <zlib.h>

#include "base/error.h"

namespace vlm::test {

std::vector<nlohmann::json> read_jsonl_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(ErrorCode::not_found, path + ": cannot open (regenerate with tools/oracle/gen_tokenizer_fixtures.py)");
  std::string data;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(f, buffer, sizeof(buffer))) > 0) data.append(buffer, static_cast<std::size_t>(n));
  const bool failed = n < 0;
  gzclose(f);
  if (failed) fail(ErrorCode::corrupt_data, path + ": gzip stream is corrupt");
  std::vector<nlohmann::json> rows;
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    if (end > pos) rows.push_back(nlohmann::json::parse(data.begin() + pos, data.begin() + end));
    pos = end + 1;
  }
  return rows;
}

std::string text_fixture(const std::string& name) { return std::string(VLM_FIXTURES_DIR) + "/text/" + name; }
std::string shared_tokenizer(const std::string& name) {
  return std::string(VLM_SHARED_DATA_DIR) + "/tokenizers/" + name;
}

}  // namespace vlm::test
