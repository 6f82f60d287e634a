// Values of the built-in Jinja2 interpreter. They model the Python objects a chat template sees when
// transformers renders it (str, int, float, bool, None, list, tuple, dict, jinja2's Undefined, namespace,
// macros, the loop object), with Python's semantics for truthiness, equality, ordering, str() and repr().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vlm::jinja {

class Value;
struct List;
struct Dict;
class Object;

enum class Kind { undefined, none, boolean, integer, floating, string, list, dict, object };

// Thrown by the interpreter for errors Python's jinja2 raises at render time; the caller adds the line.
struct RenderError {
  enum class Type { undefined, type, value, security, raised, limit };
  Type type;
  std::string message;
};
[[noreturn]] void throw_render(RenderError::Type type, std::string message);


// Arguments of a call: positional values, then keyword values in call order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

class Value {
 public:
  Value() = default;  // undefined
  static Value none();
  static Value boolean(bool b);
  static Value integer(std::int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(std::vector<Value> items, bool is_tuple = false);
  static Value dict(std::shared_ptr<Dict> d);
  static Value object(std::shared_ptr<Object> o);
  // An undefined value that remembers which name or attribute was missing, for the error message.
  static Value undefined(std::string hint);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_int() const { return kind_ == Kind::integer; }
  bool is_float() const { return kind_ == Kind::floating; }
  // Python's bool is an int: True + 1 == 2.
  bool is_number() const { return kind_ == Kind::integer || kind_ == Kind::floating || kind_ == Kind::boolean; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_object() const { return kind_ == Kind::object; }

  bool as_bool() const { return b_; }
  std::int64_t as_int() const { return kind_ == Kind::boolean ? (b_ ? 1 : 0) : i_; }
  double as_double() const {
    return kind_ == Kind::floating ? d_ : static_cast<double>(as_int());
  }
  const std::string& as_string() const { return *s_; }
  const List& as_list() const { return *list_; }
  const std::shared_ptr<List>& list_ptr() const { return list_; }
  const Dict& as_dict() const { return *dict_; }
  const std::shared_ptr<Dict>& dict_ptr() const { return dict_; }
  const std::shared_ptr<Object>& as_object() const { return obj_; }
  const std::string& undefined_hint() const { return *s_; }

  // Python truthiness (Undefined is false).
  bool truthy() const;
  // Python's type name, for error messages ("str", "dict", ...).
  std::string type_name() const;

 private:
  Kind kind_ = Kind::undefined;
  bool b_ = false;
  std::int64_t i_ = 0;
  double d_ = 0.0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Object> obj_;
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;
  // How str() shows lists that stand for other Python types: dict views print as "dict_items([...])" (prefix
  // and suffix), range objects as "range(0, 3)" (display).
  std::string display_prefix, display_suffix, display;
  int depth = 1;  // nesting depth, bounded so printing and comparing cannot overflow the stack
  // Python generators and iterators (what map, select, selectattr, unique, items and reverse return): always
  // true, no len(), not printable, and exhausted after one iteration. Their items are computed eagerly; an
  // error met while computing them is kept in `deferred` and raised only when the items are used, as Python's
  // lazy evaluation would.
  bool lazy = false;
  bool consumed = false;
  std::string lazy_name;  // "generator", "list_reverseiterator", ...
  std::shared_ptr<RenderError> deferred;
};

// Deepest nesting of lists and dicts a render may build or receive.
constexpr int kMaxValueDepth = 1000;
int nesting_depth(const Value& v);

// An insertion-ordered dict with Python key equality (1, 1.0 and True are the same key).
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  std::unordered_map<std::string, std::size_t> index;
  int depth = 1;

  const Value* find(const Value& key) const;
  void set(const Value& key, Value value);
  static std::string key_of(const Value& key);  // throws for unhashable keys
};

// Namespaces, macros, the loop object, builtin functions and bound methods.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  // Attribute lookup; an undefined Value when absent.
  virtual Value get_attribute(const std::string& name) const;
  virtual bool callable() const { return false; }
  virtual Value call(CallArgs& args);
  // What str() gives; repr() is the same for these objects.
  virtual std::string to_str() const;
};


// Python semantics.
bool py_equal(const Value& a, const Value& b);
// <0, 0, >0; throws a type error for incomparable values (e.g. str < int), like Python.
int py_compare(const Value& a, const Value& b);
std::string py_str(const Value& v);
std::string py_repr(const Value& v);
std::string py_float_repr(double d);
std::string py_repr_string(const std::string& s);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;  // used when has_indent
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// Python's json.dumps with the given options (the arguments transformers' tojson filter exposes).
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

// Throws vlm::Error limit_exceeded for JSON nested deeper than kMaxValueDepth / 2.
Value from_json(const nlohmann::ordered_json& j);

// UTF-8 helpers: strings are indexed, sliced and measured in code points, like Python's str.
std::vector<std::uint32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, std::uint32_t cp);
std::string utf8_encode(const std::vector<std::uint32_t>& cps, std::size_t begin, std::size_t end);
std::size_t utf8_length(std::string_view s);
bool py_isspace(std::uint32_t cp);

}  // namespace vlm::jinja
