// The tree-walking evaluator of the built-in Jinja2 interpreter.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace vlm::jinja {

struct RenderOptions {
  // Byte ranges [begin, end) of the output written inside {% generation %} blocks, when not null.
  std::vector<std::pair<std::size_t, std::size_t>>* generation_spans = nullptr;
  std::size_t max_output_bytes = std::size_t(256) << 20;
  int max_call_depth = 200;
};

// Renders a parsed program with `context` (a dict Value) as its variables. Errors raised by the template
// (raise_exception, undefined variables used in operations, type errors) throw vlm::Error naming `name`
// and the template line.
std::string render(const Program& program, const Value& context, const std::string& name,
                   const RenderOptions& options);

}  // namespace vlm::jinja
