#include <set>

#include "base/error.h"
#include "chat/jinja_ast.h"

namespace vlm::jinja {
namespace {

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name) : t_(tokens), name_(name) {}

  Program run() {
    Program p;
    p.body = subparse({});
    if (cur().type != Tok::eof) fail_at(cur().line, "unexpected " + describe(cur()));
    p.has_generation = has_generation_;
    return p;
  }

 private:
  const Token& cur() const { return t_[pos_]; }
  const Token& look() const { return t_[pos_ + 1 < t_.size() ? pos_ + 1 : pos_]; }
  const Token& next() { return t_[pos_ < t_.size() - 1 ? pos_++ : pos_]; }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::data: return "template data";
      case Tok::variable_begin: return "'{{'";
      case Tok::variable_end: return "end of print statement '}}'";
      case Tok::block_begin: return "'{%'";
      case Tok::block_end: return "end of statement block '%}'";
      case Tok::name: return "'" + t.text + "'";
      case Tok::string: return "string literal";
      case Tok::integer: return "integer literal";
      case Tok::floating: return "float literal";
      case Tok::op: return "'" + t.text + "'";
      case Tok::eof: return "end of template";
    }
    return "?";
  }

  [[noreturn]] void fail_at(int line, const std::string& what) const {
    fail(ErrorCode::corrupt_data, name_ + " line " + std::to_string(line) + ": template syntax error: " + what);
  }
  [[noreturn]] void unsupported(int line, const std::string& what) const {
    fail(ErrorCode::unsupported,
         name_ + " line " + std::to_string(line) + ": " + what +
             " is not supported by vlmrt's chat template interpreter; rewrite the template without it");
  }

  bool is_op(const char* op) const { return cur().type == Tok::op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail_at(cur().line, std::string("expected '") + op + "', got " + describe(cur()));
  }
  const Token& expect_name() {
    if (cur().type != Tok::name) fail_at(cur().line, "expected a name, got " + describe(cur()));
    return next();
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) fail_at(cur().line, std::string("expected ") + what + ", got " + describe(cur()));
    next();
  }

  static ExprPtr make(ExprType type, int line) {
    auto e = std::make_unique<Expr>();
    e->type = type;
    e->line = line;
    return e;
  }
  static NodePtr make_node(NodeType type, int line) {
    auto n = std::make_unique<Node>();
    n->type = type;
    n->line = line;
    return n;
  }

  // ------------------------------------------------------------------ statements

  // Parses until a block whose first name is one of end_names (left unconsumed) or the end of input.
  Body subparse(const std::set<std::string>& end_names) {
    Body body;
    while (cur().type != Tok::eof) {
      const Token& tok = cur();
      if (tok.type == Tok::data) {
        auto n = make_node(NodeType::text, tok.line);
        n->text = tok.text;
        body.push_back(std::move(n));
        next();
      } else if (tok.type == Tok::variable_begin) {
        next();
        auto n = make_node(NodeType::print, tok.line);
        n->expr = parse_tuple(false, true, {});
        expect(Tok::variable_end, "end of print statement '}}'");
        body.push_back(std::move(n));
      } else if (tok.type == Tok::block_begin) {
        next();
        if (cur().type == Tok::name && end_names.count(cur().text)) return body;
        body.push_back(parse_statement());
        expect(Tok::block_end, "end of statement block '%}'");
      } else {
        fail_at(tok.line, "unexpected " + describe(tok));
      }
    }
    if (!end_names.empty()) {
      std::string expected;
      for (const auto& e : end_names) expected += (expected.empty() ? "'" : " or '") + e + "'";
      fail_at(cur().line, "unexpected end of template, expected " + expected);
    }
    return body;
  }

  Body parse_statements(const std::set<std::string>& end_names, bool drop_needle) {
    skip_op(":");
    expect(Tok::block_end, "end of statement block '%}'");
    Body body = subparse(end_names);
    if (cur().type == Tok::eof) fail_at(cur().line, "unexpected end of template");
    if (drop_needle) next();
    return body;
  }

  NodePtr parse_statement() {
    DepthGuard guard(*this);
    const Token& tok = cur();
    if (tok.type != Tok::name) fail_at(tok.line, "tag name expected");
    const std::string& n = tok.text;
    if (n == "for") return parse_for();
    if (n == "if") return parse_if();
    if (n == "set") return parse_set();
    if (n == "macro") return parse_macro();
    if (n == "filter") return parse_filter_block();
    if (n == "with") return parse_with();
    if (n == "print") {
      auto node = make_node(NodeType::print, next().line);
      node->expr = parse_tuple(false, true, {});
      return node;
    }
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) fail_at(tok.line, "'" + n + "' outside of a loop");
      next();
      return make_node(n == "break" ? NodeType::break_ : NodeType::continue_, tok.line);
    }
    if (n == "generation") {
      // transformers' AssistantTracker extension: marks assistant text; renders its body unchanged.
      auto node = make_node(NodeType::generation, next().line);
      node->body = parse_statements({"endgeneration"}, true);
      has_generation_ = true;
      return node;
    }
    static const std::set<std::string> known_unsupported = {
        "block", "extends", "include", "import", "from", "call", "autoescape", "do", "trans", "raw"};
    if (known_unsupported.count(n)) unsupported(tok.line, "the '{% " + n + " %}' tag");
    fail_at(tok.line, "encountered unknown tag '" + n + "'");
  }

  NodePtr parse_for() {
    auto node = make_node(NodeType::for_, next().line);
    node->target = parse_assign_target(false, {"in"});
    if (!skip_name("in")) fail_at(cur().line, "expected 'in', got " + describe(cur()));
    node->expr = parse_tuple(false, false, {"recursive"});
    if (skip_name("if")) node->condition = parse_expression(true);
    if (is_name("recursive")) unsupported(cur().line, "recursive for loops");
    ++loop_depth_;
    node->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (next().text == "else") node->else_body = parse_statements({"endfor"}, true);
    return node;
  }

  NodePtr parse_if() {
    auto node = make_node(NodeType::if_, next().line);
    while (true) {
      ExprPtr test = parse_tuple(false, false, {});
      Body body = parse_statements({"elif", "else", "endif"}, false);
      node->branches.emplace_back(std::move(test), std::move(body));
      const Token& t = next();
      if (t.text == "elif") continue;
      if (t.text == "else") node->else_body = parse_statements({"endif"}, true);
      break;
    }
    return node;
  }

  NodePtr parse_set() {
    auto node = make_node(NodeType::set, next().line);
    node->target = parse_assign_target(true, {});
    if (skip_op("=")) {
      node->expr = parse_tuple(false, true, {});
      return node;
    }
    node->type = NodeType::set_block;
    node->expr = parse_filter(nullptr, false);
    node->body = parse_statements({"endset"}, true);
    return node;
  }

  NodePtr parse_macro() {
    auto node = make_node(NodeType::macro, next().line);
    node->text = expect_name().text;
    expect_op("(");
    while (!is_op(")")) {
      if (!node->params.empty()) expect_op(",");
      MacroParam p;
      p.name = expect_name().text;
      if (skip_op("=")) p.default_value = parse_expression(true);
      else if (!node->params.empty() && node->params.back().default_value)
        fail_at(cur().line, "non-default argument follows default argument");
      node->params.push_back(std::move(p));
    }
    expect_op(")");
    int saved = loop_depth_;
    loop_depth_ = 0;
    node->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved;
    return node;
  }

  NodePtr parse_filter_block() {
    auto node = make_node(NodeType::filter_block, next().line);
    node->expr = parse_filter(nullptr, true);
    node->body = parse_statements({"endfilter"}, true);
    return node;
  }

  NodePtr parse_with() {
    auto node = make_node(NodeType::with, next().line);
    while (cur().type != Tok::block_end) {
      if (!node->assignments.empty()) expect_op(",");
      ExprPtr target = parse_assign_target(false, {});
      expect_op("=");
      node->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    node->body = parse_statements({"endwith"}, true);
    return node;
  }

  // A name, a namespace attribute (with_namespace), or a tuple of names.
  ExprPtr parse_assign_target(bool with_namespace, const std::set<std::string>& extra_end) {
    int line = cur().line;
    ExprPtr target = parse_tuple(true, true, extra_end, with_namespace);
    auto check = [&](const Expr& e) {
      if (e.type == ExprType::ns_ref) return;
      if (e.type != ExprType::name || e.name == "true" || e.name == "false" || e.name == "none" ||
          e.name == "True" || e.name == "False" || e.name == "None")
        fail_at(line, "can't assign to this expression");
    };
    if (target->type == ExprType::tuple) {
      for (const auto& c : target->children) check(*c);
    } else {
      check(*target);
    }
    return target;
  }

  // ------------------------------------------------------------------ expressions

  bool is_tuple_end(const std::set<std::string>& extra_end) const {
    if (cur().type == Tok::variable_end || cur().type == Tok::block_end || is_op(")")) return true;
    return cur().type == Tok::name && extra_end.count(cur().text);
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::set<std::string>& extra_end,
                      bool with_namespace = false, bool explicit_parentheses = false) {
    int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      if (simplified) {
        args.push_back(parse_primary(with_namespace));
      } else {
        args.push_back(parse_expression(with_condexpr));
      }
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) fail_at(cur().line, "expected an expression, got " + describe(cur()));
    }
    auto e = make(ExprType::tuple, line);
    e->children = std::move(args);
    return e;
  }

  // Bounds recursion so that a hostile template ("((((...") is an error, not a stack overflow.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth)
        p.fail_limit(p.cur().line, "template nesting exceeds " + std::to_string(kMaxDepth) + " levels");
    }
    ~DepthGuard() { --p.depth_; }
  };
  static constexpr int kMaxDepth = 200;

  [[noreturn]] void fail_limit(int line, const std::string& what) const {
    fail(ErrorCode::limit_exceeded, name_ + " line " + std::to_string(line) + ": " + what);
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    int line = cur().line;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      ExprPtr expr2 = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      auto e = make(ExprType::cond, line);
      e->children.push_back(std::move(expr2));  // test
      e->children.push_back(std::move(expr1));  // value when true
      e->children.push_back(std::move(expr3));  // value when false (may be null)
      expr1 = std::move(e);
      line = cur().line;
    }
    return expr1;
  }

  ExprPtr binary(ExprType type, int line, ExprPtr left, ExprPtr right, std::string op = {}) {
    auto e = make(type, line);
    e->name = std::move(op);
    e->children.push_back(std::move(left));
    e->children.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) left = binary(ExprType::or_, line, std::move(left), parse_and());
    return left;
  }

  ExprPtr parse_and() {
    int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) left = binary(ExprType::and_, line, std::move(left), parse_not());
    return left;
  }

  ExprPtr parse_not() {
    DepthGuard guard(*this);
    if (is_name("not")) {
      int line = next().line;
      auto e = make(ExprType::not_, line);
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr expr = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      if (cur().type == Tok::op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
        ops.push_back(next().text);
      } else if (skip_name("in")) {
        ops.push_back("in");
      } else if (is_name("not") && look().type == Tok::name && look().text == "in") {
        next();
        next();
        ops.push_back("notin");
      } else {
        break;
      }
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return expr;
    auto e = make(ExprType::compare, line);
    e->children.push_back(std::move(expr));
    for (auto& o : operands) e->children.push_back(std::move(o));
    e->ops = std::move(ops);
    return e;
  }

  ExprPtr parse_math1() {
    int line = cur().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().text;
      left = binary(ExprType::binary, line, std::move(left), parse_concat(), op);
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(ExprType::concat, line);
    e->children.push_back(std::move(first));
    while (skip_op("~")) e->children.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    int line = cur().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().text;
      left = binary(ExprType::binary, line, std::move(left), parse_pow(), op);
    }
    return left;
  }

  ExprPtr parse_pow() {
    int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = binary(ExprType::binary, line, std::move(left), parse_unary(true), "**");
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    int line = cur().line;
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      bool neg = next().text == "-";
      node = make(neg ? ExprType::neg : ExprType::pos, line);
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    const Token& tok = cur();
    if (tok.type == Tok::name) {
      next();
      if (tok.text == "true" || tok.text == "True" || tok.text == "false" || tok.text == "False") {
        auto e = make(ExprType::constant, tok.line);
        e->constant = Value::boolean(tok.text == "true" || tok.text == "True");
        return e;
      }
      if (tok.text == "none" || tok.text == "None") {
        auto e = make(ExprType::constant, tok.line);
        e->constant = Value::none();
        return e;
      }
      if (with_namespace && is_op(".")) {
        next();
        auto e = make(ExprType::ns_ref, tok.line);
        e->name = tok.text;
        e->attr = expect_name().text;
        return e;
      }
      auto e = make(ExprType::name, tok.line);
      e->name = tok.text;
      return e;
    }
    if (tok.type == Tok::string) {
      std::string buf;
      int line = tok.line;
      while (cur().type == Tok::string) buf += next().text;  // adjacent literals concatenate
      auto e = make(ExprType::constant, line);
      e->constant = Value::string(std::move(buf));
      return e;
    }
    if (tok.type == Tok::integer || tok.type == Tok::floating) {
      next();
      auto e = make(ExprType::constant, tok.line);
      e->constant = tok.type == Tok::integer ? Value::integer(tok.int_value) : Value::floating(tok.float_value);
      return e;
    }
    if (is_op("(")) {
      next();
      ExprPtr e = parse_tuple(false, true, {}, false, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      auto e = make(ExprType::list, next().line);
      while (!is_op("]")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("]")) break;
        e->children.push_back(parse_expression(true));
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      auto e = make(ExprType::dict, next().line);
      while (!is_op("}")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("}")) break;
        e->children.push_back(parse_expression(true));
        expect_op(":");
        e->children.push_back(parse_expression(true));
      }
      expect_op("}");
      return e;
    }
    fail_at(tok.line, "unexpected " + describe(tok));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else break;
    }
    return node;
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& tok = next();
    if (tok.text == ".") {
      const Token& attr = cur();
      next();
      if (attr.type == Tok::name) {
        auto e = make(ExprType::getattr, tok.line);
        e->name = attr.text;
        e->children.push_back(std::move(node));
        return e;
      }
      if (attr.type != Tok::integer) fail_at(attr.line, "expected name or number");
      auto e = make(ExprType::getitem, tok.line);
      e->children.push_back(std::move(node));
      auto index = make(ExprType::constant, attr.line);
      index->constant = Value::integer(attr.int_value);
      e->children.push_back(std::move(index));
      return e;
    }
    // "[": one subscript or a tuple of them
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make(ExprType::getitem, tok.line);
    e->children.push_back(std::move(node));
    if (args.size() == 1) {
      e->children.push_back(std::move(args[0]));
    } else {
      auto tuple = make(ExprType::tuple, tok.line);
      tuple->children = std::move(args);
      e->children.push_back(std::move(tuple));
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    int line = cur().line;
    std::vector<ExprPtr> args;
    if (is_op(":")) {
      next();
      args.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!is_op(":")) return node;
      next();
      args.push_back(std::move(node));
    }
    if (is_op(":")) args.push_back(nullptr);
    else if (!is_op("]") && !is_op(",")) args.push_back(parse_expression(true));
    else args.push_back(nullptr);
    if (is_op(":")) {
      next();
      if (!is_op("]") && !is_op(",")) args.push_back(parse_expression(true));
      else args.push_back(nullptr);
    } else {
      args.push_back(nullptr);
    }
    auto e = make(ExprType::slice, line);
    e->children = std::move(args);
    return e;
  }

  void parse_call_args(Expr& call) {
    int line = cur().line;
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) unsupported(cur().line, "'*args' / '**kwargs' in calls");
      if (cur().type == Tok::name && look().type == Tok::op && look().text == "=") {
        std::string key = next().text;
        next();
        call.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!call.kwargs.empty()) fail_at(line, "invalid syntax for function call expression");
        call.children.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make(ExprType::call, cur().line);
    e->children.push_back(std::move(node));
    parse_call_args(*e);
    return e;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      const Token& tok = expect_name();
      std::string fname = tok.text;
      while (skip_op(".")) fname += "." + expect_name().text;
      if (!has_filter(fname)) {
        if (fname == "batch" || fname == "slice" || fname == "groupby" || fname == "pprint" || fname == "urlize" ||
            fname == "urlencode" || fname == "striptags" || fname == "wordwrap" || fname == "xmlattr" ||
            fname == "filesizeformat" || fname == "truncate" || fname == "random" || fname == "format")
          unsupported(tok.line, "the '" + fname + "' filter");
        fail_at(tok.line, "no filter named '" + fname + "'");
      }
      auto e = make(ExprType::filter, tok.line);
      e->name = fname;
      e->children.push_back(std::move(node));
      if (is_op("(")) parse_call_args(*e);
      node = std::move(e);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& is_tok = next();
    bool negated = skip_name("not");
    const Token& tok = expect_name();
    std::string tname = tok.text;
    while (skip_op(".")) tname += "." + expect_name().text;
    if (!has_test(tname)) fail_at(tok.line, "no test named '" + tname + "'");
    auto e = make(ExprType::test, is_tok.line);
    e->name = tname;
    e->children.push_back(std::move(node));
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((cur().type == Tok::name || cur().type == Tok::string || cur().type == Tok::integer ||
                cur().type == Tok::floating || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail_at(cur().line, "You cannot chain multiple tests with is");
      e->children.push_back(parse_postfix(parse_primary(false)));
    }
    if (!negated) return e;
    auto n = make(ExprType::not_, is_tok.line);
    n->children.push_back(std::move(e));
    return n;
  }

  const std::vector<Token>& t_;
  std::string name_;
  std::size_t pos_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
  bool has_generation_ = false;
};

}  // namespace

Program parse(const std::vector<Token>& tokens, const std::string& name) { return Parser(tokens, name).run(); }

}  // namespace vlm::jinja
