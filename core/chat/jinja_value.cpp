#include "chat/jinja_value.h"

#include "base/error.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace vlm::jinja {

void throw_render(RenderError::Type type, std::string message) { throw RenderError{type, std::move(message)}; }

Value Value::none() {
  Value v;
  v.kind_ = Kind::none;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::boolean;
  v.b_ = b;
  return v;
}
Value Value::integer(std::int64_t i) {
  Value v;
  v.kind_ = Kind::integer;
  v.i_ = i;
  return v;
}
Value Value::floating(double d) {
  Value v;
  v.kind_ = Kind::floating;
  v.d_ = d;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::string;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
int nesting_depth(const Value& v) {
  if (v.is_list()) return v.as_list().depth;
  if (v.is_dict()) return v.as_dict().depth;
  return 0;
}

static void check_depth(int depth) {
  if (depth > kMaxValueDepth)
    throw_render(RenderError::Type::limit, "a value is nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
}

Value Value::list(std::vector<Value> items, bool is_tuple) {
  Value v;
  v.kind_ = Kind::list;
  v.list_ = std::make_shared<List>();
  int depth = 1;
  for (const auto& item : items) depth = std::max(depth, nesting_depth(item) + 1);
  check_depth(depth);
  v.list_->items = std::move(items);
  v.list_->is_tuple = is_tuple;
  v.list_->depth = depth;
  return v;
}
Value Value::dict(std::shared_ptr<Dict> d) {
  Value v;
  v.kind_ = Kind::dict;
  v.dict_ = std::move(d);
  return v;
}
Value Value::object(std::shared_ptr<Object> o) {
  Value v;
  v.kind_ = Kind::object;
  v.obj_ = std::move(o);
  return v;
}
Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean: return b_;
    case Kind::integer: return i_ != 0;
    case Kind::floating: return d_ != 0.0;
    case Kind::string: return !s_->empty();
    case Kind::list: return list_->lazy || !list_->items.empty();
    case Kind::dict: return !dict_->items.empty();
    case Kind::object: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::undefined: return "Undefined";
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::list: return list_->lazy ? list_->lazy_name : list_->is_tuple ? "tuple" : "list";
    case Kind::dict: return "dict";
    case Kind::object: return obj_->type_name();
  }
  return "?";
}

Value Object::get_attribute(const std::string& name) const {
  return Value::undefined("'" + type_name() + " object' has no attribute '" + name + "'");
}
Value Object::call(CallArgs&) {
  throw_render(RenderError::Type::type, "'" + type_name() + "' object is not callable");
}
std::string Object::to_str() const { return "<" + type_name() + " object>"; }

std::string Dict::key_of(const Value& key) {
  switch (key.kind()) {
    case Kind::none: return "n";
    case Kind::boolean:
    case Kind::integer: return "i" + std::to_string(key.as_int());
    case Kind::floating: {
      double d = key.as_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
        return "i" + std::to_string(static_cast<std::int64_t>(d));
      return "f" + py_float_repr(d);
    }
    case Kind::string: return "s" + key.as_string();
    case Kind::list:
      if (key.as_list().is_tuple) {
        std::string k = "t";
        for (const auto& item : key.as_list().items) k += key_of(item) + '\x1f';
        return k;
      }
      break;
    default: break;
  }
  throw_render(RenderError::Type::type, "unhashable type: '" + key.type_name() + "'");
}

// Small dicts (most chat messages) are scanned; an index is built once a dict grows past this size.
constexpr std::size_t kIndexThreshold = 12;

static bool same_key(const Value& a, const Value& b) {
  if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
  if (a.is_string() || b.is_string()) return false;
  return py_equal(a, b);
}

const Value* Dict::find(const Value& key) const {
  if (key.is_undefined() || key.is_dict() || key.is_object() || (key.is_list() && !key.as_list().is_tuple))
    return nullptr;
  if (index.empty()) {
    for (const auto& kv : items)
      if (same_key(kv.first, key)) return &kv.second;
    return nullptr;
  }
  auto it = index.find(key_of(key));
  return it == index.end() ? nullptr : &items[it->second].second;
}

void Dict::set(const Value& key, Value value) {
  int d = std::max(nesting_depth(key), nesting_depth(value)) + 1;
  if (d > depth) {
    check_depth(d);
    depth = d;
  }
  if (index.empty() && items.size() < kIndexThreshold) {
    if (!key.is_string()) key_of(key);  // rejects unhashable keys
    for (auto& kv : items)
      if (same_key(kv.first, key)) {
        kv.second = std::move(value);
        return;
      }
    items.emplace_back(key, std::move(value));
    return;
  }
  if (index.empty())
    for (std::size_t i = 0; i < items.size(); ++i) index.emplace(key_of(items[i].first), i);
  std::string k = key_of(key);
  auto it = index.find(k);
  if (it != index.end()) {
    items[it->second].second = std::move(value);
    return;
  }
  index.emplace(std::move(k), items.size());
  items.emplace_back(key, std::move(value));
}

