#include "processor_fixtures.h"

#include <zlib.h>

#include <map>
#include <mutex>

#include "base/error.h"
#include "test_util.h"

namespace vlm::test {

std::string processor_fixture(const std::string& relative) { return fixture("processor/" + relative); }

std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) fail(ErrorCode::not_found, "cannot open " + path);
  std::string data;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(f, buffer, sizeof(buffer))) > 0) data.append(buffer, static_cast<std::size_t>(n));
  const bool failed = n < 0;
  gzclose(f);
  if (failed) fail(ErrorCode::corrupt_data, path + ": gzip stream is corrupt");
  return data;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_bytes(path)); }

const RgbImage& fixture_image(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, RgbImage> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, load_image(processor_fixture("images/" + name))).first;
  return it->second;
}

}  // namespace vlm::test
