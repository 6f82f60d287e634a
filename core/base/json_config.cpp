#include "base/json_config.h"

#include "base/error.h"
#include "base/fs.h"

namespace vlm {

ConfigObject::ConfigObject(std::shared_ptr<const nlohmann::json> root, std::string file)
    : root_(std::move(root)), node_(root_.get()), file_(std::move(file)) {}

ConfigObject ConfigObject::parse(const std::string& text, const std::string& label) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    // Re-parse with exceptions to get the position of the first error for the message.
    std::string detail;
    try {
      nlohmann::json unused = nlohmann::json::parse(text);
      (void)unused;
    } catch (const nlohmann::json::parse_error& e) {
      detail = std::string(": ") + e.what();
    }
    fail(ErrorCode::corrupt_data, label + " is not valid JSON" + detail);
  }
  if (!doc.is_object()) fail(ErrorCode::corrupt_data, label + " must contain a JSON object at the top level");
  return ConfigObject(std::make_shared<nlohmann::json>(std::move(doc)), label);
}

ConfigObject ConfigObject::load(const std::string& path) { return parse(read_file(path), path); }

std::string ConfigObject::describe(const std::string& key) const {
  return file_ + ": key '" + (path_.empty() ? key : path_ + "." + key) + "'";
}

void ConfigObject::missing(const std::string& key) const {
  fail(ErrorCode::not_found, describe(key) + " is required but missing");
}

void ConfigObject::wrong_type(const std::string& key, const char* expected) const {
  const nlohmann::json* v = find(key);
  fail(ErrorCode::invalid_argument,
       describe(key) + " must be " + expected + ", found " + (v ? v->dump() : std::string("nothing")));
}

const nlohmann::json* ConfigObject::find(const std::string& key) const {
  auto it = node_->find(key);
  if (it == node_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool ConfigObject::has(const std::string& key) const { return find(key) != nullptr; }

template <>
std::optional<bool> ConfigObject::get_optional<bool>(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(key, "true or false");
  return v->get<bool>();
}

template <>
std::optional<std::int64_t> ConfigObject::get_optional<std::int64_t>(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) wrong_type(key, "an integer");
  return v->get<std::int64_t>();
}

template <>
std::optional<int> ConfigObject::get_optional<int>(const std::string& key) const {
  auto v = get_optional<std::int64_t>(key);
  if (!v) return std::nullopt;
  if (*v < INT32_MIN || *v > INT32_MAX) wrong_type(key, "a 32-bit integer");
  return static_cast<int>(*v);
}

template <>
std::optional<double> ConfigObject::get_optional<double>(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number");
  return v->get<double>();
}

template <>
std::optional<std::string> ConfigObject::get_optional<std::string>(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(key, "a string");
  return v->get<std::string>();
}

// A scalar integer is accepted as a one-element list: Hugging Face writes eos_token_id either way.
template <>
std::optional<std::vector<std::int64_t>> ConfigObject::get_optional<std::vector<std::int64_t>>(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return std::vector<std::int64_t>{v->get<std::int64_t>()};
  if (!v->is_array()) wrong_type(key, "an integer or a list of integers");
  std::vector<std::int64_t> out;
  for (const auto& e : *v) {
    if (!e.is_number_integer()) wrong_type(key, "a list of integers");
    out.push_back(e.get<std::int64_t>());
  }
  return out;
}

template <>
std::optional<std::vector<double>> ConfigObject::get_optional<std::vector<double>>(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) wrong_type(key, "a list of numbers");
  std::vector<double> out;
  for (const auto& e : *v) {
    if (!e.is_number()) wrong_type(key, "a list of numbers");
    out.push_back(e.get<double>());
  }
  return out;
}

template <>
std::optional<std::vector<std::string>> ConfigObject::get_optional<std::vector<std::string>>(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_string()) return std::vector<std::string>{v->get<std::string>()};
  if (!v->is_array()) wrong_type(key, "a string or a list of strings");
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) wrong_type(key, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

ConfigObject ConfigObject::child(const std::string& key) const {
  auto c = child_optional(key);
  if (!c) missing(key);
  return *c;
}

std::optional<ConfigObject> ConfigObject::child_optional(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_object()) wrong_type(key, "an object");
  ConfigObject c(root_, file_);
  c.node_ = v;
  c.path_ = path_.empty() ? key : path_ + "." + key;
  return c;
}

}  // namespace vlm