// ---------------------------------------------------------------- equality and ordering

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if ((a.is_float() || b.is_float())) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::undefined:
    case Kind::none: return true;
    case Kind::string: return a.as_string() == b.as_string();
    case Kind::list: {
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.lazy || y.lazy) return a.list_ptr() == b.list_ptr();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (std::size_t i = 0; i < x.items.size(); ++i)
        if (!py_equal(x.items[i], y.items[i])) return false;
      return true;
    }
    case Kind::dict: {
      const auto& x = a.as_dict();
      const auto& y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (!other || !py_equal(v, *other)) return false;
      }
      return true;
    }
    case Kind::object: return a.as_object() == b.as_object();
    default: return false;
  }
}

int py_compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    std::int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    // Byte order of UTF-8 equals code point order, which is how Python compares str.
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple && !a.as_list().lazy &&
      !b.as_list().lazy) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (py_equal(x[i], y[i])) continue;
      return py_compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  throw_render(RenderError::Type::type, "'<' not supported between instances of '" + a.type_name() + "' and '" +
                                            b.type_name() + "'");
}

// ---------------------------------------------------------------- UTF-8

std::vector<std::uint32_t> utf8_decode(std::string_view s) {
  std::vector<std::uint32_t> out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::uint32_t cp;
    int extra;
    if (c < 0x80) {
      cp = c;
      extra = 0;
    } else if ((c >> 5) == 6) {
      cp = c & 0x1f;
      extra = 1;
    } else if ((c >> 4) == 14) {
      cp = c & 0x0f;
      extra = 2;
    } else if ((c >> 3) == 30) {
      cp = c & 0x07;
      extra = 3;
    } else {
      cp = 0xFFFD;
      extra = 0;
    }
    ++i;
    for (int k = 0; k < extra; ++k) {
      if (i >= s.size() || (static_cast<unsigned char>(s[i]) >> 6) != 2) {
        cp = 0xFFFD;
        break;
      }
      cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3f);
      ++i;
    }
    out.push_back(cp);
  }
  return out;
}

void utf8_append(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string utf8_encode(const std::vector<std::uint32_t>& cps, std::size_t begin, std::size_t end) {
  std::string out;
  for (std::size_t i = begin; i < end; ++i) utf8_append(out, cps[i]);
  return out;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

bool py_isspace(std::uint32_t cp) {
  // str.isspace(): bidirectional class WS, B or S, or category Zs.
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x1C: case 0x1D: case 0x1E: case 0x1F:
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

// ---------------------------------------------------------------- str() and repr()

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest digit string that round-trips, as Python's repr does.
  char buf[64];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  // buf is like "-1.2345e+05": split into sign, digits and exponent.
  std::string s(buf);
  bool negative = s[0] == '-';
  if (negative) s.erase(0, 1);
  std::size_t e_pos = s.find('e');
  int exponent = std::atoi(s.c_str() + e_pos + 1);
  std::string digits;
  for (std::size_t i = 0; i < e_pos; ++i)
    if (s[i] != '.') digits += s[i];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      std::string int_part, frac_part;
      if (static_cast<int>(digits.size()) <= exponent + 1) {
        int_part = digits + std::string(exponent + 1 - digits.size(), '0');
        frac_part = "0";
      } else {
        int_part = digits.substr(0, exponent + 1);
        frac_part = digits.substr(exponent + 1);
      }
      out += int_part + "." + frac_part;
    } else {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += ebuf;
  }
  return out;
}

static bool py_isprintable(std::uint32_t cp) {
  if (cp == ' ') return true;
  if (cp < 0x20 || cp == 0x7f) return false;
  if (cp < 0x7f) return true;
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  switch (cat) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
      return false;
    default: return true;
  }
}

std::string py_repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (std::uint32_t cp : utf8_decode(s)) {
    if (cp == static_cast<std::uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (!py_isprintable(cp)) {
      char buf[16];
      if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      else std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    } else {
      utf8_append(out, cp);
    }
  }
  out += quote;
  return out;
}

std::string py_repr(const Value& v) {
  switch (v.kind()) {
    case Kind::string: return py_repr_string(v.as_string());
    case Kind::undefined: return "Undefined";
    default: return py_str(v);
  }
}

