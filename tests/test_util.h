// Small helpers shared by the tests: temporary folders, fixture paths, and error assertions.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace vlm::test {

// Lower-case hex of raw bytes (for comparing tensor payloads with the reference's bytes_hex).
inline std::string hex_of(const std::uint8_t* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += {digits[p[i] >> 4], digits[p[i] & 15]};
  return out;
}

inline std::string fixture(const std::string& relative) { return std::string(VLM_FIXTURES_DIR) + "/" + relative; }

// A fresh directory under $TMPDIR, removed with its contents at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "vlmrt-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `body`, requires a vlm::Error with the given code whose message contains every fragment.
template <class F>
void expect_error(F&& body, ErrorCode code, std::initializer_list<std::string> fragments) {
  bool thrown = false;
  try {
    body();
  } catch (const Error& e) {
    thrown = true;
    CHECK_MESSAGE(e.code() == code, "error code " << error_code_name(e.code()) << ": " << e.what());
    for (const auto& f : fragments) CHECK_MESSAGE(std::string(e.what()).find(f) != std::string::npos, "message '" << std::string(e.what()) << "' lacks '" << f << "'");
  }
  CHECK_MESSAGE(thrown, "expected a vlm::Error(" << error_code_name(code) << ")");
}

// Sets environment variables for the scope of a test and restores them afterwards.
class ScopedEnv {
 public:
  void set(const char* name, const char* value) {
    const char* old = std::getenv(name);
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (value) ::setenv(name, value, 1); else ::unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1); else ::unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace vlm::test
