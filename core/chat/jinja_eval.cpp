#include "chat/jinja_eval.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"

namespace vlm::jinja {
namespace {

using RT = RenderError::Type;

// FNV-1a, so that dispatching on filter/test/operator names compares integers instead of strings.
constexpr std::uint64_t H(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

[[noreturn]] void type_error(const std::string& m) { throw_render(RT::type, m); }
[[noreturn]] void undefined_error(const Value& v) {
  throw_render(RT::undefined, v.is_undefined() ? v.undefined_hint() : "value is undefined");
}

// ------------------------------------------------------------------ scopes and objects

// Variables of one frame. Frames hold a handful of names, so a vector scan beats hashing.
class Vars {
 public:
  Value& operator[](const std::string& name) {
    for (auto& kv : entries_)
      if (kv.first == name) return kv.second;
    entries_.emplace_back(name, Value());
    return entries_.back().second;
  }
  const Value* find(const std::string& name) const {
    for (const auto& kv : entries_)
      if (kv.first == name) return &kv.second;
    return nullptr;
  }
  std::size_t count(const std::string& name) const { return find(name) ? 1 : 0; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
};

struct Scope {
  std::shared_ptr<Scope> parent;
  Vars vars;

  explicit Scope(std::shared_ptr<Scope> p = nullptr) : parent(std::move(p)) {}
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      const Value* v = s->vars.find(name);
      if (v) return v;
    }
    return nullptr;
  }
};

class Function : public Object {
 public:
  Function(std::string name, std::function<Value(CallArgs&)> fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  bool callable() const override { return true; }
  Value call(CallArgs& args) override { return fn_(args); }
  std::string to_str() const override { return "<built-in function " + name_ + ">"; }

 private:
  std::string name_;
  std::function<Value(CallArgs&)> fn_;
};

Value make_function(std::string name, std::function<Value(CallArgs&)> fn) {
  return Value::object(std::make_shared<Function>(std::move(name), std::move(fn)));
}

class Namespace : public Object {
 public:
  std::shared_ptr<Dict> attrs = std::make_shared<Dict>();
  std::string type_name() const override { return "Namespace"; }
  Value get_attribute(const std::string& name) const override {
    const Value* v = attrs->find(Value::string(name));
    if (v) return *v;
    return Value::undefined("'Namespace object' has no attribute '" + name + "'");
  }
  std::string to_str() const override { return "<Namespace " + py_str(Value::dict(attrs)) + ">"; }
  static void check_name(const std::string& name) {
    if (!name.empty() && name[0] == '_')
      throw_render(RT::security, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                                     name + "'. Please rename the attribute.");
  }
};

class LoopObject : public Object {
 public:
  std::vector<Value> items;
  std::size_t index0 = 0;
  std::vector<Value> last_changed;
  bool has_changed = false;

  std::string type_name() const override { return "LoopContext"; }
  Value get_attribute(const std::string& name) const override {
    auto n = static_cast<std::int64_t>(items.size());
    auto i = static_cast<std::int64_t>(index0);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(1);
    if (name == "depth0") return Value::integer(0);
    if (name == "previtem")
      return i > 0 ? items[index0 - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem")
      return i + 1 < n ? items[index0 + 1] : Value::undefined("there is no next item");
    auto self = const_cast<LoopObject*>(this);
    if (name == "cycle")
      return make_function("cycle", [self](CallArgs& a) {
        if (a.positional.empty()) type_error("no items for cycling given");
        return a.positional[self->index0 % a.positional.size()];
      });
    if (name == "changed")
      return make_function("changed", [self](CallArgs& a) {
        Value now = Value::list(a.positional);
        if (self->has_changed && py_equal(now, Value::list(self->last_changed))) return Value::boolean(false);
        self->has_changed = true;
        self->last_changed = a.positional;
        return Value::boolean(true);
      });
    return Value::undefined("'LoopContext object' has no attribute '" + name + "'");
  }
  std::string to_str() const override {
    return "<LoopContext " + std::to_string(index0 + 1) + "/" + std::to_string(items.size()) + ">";
  }
};

// ------------------------------------------------------------------ argument helpers

struct Args {
  CallArgs& a;
  const char* fname;

  Value get(std::size_t index, const char* key, Value fallback = Value()) const {
    if (index < a.positional.size()) return a.positional[index];
    for (const auto& [k, v] : a.keywords)
      if (k == key) return v;
    return fallback;
  }
  bool has(std::size_t index, const char* key) const {
    if (index < a.positional.size()) return true;
    for (const auto& kv : a.keywords)
      if (kv.first == key) return true;
    return false;
  }
  void check(std::size_t max_positional, std::initializer_list<const char*> keys) const {
    if (a.positional.size() > max_positional)
      type_error(std::string(fname) + "() takes at most " + std::to_string(max_positional) + " argument(s) (" +
                 std::to_string(a.positional.size()) + " given)");
    for (const auto& kv : a.keywords) {
      bool ok = false;
      for (const char* k : keys) ok = ok || kv.first == k;
      if (!ok) type_error(std::string(fname) + "() got an unexpected keyword argument '" + kv.first + "'");
    }
  }
};

std::int64_t to_index(const Value& v, const char* what) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_undefined()) undefined_error(v);
  type_error(std::string(what) + " must be an integer, not " + v.type_name());
}

std::string require_string(const Value& v, const char* what) {
  if (v.is_string()) return v.as_string();
  if (v.is_undefined()) undefined_error(v);
  type_error(std::string(what) + " must be str, not " + v.type_name());
}

// ------------------------------------------------------------------ string helpers

using CodePoints = std::vector<std::uint32_t>;

bool is_cased(std::uint32_t cp) {
  auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

// Python's str.upper()/lower() use Unicode's full case mappings; utf8proc gives the simple ones. These are the
// unconditional one-to-many mappings of SpecialCasing.txt that occur in ordinary text, plus the final-sigma rule.
const char* full_upper(std::uint32_t cp) {
  switch (cp) {
    case 0xDF: return "SS";
    case 0x149: return "\u02BCN";
    case 0x1F0: return "J\u030C";
    case 0x587: return "\u0535\u0552";
    case 0xFB00: return "FF";
    case 0xFB01: return "FI";
    case 0xFB02: return "FL";
    case 0xFB03: return "FFI";
    case 0xFB04: return "FFL";
    case 0xFB05: case 0xFB06: return "ST";
    default: return nullptr;
  }
}

std::string map_case(const std::string& s, bool upper) {
  std::string out;
  auto cps = utf8_decode(s);
  for (std::size_t i = 0; i < cps.size(); ++i) {
    std::uint32_t cp = cps[i];
    if (upper) {
      if (const char* full = full_upper(cp)) {
        out += full;
        continue;
      }
      utf8_append(out, static_cast<std::uint32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))));
      continue;
    }
    if (cp == 0x130) {  // İ -> i + combining dot above
      out += "i\u0307";
      continue;
    }
    if (cp == 0x3A3) {  // Σ: final form after a cased letter when no cased letter follows
      bool before = i > 0 && is_cased(cps[i - 1]);
      bool after = i + 1 < cps.size() && is_cased(cps[i + 1]);
      utf8_append(out, before && !after ? 0x3C2 : 0x3C3);
      continue;
    }
    utf8_append(out, static_cast<std::uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
  }
  return out;
}

std::string py_title(const std::string& s) {
  std::string out;
  bool previous_cased = false;
  for (std::uint32_t cp : utf8_decode(s)) {
    std::uint32_t m = previous_cased ? static_cast<std::uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)))
                                     : static_cast<std::uint32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp)));
    utf8_append(out, m);
    previous_cased = is_cased(cp);
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  auto cps = utf8_decode(s);
  std::string out;
  for (std::size_t i = 0; i < cps.size(); ++i) {
    auto c = static_cast<utf8proc_int32_t>(cps[i]);
    utf8_append(out, static_cast<std::uint32_t>(i == 0 ? utf8proc_totitle(c) : utf8proc_tolower(c)));
  }
  return out;
}

std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  auto cps = utf8_decode(s);
  std::vector<std::uint32_t> set;
  bool whitespace = chars.is_none() || chars.is_undefined();
  if (!whitespace) set = utf8_decode(require_string(chars, "strip chars"));
  auto strip_me = [&](std::uint32_t cp) {
    return whitespace ? py_isspace(cp) : std::find(set.begin(), set.end(), cp) != set.end();
  };
  std::size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_me(cps[b])) ++b;
  if (right)
    while (e > b && strip_me(cps[e - 1])) --e;
  return utf8_encode(cps, b, e);
}

