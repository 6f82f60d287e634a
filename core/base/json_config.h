// Typed, error-reporting access to JSON configuration files (config.json, generation_config.json, ...).
// A ConfigObject is a view of one JSON object inside a file; every error names the file and the full key
// path ("text_config.hidden_size") and says what was expected.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vlm {

class ConfigObject {
 public:
  // Parses a JSON file whose top level must be an object. Throws vlm::Error naming the file.
  static ConfigObject load(const std::string& path);
  static ConfigObject parse(const std::string& text, const std::string& label);
  ConfigObject() : ConfigObject(std::make_shared<nlohmann::json>(nlohmann::json::object()), "<empty>") {}

  // True when the key is present and not null (Hugging Face writes unset options as null).
  bool has(const std::string& key) const;

  template <typename T>
  T get(const std::string& key) const {
    auto value = get_optional<T>(key);
    if (!value) missing(key);
    return *value;
  }
  template <typename T>
  T get_or(const std::string& key, T fallback) const {
    auto value = get_optional<T>(key);
    return value ? *value : fallback;
  }
  // Absent or null -> nullopt; present with the wrong type -> vlm::Error naming the key.
  template <typename T>
  std::optional<T> get_optional(const std::string& key) const;

  ConfigObject child(const std::string& key) const;
  std::optional<ConfigObject> child_optional(const std::string& key) const;

  const nlohmann::json& raw() const { return *node_; }
  const std::string& file() const { return file_; }
  // "text_config.rope_scaling" for a nested object, "" at the top level.
  const std::string& key_path() const { return path_; }
  std::string describe(const std::string& key) const;  // "<file>: key 'a.b'"

 private:
  ConfigObject(std::shared_ptr<const nlohmann::json> root, std::string file);
  [[noreturn]] void missing(const std::string& key) const;
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;
  const nlohmann::json* find(const std::string& key) const;

  std::shared_ptr<const nlohmann::json> root_;
  const nlohmann::json* node_;
  std::string file_;
  std::string path_;
};

template <> std::optional<bool> ConfigObject::get_optional<bool>(const std::string& key) const;
template <> std::optional<std::int64_t> ConfigObject::get_optional<std::int64_t>(const std::string& key) const;
template <> std::optional<int> ConfigObject::get_optional<int>(const std::string& key) const;
template <> std::optional<double> ConfigObject::get_optional<double>(const std::string& key) const;
template <> std::optional<std::string> ConfigObject::get_optional<std::string>(const std::string& key) const;
template <> std::optional<std::vector<std::int64_t>> ConfigObject::get_optional<std::vector<std::int64_t>>(const std::string& key) const;
template <> std::optional<std::vector<double>> ConfigObject::get_optional<std::vector<double>>(const std::string& key) const;
template <> std::optional<std::vector<std::string>> ConfigObject::get_optional<std::vector<std::string>>(const std::string& key) const;

}  // namespace vlm