std::string py_str(const Value& v) {
  // Namespaces can hold themselves (ns.x = [ns]); stop such cycles instead of overflowing the stack.
  static thread_local int depth = 0;
  struct Guard {
    Guard() {
      if (++depth > kMaxValueDepth) {
        depth = 0;
        throw_render(RenderError::Type::limit, "value nested too deeply to print");
      }
    }
    ~Guard() { if (depth > 0) --depth; }
  } guard;
  switch (v.kind()) {
    case Kind::undefined: return "";
    case Kind::none: return "None";
    case Kind::boolean: return v.as_bool() ? "True" : "False";
    case Kind::integer: return std::to_string(v.as_int());
    case Kind::floating: return py_float_repr(v.as_double());
    case Kind::string: return v.as_string();
    case Kind::list: {
      const auto& l = v.as_list();
      if (l.lazy)
        throw_render(RenderError::Type::type,
                     "printing a " + l.lazy_name +
                         " (the result of map, select, selectattr, unique, items or reverse) is not supported; add "
                         "|list");
      if (!l.display.empty()) return l.display;
      std::string out = l.display_prefix + (l.is_tuple ? "(" : "[");
      for (std::size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        out += py_repr(l.items[i]);
      }
      if (l.is_tuple && l.items.size() == 1) out += ",";
      out += l.is_tuple ? ")" : "]";
      return out + l.display_suffix;
    }
    case Kind::dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, val] : v.as_dict().items) {
        if (!first) out += ", ";
        first = false;
        out += py_repr(k) + ": " + py_repr(val);
      }
      return out + "}";
    }
    case Kind::object: return v.as_object()->to_str();
  }
  return "";
}

// ---------------------------------------------------------------- json.dumps

static void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (std::uint32_t cp : utf8_decode(s)) {
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char buf[16];
        if (cp < 0x20 || (ensure_ascii && cp > 0x7e)) {
          if (cp >= 0x10000) {
            std::uint32_t v = cp - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3ff));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", cp);
          }
          out += buf;
        } else {
          utf8_append(out, cp);
        }
      }
    }
  }
  out += '"';
}

static std::string json_key_text(const Value& k) {
  // json.dumps converts non-string keys: True -> "true", None -> "null", numbers via repr.
  switch (k.kind()) {
    case Kind::string: return k.as_string();
    case Kind::boolean: return k.as_bool() ? "true" : "false";
    case Kind::none: return "null";
    case Kind::integer: return std::to_string(k.as_int());
    case Kind::floating: return py_float_repr(k.as_double());
    default:
      throw_render(RenderError::Type::type,
                   "keys must be str, int, float, bool or None, not " + k.type_name());
  }
}

static void json_dump(std::string& out, const Value& v, const JsonDumpOptions& o, int depth) {
  auto newline = [&](int level) {
    if (!o.has_indent) return;
    out += '\n';
    for (int i = 0; i < level; ++i) out += o.indent;
  };
  if (depth > 512) throw_render(RenderError::Type::limit, "tojson: value nested too deeply");
  switch (v.kind()) {
    case Kind::none: out += "null"; return;
    case Kind::boolean: out += v.as_bool() ? "true" : "false"; return;
    case Kind::integer: out += std::to_string(v.as_int()); return;
    case Kind::floating: {
      double d = v.as_double();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += py_float_repr(d);
      return;
    }
    case Kind::string: json_string(out, v.as_string(), o.ensure_ascii); return;
    case Kind::list: {
      if (v.as_list().lazy)
        throw_render(RenderError::Type::type, "Object of type " + v.as_list().lazy_name + " is not JSON serializable");
      if (!v.as_list().display.empty() || !v.as_list().display_prefix.empty())  // range, dict views
        throw_render(RenderError::Type::type, "Object of type " +
                                                  (v.as_list().display.empty() ? v.as_list().display_prefix.substr(0, v.as_list().display_prefix.size() - 1) : std::string("range")) +
                                                  " is not JSON serializable");
      const auto& items = v.as_list().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_separator;
        newline(depth + 1);
        json_dump(out, items[i], o, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case Kind::dict: {
      const auto& d = v.as_dict();
      if (d.items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> entries;
      for (const auto& [k, val] : d.items) entries.emplace_back(json_key_text(k), &val);
      if (o.sort_keys) {
        for (const auto& [k, val] : d.items)
          if (!k.is_string())
            throw_render(RenderError::Type::type, "tojson(sort_keys=true) needs string keys");
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      }
      out += '{';
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i) out += o.item_separator;
        newline(depth + 1);
        json_string(out, entries[i].first, o.ensure_ascii);
        out += o.key_separator;
        json_dump(out, *entries[i].second, o, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    case Kind::undefined:
      throw_render(RenderError::Type::type, "Object of type Undefined is not JSON serializable");
    case Kind::object:
      throw_render(RenderError::Type::type, "Object of type " + v.type_name() + " is not JSON serializable");
  }
}

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  json_dump(out, v, options, 0);
  return out;
}

static Value from_json_at(const nlohmann::ordered_json& j, int depth);

Value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

static Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth / 2)
    fail(ErrorCode::limit_exceeded, "chat template context: JSON nested deeper than " +
                                        std::to_string(kMaxValueDepth / 2) + " levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(static_cast<std::int64_t>(j.get<std::uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return Value::floating(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json_at(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->set(Value::string(it.key()), from_json_at(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    default: return Value::none();
  }
}

}  // namespace vlm::jinja
