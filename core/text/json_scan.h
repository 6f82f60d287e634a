// A small, fast reader for the bulk tables of tokenizer.json (the model's vocab and merges, >95% of an 11 MB
// file), so that loading does not build a DOM of 300k JSON values. Everything else is handed to nlohmann_json.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlm::text {

class JsonScanner {
 public:
  JsonScanner(std::string_view text, std::string where) : s_(text), where_(std::move(where)) {}

  void skip_ws();
  char peek();  // next non-space character ('\0' at the end)
  void expect(char c);
  bool consume(char c);  // after spaces
  std::string parse_string();
  std::int64_t parse_integer();
  // Skips one JSON value and returns its raw text.
  std::string_view value_text();
  std::size_t offset() const { return pos_; }
  [[noreturn]] void error(const std::string& what) const;

 private:
  void skip_string();
  std::string_view s_;
  std::size_t pos_ = 0;
  std::string where_;
};

// {"token": id, ...}
std::vector<std::pair<std::string, std::int32_t>> scan_vocab_object(JsonScanner& in);
// ["a b", ...] or [["a", "b"], ...]
std::vector<std::pair<std::string, std::string>> scan_merges(JsonScanner& in);

}  // namespace vlm::text
