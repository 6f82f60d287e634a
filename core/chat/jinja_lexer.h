// Tokenizer of the built-in Jinja2 interpreter. It follows jinja2's lexer with the environment transformers
// uses for chat templates: default delimiters, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline
// False, "\n" as the newline sequence, no line statements.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vlm::jinja {

enum class Tok {
  data,            // template text outside tags
  variable_begin,  // {{
  variable_end,    // }}
  block_begin,     // {%
  block_end,       // %}
  name,
  string,
  integer,
  floating,
  op,  // operator or punctuation; text holds it ("==", "(", "|", ...)
  eof,
};

struct Token {
  Tok type;
  std::string text;  // data, name, decoded string literal, operator text
  std::int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws vlm::Error(corrupt_data) naming the line on a malformed template (unclosed tag, bad string, ...).
std::vector<Token> tokenize(std::string_view source, const LexOptions& options, const std::string& name);

}  // namespace vlm::jinja
