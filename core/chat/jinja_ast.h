// Syntax tree of the built-in Jinja2 interpreter, and the parser that builds it from tokens. The grammar and
// operator precedence follow jinja2's parser (parse_condexpr > or > and > not > compare > + - > ~ > * / // %
// > ** > unary with postfix, filters and tests).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_lexer.h"
#include "chat/jinja_value.h"

namespace vlm::jinja {

enum class ExprType {
  constant,
  name,
  ns_ref,  // ns.attr as an assignment target
  tuple,
  list,
  dict,
  getattr,
  getitem,
  slice,
  call,
  filter,
  test,
  not_,
  neg,
  pos,
  and_,
  or_,
  cond,
  binary,  // op in `name`: + - * / // % **
  concat,
  compare,
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprType type;
  int line = 0;
  Value constant;
  std::string name;  // variable, attribute, filter, test or operator
  std::string attr;  // ns_ref attribute
  // Operands: getattr/filter/test/call subject first (may be null for a filter section), then arguments.
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // compare operators, one per children[1..]
};

enum class NodeType {
  text,
  print,
  if_,
  for_,
  set,
  set_block,
  macro,
  filter_block,
  with,
  break_,
  continue_,
  generation,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;
};

struct Node {
  NodeType type;
  int line = 0;
  std::string text;  // text node data; macro name
  ExprPtr target;    // for/set target
  ExprPtr expr;      // print, for iterable, set value, filter chain (subject-less)
  ExprPtr condition; // for-loop filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // if/elif conditions with their bodies
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  std::vector<std::pair<ExprPtr, ExprPtr>> assignments;  // with
};

struct Program {
  Body body;
  bool has_generation = false;
};

// Parses tokens into a program. Unknown filters, tests and statements are errors (vlm::Error unsupported) that
// name the construct and the line; malformed syntax is vlm::Error corrupt_data.
Program parse(const std::vector<Token>& tokens, const std::string& name);

// Whether the interpreter implements a filter / test of this name.
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

}  // namespace vlm::jinja
