// Chat templates: Hugging Face checkpoints ship a Jinja2 template that turns a conversation into the prompt
// string. vlmrt renders it with a built-in Jinja2 interpreter that matches what transformers'
// apply_chat_template (Python jinja2, ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, plus
// transformers' tojson / raise_exception / strftime_now / namespace / {% generation %}) produces, byte for byte.
//
// Parse once, render many:
//   auto set = vlm::chat::load_chat_template(checkpoint_dir);
//   vlm::chat::Template tmpl(set.default_template, set.origin);
//   std::string prompt = vlm::chat::apply_chat_template(tmpl, messages, /*add_generation_prompt=*/true,
//                                                       set.special_tokens);
//
// Supported: {{ }}, {% %}, {# #}, whitespace control (-/+), trim_blocks/lstrip_blocks, raw; for (with else,
// an `if` filter, tuple unpacking, break/continue and loop.index/index0/revindex/revindex0/first/last/length/
// previtem/nextitem/cycle/changed), if/elif/else, set (names, tuples, ns.attr, block set with filters), macro
// (defaults, keyword arguments, varargs/kwargs, recursion), filter blocks, with, print, generation; Python-exact
// literals, operators (incl. chained comparisons, `in`, `~`, slicing) and str()/repr()/json.dumps output;
// str/dict/list methods (split, strip, startswith, replace, format, items, get, ...); the filters abs attr
// capitalize center count d default dictsort e escape first float forceescape indent int items join last length
// list lower map max min reject rejectattr replace reverse round safe select selectattr sort string sum title
// tojson trim unique upper wordcount; all of jinja2's tests; globals range dict namespace raise_exception
// strftime_now. Constructs the interpreter does not implement ({% include %}, {% call %}, the 'groupby' filter,
// recursive loops, ...) are an error at parse time that names the construct and the template line, never a
// silently different prompt. Rendering is thread-safe: a Template can be shared between threads.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace vlm::chat {

class Template {
 public:
  // Parses `source`. `name` labels error messages ("<name> line 3: ..."). Throws vlm::Error: corrupt_data for
  // syntax errors, unsupported for constructs the interpreter does not implement.
  explicit Template(const std::string& source, std::string name = "chat_template");

  // Renders with the context's top-level keys as template variables. The ordered overload keeps the key
  // order of dicts (what `items`, `tojson` and dict printing show, as Python dicts do); the plain json overload
  // sees keys sorted. Errors the template raises (raise_exception, undefined values in operations, type
  // errors) throw vlm::Error invalid_argument naming the template line.
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const nlohmann::json& context) const;

  // Also returns the byte ranges [begin, end) of the output written inside {% generation %} blocks (the
  // assistant text transformers marks for return_assistant_tokens_mask), in output order.
  std::string render(const nlohmann::ordered_json& context,
                     std::vector<std::pair<std::size_t, std::size_t>>& generation_spans) const;

  bool has_generation_blocks() const;
  const std::string& source() const;

 private:
  friend std::string apply_chat_template(const Template&, const nlohmann::ordered_json&, bool,
                                         const nlohmann::ordered_json&, const nlohmann::ordered_json&);
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// The template(s) of a checkpoint folder and where they came from.
struct ChatTemplateSet {
  std::string default_template;               // what apply_chat_template uses without a template name
  std::map<std::string, std::string> named;   // every template by name ("default", "tool_use", ...)
  std::string origin;                         // file it came from, or "family default (<model_type>)"
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();  // bos_token, eos_token, ...

  // The template called `name` (e.g. "tool_use"); throws vlm::Error not_found listing the available names.
  const std::string& get(const std::string& name) const;
};

// Finds a checkpoint's chat template in transformers' order:
//   1. processor_config.json "chat_template" (a processor config key wins over files),
//   2. chat_template.json (the legacy processor file; the processor prefers it over chat_template.jinja),
//   3. chat_template.jinja, with additional_chat_templates/*.jinja as named templates,
//   4. tokenizer_config.json "chat_template": a string, or a list of {"name", "template"},
//   5. the family default for config.json's model_type (see default_chat_template).
// special_tokens holds the named special tokens of tokenizer_config.json (bos, eos, unk, sep, pad, cls, mask;
// special_tokens_map.json fills missing ones), which transformers passes to every template.
// Throws vlm::Error not_found when there is no template and no family default, naming the folder.
ChatTemplateSet load_chat_template(const std::string& folder);

// The documented default of a model family, for checkpoints without a template: "qwen2_vl" and "qwen2_5_vl"
// (Qwen ChatML with vision tokens, the template of Qwen2-VL-*-Instruct), "llava" (llava-hf's
// "USER: <image>\n... ASSISTANT:"), "blip-2" ("Question: ... Answer:", vlmrt's own; BLIP-2 has no template).
// Throws vlm::Error not_found for other model types.
std::string default_chat_template(const std::string& model_type);

// Renders a conversation the way transformers' processor.apply_chat_template(tokenize=False) does: messages
// have their null-valued keys dropped and reasoning fields aliased ("reasoning_content" / "thinking"), and the
// template sees messages, tools, documents, add_generation_prompt, the special tokens and `extra_context`
// (which overrides the special tokens, e.g. {"enable_thinking": false} or {"add_vision_id": true}; its "tools" and
// "documents" play the role of those apply_chat_template arguments and default to None). For a template set
// with a "tool_use" template, pick it with ChatTemplateSet::get("tool_use") when passing tools, as transformers does.
// Content blocks are passed through as given (no image_url -> image conversion).
// messages: a list of {"role": ..., "content": string or [{"type": "text", "text": ...}, {"type": "image"}]}.
std::string apply_chat_template(const Template& tmpl, const nlohmann::ordered_json& messages,
                                bool add_generation_prompt,
                                const nlohmann::ordered_json& special_tokens = nlohmann::ordered_json::object(),
                                const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object());

}  // namespace vlm::chat