std::vector<Value> py_split(const std::string& s, const Value& sep, std::int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep.is_none() || sep.is_undefined()) {
    // CPython's split_whitespace / rsplit_whitespace: after maxsplit splits the rest is kept as it is.
    auto cps = utf8_decode(s);
    std::int64_t n = static_cast<std::int64_t>(cps.size());
    std::int64_t count = 0;
    if (!from_right) {
      std::int64_t i = 0;
      while (true) {
        while (i < n && py_isspace(cps[i])) ++i;
        if (i >= n) break;
        if (maxsplit >= 0 && count == maxsplit) {
          parts.push_back(utf8_encode(cps, static_cast<std::size_t>(i), static_cast<std::size_t>(n)));
          break;
        }
        std::int64_t j = i;
        while (j < n && !py_isspace(cps[j])) ++j;
        parts.push_back(utf8_encode(cps, static_cast<std::size_t>(i), static_cast<std::size_t>(j)));
        ++count;
        i = j;
      }
    } else {
      std::int64_t i = n - 1;
      std::vector<std::string> rev;
      while (true) {
        while (i >= 0 && py_isspace(cps[i])) --i;
        if (i < 0) break;
        if (maxsplit >= 0 && count == maxsplit) {
          rev.push_back(utf8_encode(cps, 0, static_cast<std::size_t>(i + 1)));
          break;
        }
        std::int64_t j = i;
        while (j >= 0 && !py_isspace(cps[j])) --j;
        rev.push_back(utf8_encode(cps, static_cast<std::size_t>(j + 1), static_cast<std::size_t>(i + 1)));
        ++count;
        i = j;
      }
      parts.assign(rev.rbegin(), rev.rend());
    }
  } else {
    std::string d = require_string(sep, "separator");
    if (d.empty()) throw_render(RT::value, "empty separator");
    if (!from_right) {
      std::size_t start = 0;
      std::int64_t splits = 0;
      while (maxsplit < 0 || splits < maxsplit) {
        std::size_t p = s.find(d, start);
        if (p == std::string::npos) break;
        parts.push_back(s.substr(start, p - start));
        start = p + d.size();
        ++splits;
      }
      parts.push_back(s.substr(start));
    } else {
      std::size_t end = s.size();
      std::int64_t splits = 0;
      std::vector<std::string> rev;
      while (maxsplit < 0 || splits < maxsplit) {
        if (end < d.size()) break;
        std::size_t p = s.rfind(d, end - d.size());
        if (p == std::string::npos) break;
        rev.push_back(s.substr(p + d.size(), end - p - d.size()));
        end = p;
        ++splits;
      }
      rev.push_back(s.substr(0, end));
      parts.assign(rev.rbegin(), rev.rend());
    }
  }
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, std::int64_t count) {
  std::string out;
  std::int64_t done = 0;
  if (old.empty()) {
    auto cps = utf8_decode(s);
    for (std::size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cps.size()) utf8_append(out, cps[i]);
    }
    return out;
  }
  std::size_t start = 0;
  while (count < 0 || done < count) {
    std::size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out += s.substr(start, p - start) + repl;
    start = p + old.size();
    ++done;
  }
  return out + s.substr(start);
}

bool is_line_break(std::uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || cp == 0x1c || cp == 0x1d || cp == 0x1e ||
         cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

std::vector<Value> py_splitlines(const std::string& s, bool keepends) {
  auto cps = utf8_decode(s);
  std::vector<Value> out;
  std::size_t i = 0;
  while (i < cps.size()) {
    std::size_t j = i;
    while (j < cps.size() && !is_line_break(cps[j])) ++j;
    std::size_t eol = j;
    if (j < cps.size()) {
      j += (cps[j] == '\r' && j + 1 < cps.size() && cps[j + 1] == '\n') ? 2 : 1;
    }
    out.push_back(Value::string(utf8_encode(cps, i, keepends ? j : eol)));
    i = j;
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Python slice index adjustment (PySlice_AdjustIndices) for a sequence of `length` items.
std::vector<std::size_t> slice_indices(std::int64_t length, const Value& start_v, const Value& stop_v,
                                       const Value& step_v) {
  std::int64_t step = step_v.is_none() || step_v.is_undefined() ? 1 : to_index(step_v, "slice step");
  if (step == 0) throw_render(RT::value, "slice step cannot be zero");
  auto adjust = [&](const Value& v, std::int64_t dflt) {
    if (v.is_none() || v.is_undefined()) return dflt;
    std::int64_t x = to_index(v, "slice index");
    if (x < 0) {
      x += length;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= length) {
      x = step < 0 ? length - 1 : length;
    }
    return x;
  };
  std::int64_t start = adjust(start_v, step < 0 ? length - 1 : 0);
  std::int64_t stop = adjust(stop_v, step < 0 ? -1 : length);
  std::vector<std::size_t> out;
  if (step > 0)
    for (std::int64_t i = start; i < stop; i += step) out.push_back(static_cast<std::size_t>(i));
  else
    for (std::int64_t i = start; i > stop; i += step) out.push_back(static_cast<std::size_t>(i));
  return out;
}

// Items of an iterable value, as Python's iter() gives them.
std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return {};
    case Kind::list: {
      List& l = *v.list_ptr();
      if (!l.lazy) return l.items;
      if (l.deferred) throw *l.deferred;
      if (l.consumed) return {};
      l.consumed = true;
      return std::move(l.items);
    }
    case Kind::dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.as_dict().items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::string: {
      std::vector<Value> chars;
      auto cps = utf8_decode(v.as_string());
      for (std::size_t i = 0; i < cps.size(); ++i) chars.push_back(Value::string(utf8_encode(cps, i, i + 1)));
      return chars;
    }
    default: type_error("'" + v.type_name() + "' object is not iterable");
  }
}

std::int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Kind::undefined: return 0;
    case Kind::string: return static_cast<std::int64_t>(utf8_length(v.as_string()));
    case Kind::list:
      if (v.as_list().lazy) type_error("object of type '" + v.type_name() + "' has no len()");
      return static_cast<std::int64_t>(v.as_list().items.size());
    case Kind::dict: return static_cast<std::int64_t>(v.as_dict().items.size());
    default: type_error("object of type '" + v.type_name() + "' has no len()");
  }
}

// Runs `produce` (which appends to the vector) the way a Python generator would be consumed later: items made
// before an error are kept and the error is deferred until the result is used.
Value make_lazy(const std::string& name, const std::function<void(std::vector<Value>&)>& produce) {
  std::vector<Value> items;
  std::shared_ptr<RenderError> deferred;
  try {
    produce(items);
  } catch (const RenderError& e) {
    deferred = std::make_shared<RenderError>(e);
  }
  Value v = Value::list(std::move(items));
  v.list_ptr()->lazy = true;
  v.list_ptr()->lazy_name = name;
  v.list_ptr()->deferred = std::move(deferred);
  return v;
}

Value lower_if_string(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(map_case(v.as_string(), false));
  return v;
}

// ------------------------------------------------------------------ arithmetic

Value arith(const std::string& op, const Value& a, const Value& b) {
  const std::uint64_t oh = H(op);
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  auto unsupported_operands = [&]() -> Value {
    type_error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  // Generators support no arithmetic.
  if ((a.is_list() && a.as_list().lazy) || (b.is_list() && b.as_list().lazy)) return unsupported_operands();
  if (a.is_number() && b.is_number()) {
    bool floating = a.is_float() || b.is_float();
    // Python integers do not overflow; vlmrt's are 64-bit, so an overflow is an error rather than a wrong number.
    auto checked = [&](bool overflow, std::int64_t result) {
      if (overflow) throw_render(RT::limit, "integer overflow in '" + op + "' (beyond 64 bits)");
      return Value::integer(result);
    };
    std::int64_t r = 0;
    if (oh == H("+")) {
      if (floating) return Value::floating(a.as_double() + b.as_double());
      bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
      return checked(overflow, r);
    }
    if (oh == H("-")) {
      if (floating) return Value::floating(a.as_double() - b.as_double());
      bool overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
      return checked(overflow, r);
    }
    if (oh == H("*")) {
      if (floating) return Value::floating(a.as_double() * b.as_double());
      bool overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
      return checked(overflow, r);
    }
    if (oh == H("/")) {
      if (b.as_double() == 0.0) throw_render(RT::value, "division by zero");
      return Value::floating(a.as_double() / b.as_double());
    }
    if (oh == H("//") || oh == H("%")) {
      if (b.as_double() == 0.0) throw_render(RT::value, "integer division or modulo by zero");
      if (!floating) {
        std::int64_t x = a.as_int(), y = b.as_int();
        if (x == INT64_MIN && y == -1) throw_render(RT::limit, "integer overflow in '" + op + "' (beyond 64 bits)");
        std::int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          q -= 1;
          r += y;
        }
        return Value::integer(oh == H("//") ? q : r);
      }
      // CPython's float_divmod.
      double x = a.as_double(), y = b.as_double();
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0.0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      double floordiv;
      if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, x / y);
      }
      return Value::floating(oh == H("%") ? mod : floordiv);
    }
    if (oh == H("**")) {
      if (!floating && b.as_int() >= 0) {
        std::int64_t result = 1, base = a.as_int();
        for (std::int64_t e = b.as_int(); e > 0; --e) {
          if (__builtin_mul_overflow(result, base, &result))
            throw_render(RT::limit, "integer overflow in '**' (beyond 64 bits)");
          if (result == 0 || result == 1) break;  // 0**n, 1**n
        }
        return Value::integer(result);
      }
      return Value::floating(std::pow(a.as_double(), b.as_double()));
    }
  }
  if (oh == H("+")) {
    if (a.is_string() && b.is_string()) return Value::string(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
      std::vector<Value> items = a.as_list().items;
      items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
      return Value::list(std::move(items), a.as_list().is_tuple);
    }
    if (a.is_string()) type_error("can only concatenate str (not \"" + b.type_name() + "\") to str");
    if (a.is_list()) type_error("can only concatenate list (not \"" + b.type_name() + "\") to list");
    return unsupported_operands();
  }
  if (oh == H("*")) {
    const Value* seq = a.is_string() || a.is_list() ? &a : (b.is_string() || b.is_list()) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq && (count->is_int() || count->is_bool())) {
      std::int64_t n = std::max<std::int64_t>(0, count->as_int());
      if (seq->is_string()) {
        if (n * static_cast<std::int64_t>(seq->as_string().size()) > (std::int64_t(64) << 20))
          throw_render(RT::limit, "string repetition result is too large");
        std::string out;
        for (std::int64_t i = 0; i < n; ++i) out += seq->as_string();
        return Value::string(std::move(out));
      }
      std::vector<Value> items;
      for (std::int64_t i = 0; i < n; ++i)
        items.insert(items.end(), seq->as_list().items.begin(), seq->as_list().items.end());
      return Value::list(std::move(items), seq->as_list().is_tuple);
    }
  }
  if (oh == H("%") && a.is_string()) {
    // Only the cases without conversion specifiers: Python returns the string for a mapping-like right operand
    // (list, dict) and raises for anything else.
    if (a.as_string().find('%') == std::string::npos) {
      if ((b.is_list() && !b.as_list().is_tuple && !b.as_list().lazy) || b.is_dict()) return a;
      if (!(b.is_list() && b.as_list().is_tuple && b.as_list().items.empty()))
        type_error("not all arguments converted during string formatting");
      return a;
    }
    throw_render(RT::type, "printf-style string formatting ('...' % value) is not supported; use ~ or format()");
  }
  return unsupported_operands();
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::undefined: return false;
    case Kind::string:
      if (!item.is_string())
        type_error("'in <string>' requires string as left operand, not " + item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Kind::list:
      if (container.as_list().lazy) {
        for (const auto& v : iterate(container))
          if (py_equal(v, item)) return true;
        return false;
      }
      for (const auto& v : container.as_list().items)
        if (py_equal(v, item)) return true;
      return false;
    case Kind::dict:
      if (item.is_list() && !item.as_list().is_tuple) type_error("unhashable type: 'list'");
      if (item.is_dict()) type_error("unhashable type: 'dict'");
      return container.as_dict().find(item) != nullptr;
    default: type_error("argument of type '" + container.type_name() + "' is not iterable");
  }
}

bool compare_op(const std::string& op, const Value& a, const Value& b) {
  const std::uint64_t oh = H(op);
  if (oh == H("==")) return py_equal(a, b);
  if (oh == H("!=")) return !py_equal(a, b);
  if (oh == H("in")) return contains(b, a);
  if (oh == H("notin")) return !contains(b, a);
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  int c;
  try {
    c = py_compare(a, b);
  } catch (RenderError& e) {
    e.message = "'" + op + "' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'";
    throw;
  }
  if (oh == H("<")) return c < 0;
  if (oh == H(">")) return c > 0;
  if (oh == H("<=")) return c <= 0;
  return c >= 0;
}

// ------------------------------------------------------------------ the interpreter

enum class Flow { normal, break_, continue_ };

bool references_name(const Expr* e, const std::string& name);
bool references_name(const Body& body, const std::string& name);

bool references_name(const Expr* e, const std::string& name) {
  if (!e) return false;
  if (e->type == ExprType::name && e->name == name) return true;
  for (const auto& c : e->children)
    if (references_name(c.get(), name)) return true;
  for (const auto& kv : e->kwargs)
    if (references_name(kv.second.get(), name)) return true;
  return false;
}

bool references_name(const Body& body, const std::string& name) {
  for (const auto& n : body) {
    if (references_name(n->target.get(), name) || references_name(n->expr.get(), name) ||
        references_name(n->condition.get(), name) || references_name(n->body, name) ||
        references_name(n->else_body, name))
      return true;
    for (const auto& br : n->branches)
      if (references_name(br.first.get(), name) || references_name(br.second, name)) return true;
    for (const auto& p : n->params)
      if (references_name(p.default_value.get(), name)) return true;
    for (const auto& a : n->assignments)
      if (references_name(a.second.get(), name)) return true;
  }
  return false;
}

class Interpreter;

class Macro : public Object {
 public:
  Macro(Interpreter* interp, const Node* node, std::shared_ptr<Scope> closure)
      : interp_(interp), node_(node), closure_(std::move(closure)) {
    catch_varargs_ = references_name(node->body, "varargs");
    catch_kwargs_ = references_name(node->body, "kwargs");
  }
  std::string type_name() const override { return "Macro"; }
  bool callable() const override { return true; }
  Value call(CallArgs& args) override;
  std::string to_str() const override { return "<Macro '" + node_->text + "'>"; }
  // The closure scope holds the macro itself; dropping it at the end of a render breaks that cycle.
  void release() { closure_.reset(); }

 private:
  Interpreter* interp_;
  const Node* node_;
  std::shared_ptr<Scope> closure_;
  bool catch_varargs_ = false;
  bool catch_kwargs_ = false;
};

class Interpreter {
 public:
  Interpreter(const Program& program, const std::string& name, const RenderOptions& options)
      : program_(program), name_(name), options_(options) {}

  std::string run(const Value& context) {
    auto globals = std::make_shared<Scope>();
    install_globals(*globals);
    auto ctx = std::make_shared<Scope>(globals);
    if (context.is_dict())
      for (const auto& [k, v] : context.as_dict().items)
        if (k.is_string()) ctx->vars[k.as_string()] = v;
    auto root = std::make_shared<Scope>(ctx);
    std::string result;
    out_ = &result;
    // Macros (whose closure holds them) and namespaces (which may hold themselves) can form reference cycles;
    // nothing outlives the render, so cut them when it ends, however it ends.
    struct CycleBreaker {
      Interpreter& in;
      ~CycleBreaker() {
        for (auto& m : in.macros_) m->release();
        for (auto& ns : in.namespaces_) {
          ns->attrs->items.clear();
          ns->attrs->index.clear();
        }
      }
    } breaker{*this};
    try {
      exec_body(program_.body, root);
    } catch (const RenderError& e) {
      std::string where = name_ + " line " + std::to_string(line_) + ": ";
      switch (e.type) {
        case RT::raised: fail(ErrorCode::invalid_argument, where + "the chat template raised an error: " + e.message);
        case RT::limit: fail(ErrorCode::limit_exceeded, where + e.message);
        case RT::security:
          fail(ErrorCode::invalid_argument, where + "operation not allowed in a chat template: " + e.message);
        case RT::undefined: fail(ErrorCode::invalid_argument, where + "undefined value: " + e.message);
        default: fail(ErrorCode::invalid_argument, where + e.message);
      }
    }
    return result;
  }

  Value call_macro(const Node& node, const std::shared_ptr<Scope>& closure, CallArgs& args, bool catch_varargs,
                   bool catch_kwargs) {
    if (++depth_ > options_.max_call_depth) throw_render(RT::limit, "macro calls nested too deeply");
    auto scope = std::make_shared<Scope>(closure);
    const auto& params = node.params;
    std::vector<Value> extra;
    for (std::size_t i = 0; i < args.positional.size(); ++i) {
      if (i < params.size()) scope->vars[params[i].name] = args.positional[i];
      else extra.push_back(args.positional[i]);
    }
    if (!extra.empty() && !catch_varargs)
      type_error("macro '" + node.text + "' takes not more than " + std::to_string(params.size()) + " argument(s)");
    auto kwargs = std::make_shared<Dict>();
    for (auto& [k, v] : args.keywords) {
      bool is_param = false;
      for (std::size_t i = 0; i < params.size(); ++i) {
        if (params[i].name != k) continue;
        if (i < args.positional.size()) type_error("macro '" + node.text + "' got multiple values for argument '" + k + "'");
        is_param = true;
        scope->vars[k] = v;
      }
      if (!is_param) {
        if (!catch_kwargs) type_error("macro '" + node.text + "' takes no keyword argument '" + k + "'");
        kwargs->set(Value::string(k), v);
      }
    }
    for (const auto& p : params) {
      if (scope->vars.count(p.name)) continue;
      scope->vars[p.name] = p.default_value ? eval(*p.default_value, scope)
                                            : Value::undefined("parameter '" + p.name + "' was not provided");
    }
    scope->vars["varargs"] = Value::list(std::move(extra), true);
    scope->vars["kwargs"] = Value::dict(kwargs);
    std::string buffer;
    capture(buffer, [&] { exec_body(node.body, scope); });
    --depth_;
    return Value::string(std::move(buffer));
  }

 private:
  template <typename F>
  void capture(std::string& buffer, F&& body) {
    std::string* saved = out_;
    out_ = &buffer;
    ++capture_depth_;
    try {
      body();
    } catch (...) {
      out_ = saved;
      --capture_depth_;
      throw;
    }
    out_ = saved;
    --capture_depth_;
  }

  void write(const std::string& s) {
    out_->append(s);
    if (out_->size() > options_.max_output_bytes)
      throw_render(RT::limit, "rendered text exceeds " + std::to_string(options_.max_output_bytes) + " bytes");
  }

  // ---------------------------------------------------------------- statements

  Flow exec_body(const Body& body, const std::shared_ptr<Scope>& scope) {
    for (const auto& node : body) {
      Flow f = exec(*node, scope);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Flow exec(const Node& n, const std::shared_ptr<Scope>& scope) {
    line_ = n.line;
    switch (n.type) {
      case NodeType::text: write(n.text); return Flow::normal;
      case NodeType::print: write(py_str(eval(*n.expr, scope))); return Flow::normal;
      case NodeType::if_:
        for (const auto& [cond, body] : n.branches)
          if (eval(*cond, scope).truthy()) return exec_body(body, scope);
        return exec_body(n.else_body, scope);
      case NodeType::for_: return exec_for(n, scope);
      case NodeType::set: assign(*n.target, eval(*n.expr, scope), scope); return Flow::normal;
      case NodeType::set_block: {
        std::string buffer;
        capture(buffer, [&] { exec_body(n.body, scope); });
        Value v = Value::string(std::move(buffer));
        if (n.expr) v = eval_filter_chain(*n.expr, v, scope);
        assign(*n.target, v, scope);
        return Flow::normal;
      }
      case NodeType::macro: {
        auto macro = std::make_shared<Macro>(this, &n, scope);
        macros_.push_back(macro);
        scope->vars[n.text] = Value::object(macro);
        return Flow::normal;
      }
      case NodeType::filter_block: {
        std::string buffer;
        capture(buffer, [&] { exec_body(n.body, scope); });
        write(py_str(eval_filter_chain(*n.expr, Value::string(std::move(buffer)), scope)));
        return Flow::normal;
      }
      case NodeType::with: {
        auto inner = std::make_shared<Scope>(scope);
        for (const auto& [target, value] : n.assignments) assign(*target, eval(*value, scope), inner);
        return exec_body(n.body, inner);
      }
      case NodeType::break_: return Flow::break_;
      case NodeType::continue_: return Flow::continue_;
      case NodeType::generation: {
        std::size_t begin = out_->size();
        Flow f = exec_body(n.body, scope);
        if (options_.generation_spans && capture_depth_ == 0)
          options_.generation_spans->emplace_back(begin, out_->size());
        return f;
      }
    }
    return Flow::normal;
  }

  Flow exec_for(const Node& n, const std::shared_ptr<Scope>& scope) {
    Value iterable = eval(*n.expr, scope);
    std::vector<Value> items = iterate(iterable);
    if (n.condition) {
      std::vector<Value> kept;
      for (auto& item : items) {
        auto probe = std::make_shared<Scope>(scope);
        assign(*n.target, item, probe);
        if (eval(*n.condition, probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(n.else_body, scope);
    auto loop = std::make_shared<LoopObject>();
    loop->items = items;
    Value loop_value = Value::object(loop);
    for (std::size_t i = 0; i < items.size(); ++i) {
      loop->index0 = i;
      auto iteration = std::make_shared<Scope>(scope);
      iteration->vars["loop"] = loop_value;
      assign(*n.target, items[i], iteration);
      line_ = n.line;
      Flow f = exec_body(n.body, iteration);
      if (f == Flow::break_) break;
    }
    return Flow::normal;
  }

  void assign(const Expr& target, const Value& value, const std::shared_ptr<Scope>& scope) {
    if (target.type == ExprType::name) {
      scope->vars[target.name] = value;
      return;
    }
    if (target.type == ExprType::ns_ref) {
      const Value* ns = scope->find(target.name);
      auto* namespace_obj = ns && ns->is_object() ? dynamic_cast<Namespace*>(ns->as_object().get()) : nullptr;
      if (!namespace_obj) type_error("cannot assign attribute on non-namespace object '" + target.name + "'");
      Namespace::check_name(target.attr);
      namespace_obj->attrs->set(Value::string(target.attr), value);
      return;
    }
    // Tuple unpacking.
    std::vector<Value> items = iterate(value);
    if (items.size() != target.children.size())
      throw_render(RT::value, items.size() > target.children.size()
                                  ? "too many values to unpack (expected " + std::to_string(target.children.size()) + ")"
                                  : "not enough values to unpack (expected " + std::to_string(target.children.size()) +
                                        ", got " + std::to_string(items.size()) + ")");
    for (std::size_t i = 0; i < items.size(); ++i) assign(*target.children[i], items[i], scope);
  }

  // ---------------------------------------------------------------- expressions

  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
    line_ = e.line;
    switch (e.type) {
      case ExprType::constant: return e.constant;
      case ExprType::name: {
        const Value* v = scope->find(e.name);
        return v ? *v : Value::undefined("'" + e.name + "' is undefined");
      }
      case ExprType::ns_ref: type_error("namespace attribute reference outside an assignment");
      case ExprType::tuple:
      case ExprType::list: {
        std::vector<Value> items;
        items.reserve(e.children.size());
        for (const auto& c : e.children) items.push_back(eval(*c, scope));
        return Value::list(std::move(items), e.type == ExprType::tuple);
      }
      case ExprType::dict: {
        auto d = std::make_shared<Dict>();
        for (std::size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value k = eval(*e.children[i], scope);
          d->set(k, eval(*e.children[i + 1], scope));
        }
        return Value::dict(d);
      }
      case ExprType::getattr: {
        Value obj = eval(*e.children[0], scope);
        line_ = e.line;
        return get_attr(obj, e.name);
      }
      case ExprType::getitem: {
        Value obj = eval(*e.children[0], scope);
        const Expr& key = *e.children[1];
        if (key.type == ExprType::slice) {
          Value start = key.children[0] ? eval(*key.children[0], scope) : Value::none();
          Value stop = key.children[1] ? eval(*key.children[1], scope) : Value::none();
          Value step = key.children[2] ? eval(*key.children[2], scope) : Value::none();
          line_ = e.line;
          return slice(obj, start, stop, step);
        }
        Value k = eval(key, scope);
        line_ = e.line;
        return get_item(obj, k);
      }
      case ExprType::slice: type_error("slice outside a subscript");
      case ExprType::call: {
        Value callee = eval(*e.children[0], scope);
        CallArgs args = eval_args(e, 1, scope);
        line_ = e.line;
        return call(callee, args);
      }
      case ExprType::filter: {
        Value subject = eval(*e.children[0], scope);
        return apply_filter(e, subject, scope);
      }
      case ExprType::test: {
        Value subject = eval(*e.children[0], scope);
        CallArgs args = eval_args(e, 1, scope);
        line_ = e.line;
        return Value::boolean(apply_test(e.name, subject, args));
      }
      case ExprType::not_: return Value::boolean(!eval(*e.children[0], scope).truthy());
      case ExprType::neg:
      case ExprType::pos: {
        Value v = eval(*e.children[0], scope);
        if (v.is_undefined()) undefined_error(v);
        if (!v.is_number()) type_error("bad operand type for unary " + std::string(e.type == ExprType::neg ? "-" : "+") +
                                       ": '" + v.type_name() + "'");
        if (e.type == ExprType::pos) return v.is_float() ? v : Value::integer(v.as_int());
        if (!v.is_float() && v.as_int() == INT64_MIN) throw_render(RT::limit, "integer overflow in unary '-'");
        return v.is_float() ? Value::floating(-v.as_double()) : Value::integer(-v.as_int());
      }
      case ExprType::and_: {
        Value a = eval(*e.children[0], scope);
        return a.truthy() ? eval(*e.children[1], scope) : a;
      }
      case ExprType::or_: {
        Value a = eval(*e.children[0], scope);
        return a.truthy() ? a : eval(*e.children[1], scope);
      }
      case ExprType::cond: {
        if (eval(*e.children[0], scope).truthy()) return eval(*e.children[1], scope);
        if (e.children[2]) return eval(*e.children[2], scope);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      }
      case ExprType::binary: {
        Value a = eval(*e.children[0], scope);
        Value b = eval(*e.children[1], scope);
        line_ = e.line;
        return arith(e.name, a, b);
      }
      case ExprType::concat: {
        std::string s;
        for (const auto& c : e.children) s += py_str(eval(*c, scope));
        return Value::string(std::move(s));
      }
      case ExprType::compare: {
        Value left = eval(*e.children[0], scope);
        for (std::size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.children[i + 1], scope);
          line_ = e.line;
          if (!compare_op(e.ops[i], left, right)) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
    }
    return Value();
  }

  CallArgs eval_args(const Expr& e, std::size_t first, const std::shared_ptr<Scope>& scope) {
    CallArgs args;
    for (std::size_t i = first; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i], scope));
    for (const auto& [k, v] : e.kwargs) args.keywords.emplace_back(k, eval(*v, scope));
    return args;
  }

  Value call(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) undefined_error(callee);
    if (!callee.is_object() || !callee.as_object()->callable())
      type_error("'" + callee.type_name() + "' object is not callable");
    return callee.as_object()->call(args);
  }

  // Evaluates a subject-less filter chain (from {% filter %} or {% set x | f %}) on `subject`.
  Value eval_filter_chain(const Expr& chain, const Value& subject, const std::shared_ptr<Scope>& scope) {
    Value inner = chain.children[0] ? eval_filter_chain(*chain.children[0], subject, scope) : subject;
    return apply_filter(chain, inner, scope);
  }

  // ---------------------------------------------------------------- attribute and item access

  Value get_attr(const Value& obj, const std::string& name) {
    switch (obj.kind()) {
      case Kind::undefined: undefined_error(obj);
      case Kind::string: {
        Value m = string_method(obj, name);
        if (!m.is_undefined()) return m;
        return Value::undefined("'str object' has no attribute '" + name + "'");
      }
      case Kind::dict: {
        Value m = dict_method(obj, name);
        if (!m.is_undefined()) return m;
        const Value* v = obj.as_dict().find(Value::string(name));
        return v ? *v : Value::undefined("'dict object' has no attribute '" + name + "'");
      }
      case Kind::list: {
        if (obj.as_list().lazy) return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
        Value m = list_method(obj, name);
        if (!m.is_undefined()) return m;
        return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
      }
      case Kind::object: return obj.as_object()->get_attribute(name);
      default: return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
    }
  }

  Value get_item(const Value& obj, const Value& key) {
    switch (obj.kind()) {
      case Kind::undefined: undefined_error(obj);
      case Kind::dict: {
        const Value* v = obj.as_dict().find(key);
        if (v) return *v;
        break;
      }
      case Kind::list:
        if (obj.as_list().lazy) return Value::undefined("'" + obj.type_name() + "' object is not subscriptable");
        if (key.is_int() || key.is_bool()) {
          const auto& items = obj.as_list().items;
          std::int64_t i = key.as_int();
          if (i < 0) i += static_cast<std::int64_t>(items.size());
          if (i >= 0 && i < static_cast<std::int64_t>(items.size())) return items[static_cast<std::size_t>(i)];
          return Value::undefined("'" + obj.type_name() + " object' has no element " + py_str(key));
        }
        break;
      case Kind::string:
        if (key.is_int() || key.is_bool()) {
          auto cps = utf8_decode(obj.as_string());
          std::int64_t i = key.as_int();
          if (i < 0) i += static_cast<std::int64_t>(cps.size());
          if (i >= 0 && i < static_cast<std::int64_t>(cps.size()))
            return Value::string(utf8_encode(cps, static_cast<std::size_t>(i), static_cast<std::size_t>(i) + 1));
          return Value::undefined("'str object' has no element " + py_str(key));
        }
        break;
      default: break;
    }
    // jinja2 falls back to attribute lookup for string keys.
    if (key.is_string()) {
      if (obj.is_dict()) {
        Value m = dict_method(obj, key.as_string());
        if (!m.is_undefined()) return m;
      } else if (obj.kind() != Kind::none) {
        return get_attr(obj, key.as_string());
      }
    }
    return Value::undefined("'" + obj.type_name() + " object' has no element " + py_repr(key));
  }

  Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
    if (obj.is_undefined()) undefined_error(obj);
    if (obj.is_list() && !obj.as_list().lazy) {
      const auto& items = obj.as_list().items;
      std::vector<Value> out;
      for (std::size_t i : slice_indices(static_cast<std::int64_t>(items.size()), start, stop, step)) out.push_back(items[i]);
      return Value::list(std::move(out), obj.as_list().is_tuple);
    }
    if (obj.is_string()) {
      auto cps = utf8_decode(obj.as_string());
      std::string out;
      for (std::size_t i : slice_indices(static_cast<std::int64_t>(cps.size()), start, stop, step)) utf8_append(out, cps[i]);
      return Value::string(std::move(out));
    }
    return Value::undefined("'" + obj.type_name() + " object' is not subscriptable");
  }

  // ---------------------------------------------------------------- methods of str, dict, list

  Value string_method(const Value& self, const std::string& name) {
    static const std::unordered_set<std::string> known = {
        "upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines",
        "startswith", "endswith", "replace", "find", "rfind", "index", "rindex", "count", "join", "removeprefix",
        "removesuffix", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "isnumeric", "isdecimal",
        "format", "casefold", "center", "encode", "expandtabs", "format_map", "isascii", "isidentifier",
        "isprintable", "istitle", "ljust", "maketrans", "partition", "rjust", "rpartition", "swapcase", "translate",
        "zfill"};
    if (!known.count(name)) return Value();
    auto fn = [&](std::function<Value(Args)> body) {
      std::string n = name;
      return make_function(name, [body, n](CallArgs& a) { return body(Args{a, n.c_str()}); });
    };
    if (name == "upper" || name == "lower")
      return fn([self, name](Args a) { a.check(0, {}); return Value::string(map_case(self.as_string(), name == "upper")); });
    if (name == "title") return fn([self](Args a) { a.check(0, {}); return Value::string(py_title(self.as_string())); });
    if (name == "capitalize") return fn([self](Args a) { a.check(0, {}); return Value::string(py_capitalize(self.as_string())); });
    if (name == "strip" || name == "lstrip" || name == "rstrip")
      return fn([self, name](Args a) {
        const std::string& s = self.as_string();
        a.check(1, {});
        return Value::string(py_strip(s, a.get(0, "chars", Value::none()), name != "rstrip", name != "lstrip"));
      });
    if (name == "split" || name == "rsplit")
      return fn([self, name](Args a) {
        const std::string& s = self.as_string();
        a.check(2, {"sep", "maxsplit"});
        Value max = a.get(1, "maxsplit", Value::integer(-1));
        return Value::list(py_split(s, a.get(0, "sep", Value::none()), to_index(max, "maxsplit"), name == "rsplit"));
      });
    if (name == "splitlines")
      return fn([self](Args a) {
        const std::string& s = self.as_string();
        a.check(1, {"keepends"});
        return Value::list(py_splitlines(s, a.get(0, "keepends", Value::boolean(false)).truthy()));
      });
    if (name == "startswith" || name == "endswith")
      return fn([self, name](Args a) {
        const std::string& s = self.as_string();
        a.check(3, {});
        Value what = a.get(0, "prefix");
        auto cps = utf8_decode(s);
        auto range = slice_indices(static_cast<std::int64_t>(cps.size()), a.get(1, "start", Value::none()),
                                   a.get(2, "end", Value::none()), Value::none());
        std::string sub = range.empty() ? std::string() : utf8_encode(cps, range.front(), range.back() + 1);
        std::vector<Value> options = what.is_list() && what.as_list().is_tuple ? what.as_list().items
                                                                                : std::vector<Value>{what};
        for (const auto& o : options) {
          std::string p = require_string(o, (name + " argument").c_str());
          bool hit = name == "startswith" ? sub.compare(0, p.size(), p) == 0 && sub.size() >= p.size()
                                          : sub.size() >= p.size() && sub.compare(sub.size() - p.size(), p.size(), p) == 0;
          if (hit) return Value::boolean(true);
        }
        return Value::boolean(false);
      });
    if (name == "replace")
      return fn([self](Args a) {
        const std::string& s = self.as_string();
        a.check(3, {"count"});
        return Value::string(py_replace(s, require_string(a.get(0, "old"), "replace old"),
                                        require_string(a.get(1, "new"), "replace new"),
                                        to_index(a.get(2, "count", Value::integer(-1)), "count")));
      });
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count")
      return fn([self, name](Args a) {
        const std::string& s = self.as_string();
        a.check(1, {});
        std::string sub = require_string(a.get(0, "sub"), (name + " argument").c_str());
        if (name == "count") {
          if (sub.empty()) return Value::integer(static_cast<std::int64_t>(utf8_length(s)) + 1);
          std::int64_t n = 0;
          for (std::size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
          return Value::integer(n);
        }
        std::size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
        if (p == std::string::npos) {
          if (name == "index" || name == "rindex") throw_render(RT::value, "substring not found");
          return Value::integer(-1);
        }
        return Value::integer(static_cast<std::int64_t>(utf8_length(std::string_view(s).substr(0, p))));
      });
    if (name == "join")
      return fn([self](Args a) {
        const std::string& s = self.as_string();
        a.check(1, {});
        std::string out;
        bool first = true;
        for (const auto& item : iterate(a.get(0, "iterable"))) {
          if (!first) out += s;
          first = false;
          out += require_string(item, "sequence item");
        }
        return Value::string(std::move(out));
      });
    if (name == "removeprefix" || name == "removesuffix")
      return fn([self, name](Args a) {
        const std::string& s = self.as_string();
        a.check(1, {});
        std::string x = require_string(a.get(0, "affix"), name.c_str());
        if (name == "removeprefix" && s.compare(0, x.size(), x) == 0 && s.size() >= x.size())
          return Value::string(s.substr(x.size()));
        if (name == "removesuffix" && !x.empty() && s.size() >= x.size() &&
            s.compare(s.size() - x.size(), x.size(), x) == 0)
          return Value::string(s.substr(0, s.size() - x.size()));
        return Value::string(s);
      });
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
        name == "isupper" || name == "isnumeric" || name == "isdecimal")
      return fn([self, name](Args a) {
        const std::string& s = self.as_string();
        a.check(0, {});
        auto cps = utf8_decode(s);
        if (cps.empty()) return Value::boolean(false);
        if (name == "islower" || name == "isupper") {
          bool any_cased = false;
          for (auto cp : cps) {
            auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
            if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) {
              if (name == "islower") return Value::boolean(false);
              any_cased = true;
            } else if (c == UTF8PROC_CATEGORY_LL) {
              if (name == "isupper") return Value::boolean(false);
              any_cased = true;
            }
          }
          return Value::boolean(any_cased);
        }
        for (auto cp : cps) {
          auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
          bool letter = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
          bool digit = c == UTF8PROC_CATEGORY_ND;
          bool numeric = digit || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
          bool ok = name == "isdigit" || name == "isdecimal" ? digit
                    : name == "isnumeric"                    ? numeric
                    : name == "isalpha"                      ? letter
                    : name == "isalnum"                      ? (letter || numeric)
                                                             : py_isspace(cp);
          if (!ok) return Value::boolean(false);
        }
        return Value::boolean(true);
      });
    if (name == "format")
      return fn([self](Args a) {
        const std::string& s = self.as_string();
        // str.format with plain "{}", "{0}" and "{name}" fields (no conversions or format specs).
        std::string out;
        std::size_t auto_index = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
          char c = s[i];
          if (c == '{' && i + 1 < s.size() && s[i + 1] == '{') { out += '{'; ++i; continue; }
          if (c == '}' && i + 1 < s.size() && s[i + 1] == '}') { out += '}'; ++i; continue; }
          if (c != '{') { out += c; continue; }
          std::size_t close = s.find('}', i);
          if (close == std::string::npos) throw_render(RT::value, "Single '{' encountered in format string");
          std::string field = s.substr(i + 1, close - i - 1);
          if (field.find_first_of(":!.[") != std::string::npos)
            throw_render(RT::type, "str.format fields with conversions or format specs are not supported: {" + field + "}");
          Value v;
          if (field.empty()) {
            v = a.get(auto_index++, "");
          } else if (std::all_of(field.begin(), field.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
            v = a.get(static_cast<std::size_t>(std::stoul(field)), "");
          } else {
            v = a.get(static_cast<std::size_t>(-1), field.c_str());
          }
          if (v.is_undefined() && !a.has(static_cast<std::size_t>(-1), field.c_str()) && !field.empty() &&
              !std::isdigit(static_cast<unsigned char>(field[0])))
            throw_render(RT::value, "str.format: missing argument '" + field + "'");
          out += py_str(v);
          i = close;
        }
        return Value::string(std::move(out));
      });
    static const std::unordered_set<std::string> other = {
        "casefold", "center", "encode", "expandtabs", "format_map", "isascii", "isidentifier", "isprintable",
        "istitle", "ljust", "maketrans", "partition", "rjust", "rpartition", "swapcase", "translate", "zfill"};
    if (other.count(name))
      return make_function(name, [name](CallArgs&) -> Value {
        throw_render(RT::type, "str." + name + "() is not supported by vlmrt's chat template interpreter");
      });
    return Value();
  }

  Value dict_method(const Value& self, const std::string& name) {
    auto d = self.dict_ptr();
    if (name == "items" || name == "keys" || name == "values")
      return make_function(name, [d, name](CallArgs& ca) {
        Args{ca, name.c_str()}.check(0, {});
        std::vector<Value> out;
        for (const auto& [k, v] : d->items)
          out.push_back(name == "items" ? Value::list({k, v}, true) : name == "keys" ? k : v);
        Value view = Value::list(std::move(out));
        view.list_ptr()->display_prefix = "dict_" + name + "(";
        view.list_ptr()->display_suffix = ")";
        return view;
      });
    if (name == "get")
      return make_function(name, [d](CallArgs& ca) {
        Args a{ca, "get"};
        a.check(2, {});
        const Value* v = d->find(a.get(0, "key"));
        return v ? *v : a.get(1, "default", Value::none());
      });
    if (name == "copy")
      return make_function(name, [d](CallArgs&) { return Value::dict(std::make_shared<Dict>(*d)); });
    if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" || name == "clear")
      return make_function(name, [name](CallArgs&) -> Value {
        throw_render(RT::security, "dict." + name + "() modifies a value, which the sandbox forbids");
      });
    return Value();
  }

  Value list_method(const Value& self, const std::string& name) {
    auto l = self.list_ptr();
    if (name == "index" || name == "count")
      return make_function(name, [l, name](CallArgs& ca) {
        Args a{ca, name.c_str()};
        a.check(1, {});
        Value x = a.get(0, "value");
        std::int64_t n = 0;
        for (std::size_t i = 0; i < l->items.size(); ++i) {
          if (!py_equal(l->items[i], x)) continue;
          if (name == "index") return Value::integer(static_cast<std::int64_t>(i));
          ++n;
        }
        if (name == "index") throw_render(RT::value, py_repr(x) + " is not in list");
        return Value::integer(n);
      });
    if (name == "copy") return make_function(name, [l](CallArgs&) { return Value::list(l->items, l->is_tuple); });
    if (name == "append" || name == "extend" || name == "insert" || name == "pop" || name == "remove" ||
        name == "reverse" || name == "sort" || name == "clear")
      return make_function(name, [name](CallArgs&) -> Value {
        throw_render(RT::security, "list." + name + "() modifies a value, which the sandbox forbids");
      });
    return Value();
  }

  // ---------------------------------------------------------------- globals

  void install_globals(Scope& g) {
    g.vars["range"] = make_function("range", [](CallArgs& ca) {
      Args a{ca, "range"};
      a.check(3, {});
      if (ca.positional.empty()) type_error("range expected at least 1 argument, got 0");
      std::int64_t start = 0, stop, step = 1;
      if (ca.positional.size() == 1) {
        stop = to_index(ca.positional[0], "range() argument");
      } else {
        start = to_index(ca.positional[0], "range() argument");
        stop = to_index(ca.positional[1], "range() argument");
        if (ca.positional.size() == 3) step = to_index(ca.positional[2], "range() argument");
      }
      if (step == 0) throw_render(RT::value, "range() arg 3 must not be zero");
      std::int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                                    : (start > stop ? (start - stop - step - 1) / (-step) : 0);
      // jinja2's sandbox refuses ranges longer than MAX_RANGE.
      if (count > 100000) throw_render(RT::limit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
      std::vector<Value> out;
      for (std::int64_t i = 0; i < count; ++i) out.push_back(Value::integer(start + i * step));
      Value range = Value::list(std::move(out));
      range.list_ptr()->display = "range(" + std::to_string(start) + ", " + std::to_string(stop) +
                                  (step == 1 ? std::string() : ", " + std::to_string(step)) + ")";
      return range;
    });
    g.vars["dict"] = make_function("dict", [](CallArgs& ca) {
      auto d = std::make_shared<Dict>();
      if (ca.positional.size() > 1) type_error("dict expected at most 1 argument");
      if (!ca.positional.empty()) {
        const Value& src = ca.positional[0];
        if (src.is_dict()) {
          *d = src.as_dict();
        } else {
          for (const auto& pair : iterate(src)) {
            auto kv = iterate(pair);
            if (kv.size() != 2) throw_render(RT::value, "dictionary update sequence element has wrong length");
            d->set(kv[0], kv[1]);
          }
        }
      }
      for (const auto& [k, v] : ca.keywords) d->set(Value::string(k), v);
      return Value::dict(d);
    });
    g.vars["namespace"] = make_function("namespace", [this](CallArgs& ca) {
      auto ns = std::make_shared<Namespace>();
      namespaces_.push_back(ns);
      if (ca.positional.size() > 1) type_error("namespace expected at most 1 positional argument");
      if (!ca.positional.empty()) {
        if (!ca.positional[0].is_dict()) type_error("namespace() positional argument must be a dict");
        for (const auto& [k, v] : ca.positional[0].as_dict().items) {
          if (k.is_string()) Namespace::check_name(k.as_string());
          ns->attrs->set(k, v);
        }
      }
      for (const auto& [k, v] : ca.keywords) {
        Namespace::check_name(k);
        ns->attrs->set(Value::string(k), v);
      }
      return Value::object(ns);
    });
    g.vars["raise_exception"] = make_function("raise_exception", [](CallArgs& ca) -> Value {
      Args a{ca, "raise_exception"};
      throw_render(RT::raised, py_str(a.get(0, "message")));
    });
    g.vars["strftime_now"] = make_function("strftime_now", [](CallArgs& ca) {
      Args a{ca, "strftime_now"};
      a.check(1, {});
      std::string format = require_string(a.get(0, "format"), "strftime_now format");
      std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buf[512];
      std::size_t n = std::strftime(buf, sizeof buf, format.c_str(), &local);
      return Value::string(std::string(buf, n));
    });
    for (const char* name : {"cycler", "joiner", "lipsum"}) {
      std::string n = name;
      g.vars[n] = make_function(n, [n](CallArgs&) -> Value {
        throw_render(RT::type, n + "() is not supported by vlmrt's chat template interpreter");
      });
    }
  }

  // ---------------------------------------------------------------- filters

  // Reads an attribute path like "a.b.0" the way jinja2's make_attrgetter does (item lookups).
  Value attr_path(const Value& item, const std::string& path) {
    Value v = item;
    std::size_t start = 0;
    while (true) {
      std::size_t dot = path.find('.', start);
      std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      v = get_item(v, digits ? Value::integer(std::stoll(part)) : Value::string(part));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return v;
  }

  std::function<Value(const Value&)> make_key(const Value& attribute, bool case_sensitive) {
    if (attribute.is_none() || attribute.is_undefined())
      return [case_sensitive](const Value& v) { return lower_if_string(v, case_sensitive); };
    if (attribute.is_int()) {
      Value idx = attribute;
      return [this, idx, case_sensitive](const Value& v) { return lower_if_string(get_item(v, idx), case_sensitive); };
    }
    std::string path = require_string(attribute, "attribute");
    return [this, path, case_sensitive](const Value& v) { return lower_if_string(attr_path(v, path), case_sensitive); };
  }

  Value apply_filter(const Expr& e, const Value& subject, const std::shared_ptr<Scope>& scope) {
    CallArgs ca = eval_args(e, 1, scope);
    line_ = e.line;
    const std::string& f = e.name;
    const std::uint64_t fh = H(f);
    Args a{ca, f.c_str()};
    const Value& v = subject;
    if (fh == H("tojson")) {
      a.check(4, {"ensure_ascii", "indent", "separators", "sort_keys"});
      JsonDumpOptions o;
      o.ensure_ascii = a.get(0, "ensure_ascii", Value::boolean(false)).truthy();
      Value indent = a.get(1, "indent", Value::none());
      if (!indent.is_none()) {
        o.has_indent = true;
        o.indent = indent.is_string() ? indent.as_string() : std::string(std::max<std::int64_t>(0, to_index(indent, "indent")), ' ');
        o.item_separator = ",";
      }
      Value seps = a.get(2, "separators", Value::none());
      if (!seps.is_none()) {
        auto parts = iterate(seps);
        if (parts.size() != 2) throw_render(RT::value, "tojson separators must be a pair");
        o.item_separator = require_string(parts[0], "separator");
        o.key_separator = require_string(parts[1], "separator");
      }
      o.sort_keys = a.get(3, "sort_keys", Value::boolean(false)).truthy();
      return Value::string(json_dumps(v, o));
    }
    if (fh == H("length") || fh == H("count")) {
      a.check(0, {});
      return Value::integer(py_len(v));
    }
    if (fh == H("trim")) {
      a.check(1, {"chars"});
      return Value::string(py_strip(py_str(v), a.get(0, "chars", Value::none()), true, true));
    }
    if (fh == H("upper") || fh == H("lower")) {
      a.check(0, {});
      return Value::string(map_case(py_str(v), fh == H("upper")));
    }
    if (fh == H("capitalize")) return Value::string(py_capitalize(py_str(v)));
    if (fh == H("title")) {
      // jinja2's do_title: capitalise each word, words split at whitespace and -({[<.
      std::string s = py_str(v), out;
      bool word_start = true;
      for (std::uint32_t cp : utf8_decode(s)) {
        bool sep = py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        if (sep) {
          utf8_append(out, cp);
          word_start = true;
          continue;
        }
        auto c = static_cast<utf8proc_int32_t>(cp);
        utf8_append(out, static_cast<std::uint32_t>(word_start ? utf8proc_toupper(c) : utf8proc_tolower(c)));
        word_start = false;
      }
      return Value::string(out);
    }
    if (fh == H("default") || fh == H("d")) {
      a.check(2, {"default_value", "boolean"});
      bool boolean = a.get(1, "boolean", Value::boolean(false)).truthy();
      if (v.is_undefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value::string(""));
      return v;
    }
    if (fh == H("items")) {
      a.check(0, {});
      // A generator in jinja2 3.1: the type check happens on first use.
      return make_lazy("generator", [&v](std::vector<Value>& out) {
        if (v.is_undefined()) return;
        if (!v.is_dict()) type_error("Can only get item pairs from a mapping.");
        for (const auto& [k, val] : v.as_dict().items) out.push_back(Value::list({k, val}, true));
      });
    }
    if (fh == H("join")) {
      a.check(2, {"d", "attribute"});
      std::string sep = py_str(a.get(0, "d", Value::string("")));
      Value attribute = a.get(1, "attribute", Value::none());
      std::string out;
      bool first = true;
      for (const auto& item : iterate(v)) {
        if (!first) out += sep;
        first = false;
        out += py_str(attribute.is_none() ? item : make_key(attribute, true)(item));
      }
      return Value::string(std::move(out));
    }
    if (fh == H("list")) {
      a.check(0, {});
      return Value::list(iterate(v));
    }
    if (fh == H("string")) return Value::string(py_str(v));
    if (fh == H("safe")) return v;
    if (fh == H("escape") || fh == H("e") || fh == H("forceescape")) return Value::string(html_escape(py_str(v)));
    if (fh == H("first") || fh == H("last")) {
      a.check(0, {});
      if (v.is_list() && v.as_list().lazy) {
        List& l = *v.list_ptr();
        // last() needs reversed(), which generators do not support; first() takes one item.
        if (fh == H("last")) type_error("'" + l.lazy_name + "' object is not reversible");
        if (!l.consumed && !l.items.empty()) {
          Value head = l.items.front();
          l.items.erase(l.items.begin());
          return head;
        }
        if (l.deferred && !l.consumed) throw *l.deferred;
        return Value::undefined("No first item, sequence was empty.");
      }
      auto items = iterate(v);
      if (items.empty()) return Value::undefined(std::string("No ") + f + " item, sequence was empty.");
      return fh == H("first") ? items.front() : items.back();
    }
    if (fh == H("reverse")) {
      if (v.is_string()) {
        auto cps = utf8_decode(v.as_string());
        std::reverse(cps.begin(), cps.end());
        return Value::string(utf8_encode(cps, 0, cps.size()));
      }
      // reversed() works on sequences (and on Undefined, which has __len__ and __getitem__).
      bool iterator = (v.is_list() && !v.as_list().lazy) || v.is_dict() || v.is_undefined();
      auto items = iterate(v);
      std::reverse(items.begin(), items.end());
      if (!iterator) return Value::list(std::move(items));
      // reversed(list) / reversed(dict) are lazy iterators in Python.
      return make_lazy(v.is_dict() ? "dict_reversekeyiterator" : v.is_undefined() ? "reversed" : "list_reverseiterator",
                       [&items](std::vector<Value>& out) { out = std::move(items); });
    }
    if (fh == H("replace")) {
      a.check(3, {"old", "new", "count"});
      Value count = a.get(2, "count", Value::none());
      return Value::string(py_replace(py_str(v), py_str(a.get(0, "old")), py_str(a.get(1, "new")),
                                      count.is_none() ? -1 : to_index(count, "count")));
    }
    if (fh == H("int")) {
      a.check(2, {"default", "base"});
      Value dflt = a.get(0, "default", Value::integer(0));
      std::int64_t base = to_index(a.get(1, "base", Value::integer(10)), "base");
      if (v.is_undefined()) undefined_error(v);  // int(Undefined) raises in jinja2
      if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
      if (v.is_float()) return std::isfinite(v.as_double()) ? Value::integer(static_cast<std::int64_t>(v.as_double())) : dflt;
      if (v.is_string()) {
        std::string s = py_strip(v.as_string(), Value::none(), true, true);
        std::string digits;
        for (char c : s)
          if (c != '_') digits += c;
        char* end = nullptr;
        errno = 0;
        long long x = std::strtoll(digits.c_str(), &end, static_cast<int>(base));
        if (!digits.empty() && end && *end == '\0' && errno == 0) return Value::integer(x);
        end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && end && *end == '\0' && std::isfinite(d)) return Value::integer(static_cast<std::int64_t>(d));
      }
      return dflt;
    }
    if (fh == H("float")) {
      a.check(1, {"default"});
      Value dflt = a.get(0, "default", Value::floating(0.0));
      if (v.is_undefined()) undefined_error(v);  // float(Undefined) raises in jinja2
      if (v.is_number()) return Value::floating(v.as_double());
      if (v.is_string()) {
        std::string s = py_strip(v.as_string(), Value::none(), true, true);
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && end && *end == '\0') return Value::floating(d);
      }
      return dflt;
    }
    if (fh == H("abs")) {
      if (v.is_undefined()) undefined_error(v);
      if (!v.is_number()) type_error("bad operand type for abs(): '" + v.type_name() + "'");
      if (!v.is_float() && v.as_int() == INT64_MIN) throw_render(RT::limit, "integer overflow in abs()");
      return v.is_float() ? Value::floating(std::fabs(v.as_double())) : Value::integer(std::llabs(v.as_int()));
    }
    if (fh == H("round")) {
      a.check(2, {"precision", "method"});
      std::int64_t precision = to_index(a.get(0, "precision", Value::integer(0)), "precision");
      std::string method = py_str(a.get(1, "method", Value::string("common")));
      if (v.is_undefined()) undefined_error(v);
      if (!v.is_number()) type_error("round() needs a number, not " + v.type_name());
      double x = v.as_double();
      double scale = std::pow(10.0, static_cast<double>(precision));
      if (method == "ceil") return Value::floating(std::ceil(x * scale) / scale);
      if (method == "floor") return Value::floating(std::floor(x * scale) / scale);
      if (method != "common") throw_render(RT::value, "method must be common, ceil or floor");
      // Python's round(int, n >= 0) returns the int unchanged.
      if (!v.is_float() && precision >= 0) return Value::integer(v.as_int());
      if (precision == 0) return Value::floating(std::nearbyint(x));
      char buf[512];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::clamp<std::int64_t>(precision, 0, 300)), x);
      return Value::floating(std::strtod(buf, nullptr));
    }
    if (fh == H("indent")) {
      a.check(3, {"width", "first", "blank"});
      Value width = a.get(0, "width", Value::integer(4));
      std::string indention = width.is_string() ? width.as_string()
                                                : std::string(std::max<std::int64_t>(0, to_index(width, "width")), ' ');
      bool first = a.get(1, "first", Value::boolean(false)).truthy();
      bool blank = a.get(2, "blank", Value::boolean(false)).truthy();
      // jinja2 appends "\n" to the value itself, so only strings work.
      if (v.is_undefined()) undefined_error(v);
      if (!v.is_string()) type_error("unsupported operand type(s) for +=: '" + v.type_name() + "' and 'str'");
      auto lines = py_splitlines(v.as_string() + "\n", false);
      std::string rv;
      if (blank) {
        for (std::size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i].as_string();
      } else if (!lines.empty()) {
        rv = lines[0].as_string();
        for (std::size_t i = 1; i < lines.size(); ++i) {
          const std::string& line = lines[i].as_string();
          rv += "\n" + (line.empty() ? line : indention + line);
        }
      }
      if (first) rv = indention + rv;
      return Value::string(rv);
    }
    if (fh == H("center")) {
      std::int64_t width = to_index(a.get(0, "width", Value::integer(80)), "width");
      std::string s = py_str(v);
      auto len = static_cast<std::int64_t>(utf8_length(s));
      if (width <= len) return Value::string(s);
      std::int64_t pad = width - len;
      std::int64_t left = pad / 2 + (pad & width & 1);
      return Value::string(std::string(left, ' ') + s + std::string(pad - left, ' '));
    }
    if (fh == H("wordcount")) {
      std::int64_t n = 0;
      bool in_word = false;
      for (std::uint32_t cp : utf8_decode(py_str(v))) {
        auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
        bool word = cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
                    (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
        if (word && !in_word) ++n;
        in_word = word;
      }
      return Value::integer(n);
    }
    if (fh == H("attr")) {
      // Python getattr only: unlike `.name`, a dict's keys are not attributes.
      std::string attr_name = py_str(a.get(0, "name"));
      if (v.is_dict()) {
        Value m = dict_method(v, attr_name);
        return m.is_undefined() ? Value::undefined("'dict object' has no attribute '" + attr_name + "'") : m;
      }
      if (v.is_undefined()) return Value::undefined("'" + attr_name + "' is undefined");
      return get_attr(v, attr_name);
    }
    if (fh == H("map")) {
      return make_lazy("generator", [&](std::vector<Value>& out) {
      if (!v.truthy()) return;  // jinja2's map yields nothing for a false value
      auto items = iterate(v);
      if (ca.positional.empty()) {
        Value attribute;
        Value dflt;
        for (const auto& [k, val] : ca.keywords) {
          if (k == "attribute") attribute = val;
          else if (k == "default") dflt = val;
          else type_error("Unexpected keyword argument '" + k + "'");
        }
        if (attribute.is_undefined()) type_error("map() needs a filter name or attribute=");
        auto key = make_key(attribute, true);
        for (const auto& item : items) {
          Value x = key(item);
          out.push_back(x.is_undefined() && !dflt.is_undefined() ? dflt : x);
        }
      } else {
        std::string fname = require_string(ca.positional[0], "map filter name");
        if (!has_filter(fname)) throw_render(RT::type, "No filter named '" + fname + "'.");
        Expr synthetic;
        synthetic.type = ExprType::filter;
        synthetic.line = e.line;
        synthetic.name = fname;
        CallArgs rest;
        rest.positional.assign(ca.positional.begin() + 1, ca.positional.end());
        rest.keywords = ca.keywords;
        for (const auto& item : items) out.push_back(call_filter_with(synthetic, item, rest));
      }
      });
    }
    if (fh == H("select") || fh == H("reject") || fh == H("selectattr") || fh == H("rejectattr")) {
      bool by_attr = fh == H("selectattr") || fh == H("rejectattr");
      bool keep_when = fh == H("select") || fh == H("selectattr");
      std::size_t at = 0;
      std::function<Value(const Value&)> key = [](const Value& x) { return x; };
      if (by_attr) {
        if (ca.positional.empty()) type_error("Missing parameter for attribute name");
        key = make_key(ca.positional[0], true);
        at = 1;
      }
      std::string test;
      CallArgs test_args;
      if (ca.positional.size() > at) {
        test = require_string(ca.positional[at], "test name");
        if (!has_test(test)) throw_render(RT::type, "No test named '" + test + "'.");
        test_args.positional.assign(ca.positional.begin() + at + 1, ca.positional.end());
        test_args.keywords = ca.keywords;
      }
      return make_lazy("generator", [&](std::vector<Value>& out) {
        if (!v.truthy()) return;  // select_or_reject yields nothing for a false value
        for (const auto& item : iterate(v)) {
          Value x = key(item);
          bool pass = test.empty() ? x.truthy() : apply_test(test, x, test_args);
          if (pass == keep_when) out.push_back(item);
        }
      });
    }
    if (fh == H("sort")) {
      a.check(3, {"reverse", "case_sensitive", "attribute"});
      bool reverse = a.get(0, "reverse", Value::boolean(false)).truthy();
      bool cs = a.get(1, "case_sensitive", Value::boolean(false)).truthy();
      auto key = make_key(a.get(2, "attribute", Value::none()), cs);
      auto items = iterate(v);
      std::vector<std::pair<Value, Value>> keyed;
      for (auto& item : items) keyed.emplace_back(key(item), item);
      std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
        return reverse ? py_compare(y.first, x.first) < 0 : py_compare(x.first, y.first) < 0;
      });
      std::vector<Value> out;
      for (auto& kv : keyed) out.push_back(kv.second);
      return Value::list(std::move(out));
    }
    if (fh == H("dictsort")) {
      a.check(3, {"case_sensitive", "by", "reverse"});
      if (!v.is_dict()) type_error("dictsort needs a mapping");
      bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
      std::string by = py_str(a.get(1, "by", Value::string("key")));
      bool reverse = a.get(2, "reverse", Value::boolean(false)).truthy();
      if (by != "key" && by != "value") throw_render(RT::value, "You can only sort by either \"key\" or \"value\"");
      std::vector<Value> pairs;
      for (const auto& [k, val] : v.as_dict().items) pairs.push_back(Value::list({k, val}, true));
      std::size_t pos = by == "key" ? 0 : 1;
      std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
        Value kx = lower_if_string(x.as_list().items[pos], cs), ky = lower_if_string(y.as_list().items[pos], cs);
        return reverse ? py_compare(ky, kx) < 0 : py_compare(kx, ky) < 0;
      });
      return Value::list(std::move(pairs));
    }
    if (fh == H("unique")) {
      a.check(2, {"case_sensitive", "attribute"});
      bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
      auto key = make_key(a.get(1, "attribute", Value::none()), cs);
      return make_lazy("generator", [&](std::vector<Value>& out) {
        std::vector<Value> seen;
        for (const auto& item : iterate(v)) {
          Value k = key(item);
          bool dup = false;
          for (const auto& s : seen) dup = dup || py_equal(s, k);
          if (dup) continue;
          seen.push_back(k);
          out.push_back(item);
        }
      });
    }
    if (fh == H("min") || fh == H("max")) {
      a.check(2, {"case_sensitive", "attribute"});
      bool cs = a.get(0, "case_sensitive", Value::boolean(false)).truthy();
      auto key = make_key(a.get(1, "attribute", Value::none()), cs);
      auto items = iterate(v);
      if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
      std::size_t best = 0;
      for (std::size_t i = 1; i < items.size(); ++i) {
        int c = py_compare(key(items[i]), key(items[best]));
        if (fh == H("min") ? c < 0 : c > 0) best = i;
      }
      return items[best];
    }
    if (fh == H("sum")) {
      a.check(2, {"attribute", "start"});
      Value attribute = a.get(0, "attribute", Value::none());
      Value total = a.get(1, "start", Value::integer(0));
      for (const auto& item : iterate(v))
        total = arith("+", total, attribute.is_none() ? item : make_key(attribute, true)(item));
      return total;
    }
    type_error("filter '" + f + "' is not implemented");
  }

  Value call_filter_with(const Expr& synthetic, const Value& subject, const CallArgs& args) {
    // Filters read their arguments from expressions, so wrap the values as constants.
    Expr e;
    e.type = ExprType::filter;
    e.line = synthetic.line;
    e.name = synthetic.name;
    e.children.push_back(nullptr);
    for (const auto& p : args.positional) {
      auto c = std::make_unique<Expr>();
      c->type = ExprType::constant;
      c->constant = p;
      e.children.push_back(std::move(c));
    }
    for (const auto& [k, val] : args.keywords) {
      auto c = std::make_unique<Expr>();
      c->type = ExprType::constant;
      c->constant = val;
      e.kwargs.emplace_back(k, std::move(c));
    }
    return apply_filter(e, subject, nullptr);
  }

  // ---------------------------------------------------------------- tests

  bool apply_test(const std::string& t, const Value& v, CallArgs& ca) {
    Args a{ca, t.c_str()};
    const std::uint64_t th = H(t);
    // jinja2's tests are plain functions: a wrong number of arguments is a TypeError.
    static const std::unordered_set<std::string> one_argument = {
        "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">",
        "ge", ">=", "in", "sameas"};
    if (one_argument.count(t)) {
      if (ca.positional.size() + ca.keywords.size() != 1)
        type_error("test_" + t + "() takes 2 positional arguments but " +
                   std::to_string(ca.positional.size() + ca.keywords.size() + 1) + " were given");
    } else if (!ca.positional.empty() || !ca.keywords.empty()) {
      type_error("test_" + t + "() takes 1 positional argument but " + std::to_string(ca.positional.size() + 1) +
                 " were given");
    }
    auto arg = [&]() { return a.get(0, "other"); };
    if (th == H("defined")) return !v.is_undefined();
    if (th == H("undefined")) return v.is_undefined();
    if (th == H("none")) return v.is_none();
    if (th == H("string")) return v.is_string();
    if (th == H("mapping")) return v.is_dict();
    if (th == H("boolean")) return v.is_bool();
    if (th == H("true")) return v.is_bool() && v.as_bool();
    if (th == H("false")) return v.is_bool() && !v.as_bool();
    if (th == H("integer")) return v.is_int();
    if (th == H("float")) return v.is_float();
    if (th == H("number")) return v.is_number();
    if (th == H("iterable")) return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
    if (th == H("sequence"))  // len() and __getitem__ exist; jinja2's Undefined has both
      return v.is_undefined() || v.is_string() || (v.is_list() && !v.as_list().lazy) || v.is_dict();
    if (th == H("callable")) return v.is_object() && v.as_object()->callable();
    if (th == H("escaped")) return false;
    if (th == H("odd") || th == H("even")) {
      Value r = arith("%", v, Value::integer(2));
      return py_equal(r, Value::integer(th == H("odd") ? 1 : 0));
    }
    if (th == H("divisibleby")) return py_equal(arith("%", v, a.get(0, "num")), Value::integer(0));
    if (th == H("eq") || th == H("equalto") || th == H("==")) return compare_op("==", v, arg());
    if (th == H("ne") || th == H("!=")) return compare_op("!=", v, arg());
    if (th == H("lt") || th == H("lessthan") || th == H("<")) return compare_op("<", v, arg());
    if (th == H("le") || th == H("<=")) return compare_op("<=", v, arg());
    if (th == H("gt") || th == H("greaterthan") || th == H(">")) return compare_op(">", v, arg());
    if (th == H("ge") || th == H(">=")) return compare_op(">=", v, arg());
    if (th == H("in")) return contains(a.get(0, "seq"), v);
    if (th == H("sameas")) {
      Value o = arg();
      if (v.kind() != o.kind()) return false;
      if (v.is_none() || v.is_undefined()) return v.is_none();
      if (v.is_bool()) return v.as_bool() == o.as_bool();
      if (v.is_int()) return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
      if (v.is_list()) return v.list_ptr() == o.list_ptr();
      if (v.is_dict()) return v.dict_ptr() == o.dict_ptr();
      if (v.is_object()) return v.as_object() == o.as_object();
      return false;
    }
    if (th == H("lower") || th == H("upper")) {
      // str(value).islower(): a generator's repr "<generator object ... at 0x...>" is lower case.
      if (v.is_list() && v.as_list().lazy) return th == H("lower");
      std::string s = py_str(v);
      return s == map_case(s, th == H("upper")) && s != map_case(s, t != "upper");
    }
    if (th == H("filter")) return v.is_string() && has_filter(v.as_string());
    if (th == H("test")) return v.is_string() && has_test(v.as_string());
    type_error("test '" + t + "' is not implemented");
  }

  const Program& program_;
  std::string name_;
  RenderOptions options_;
  std::vector<std::shared_ptr<Macro>> macros_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  std::string* out_ = nullptr;
  int capture_depth_ = 0;
  int depth_ = 0;
  int line_ = 0;
};

Value Macro::call(CallArgs& args) { return interp_->call_macro(*node_, closure_, args, catch_varargs_, catch_kwargs_); }

const std::unordered_set<std::string>& filter_names() {
  static const std::unordered_set<std::string> names = {
      "abs",     "attr",   "capitalize", "center", "count",   "d",      "default", "dictsort", "e",
      "escape",  "first",  "float",      "forceescape", "indent", "int", "items",   "join",     "last",
      "length",  "list",   "lower",      "map",    "max",     "min",    "reject",  "rejectattr", "replace",
      "reverse", "round",  "safe",       "select", "selectattr", "sort", "string", "sum",      "title",
      "tojson",  "trim",   "unique",     "upper",  "wordcount"};
  return names;
}

const std::unordered_set<std::string>& test_names() {
  static const std::unordered_set<std::string> names = {
      "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "escaped", "even", "false",
      "filter",  "float",    "ge",      ">=",          "gt", "greaterthan", ">", "in", "integer", "iterable",
      "le",      "<=",       "lower",   "lt",          "lessthan", "<", "mapping", "ne", "!=", "none",
      "number",  "odd",      "sameas",  "sequence",    "string", "test", "true", "undefined", "upper"};
  return names;
}

}  // namespace

bool has_filter(const std::string& name) { return filter_names().count(name) > 0; }
bool has_test(const std::string& name) { return test_names().count(name) > 0; }

std::string render(const Program& program, const Value& context, const std::string& name,
                   const RenderOptions& options) {
  Interpreter interp(program, name, options);
  return interp.run(context);
}

}  // namespace vlm::jinja
