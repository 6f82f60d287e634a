#include "chat/chat_template.h"

#include <dirent.h>

#include <algorithm>

#include "base/error.h"
#include "base/fs.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_lexer.h"

namespace vlm::chat {

struct Template::Impl {
  std::string source;
  std::string name;
  jinja::Program program;
};

Template::Template(const std::string& source, std::string name) {
  auto impl = std::make_shared<Impl>();
  impl->source = source;
  impl->name = std::move(name);
  auto tokens = jinja::tokenize(source, jinja::LexOptions{}, impl->name);
  impl->program = jinja::parse(tokens, impl->name);
  impl_ = std::move(impl);
}

std::string Template::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object())
    fail(ErrorCode::invalid_argument, impl_->name + ": the render context must be a JSON object of variables");
  return jinja::render(impl_->program, jinja::from_json(context), impl_->name, jinja::RenderOptions{});
}

std::string Template::render(const nlohmann::json& context) const {
  return render(nlohmann::ordered_json::parse(context.dump()));
}

std::string Template::render(const nlohmann::ordered_json& context,
                             std::vector<std::pair<std::size_t, std::size_t>>& generation_spans) const {
  if (!context.is_object())
    fail(ErrorCode::invalid_argument, impl_->name + ": the render context must be a JSON object of variables");
  generation_spans.clear();
  jinja::RenderOptions options;
  options.generation_spans = &generation_spans;
  return jinja::render(impl_->program, jinja::from_json(context), impl_->name, options);
}

bool Template::has_generation_blocks() const { return impl_->program.has_generation; }
const std::string& Template::source() const { return impl_->source; }

// ------------------------------------------------------------------ family defaults

namespace {

// Qwen2-VL-*-Instruct's chat_template.json; Qwen2.5-VL-*-Instruct ship the same text (see
// tests/fixtures/chat/README.md for the sources).
const char* const kQwen2VLTemplate =
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages "
    "%}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful "
    "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ "
    "message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == "
    "'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 "
    "%}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif "
    "%}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set "
    "video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif "
    "%}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% "
    "endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

// llava-hf/llava-1.5-*-hf's chat_template.json.
const char* const kLlavaTemplate =
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif "
    "%}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') "
    "%}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content "
    "in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else "
    "%}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ "
    "content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ "
    "'ASSISTANT:' }}{% endif %}";

// vlmrt's own default for BLIP-2, which has no chat template: the "Question: ... Answer:" prompt of the BLIP-2
// model documentation, one "Question:"/"Answer:" pair per turn, images left to the processor (which prepends
// the query tokens itself).
const char* const kBlip2Template =
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{%- set text = message['content'] -%}"
    "{%- else -%}{%- set text = message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') "
    "| join(' ') -%}{%- endif -%}"
    "{%- if not loop.first -%}{{ ' ' }}{%- endif -%}"
    "{%- if message['role'] == 'user' -%}{{ 'Question: ' + text }}"
    "{%- elif message['role'] == 'assistant' -%}{{ 'Answer: ' + text }}"
    "{%- else -%}{{ text }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{%- if messages -%}{{ ' ' }}{%- endif -%}{{ 'Answer:' }}{%- endif -%}";

nlohmann::ordered_json read_json(const std::string& path) {
  std::string text = read_file(path);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::corrupt_data, path + ": not valid JSON (" + e.what() + ")");
  }
}

std::string template_string(const nlohmann::ordered_json& value, const std::string& where) {
  if (!value.is_string()) fail(ErrorCode::corrupt_data, where + ": \"chat_template\" must be a string");
  return value.get<std::string>();
}

void fill_special_tokens(ChatTemplateSet& set, const std::string& folder) {
  static const char* const kNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
  auto take = [&](const nlohmann::ordered_json& config, bool only_missing) {
    for (const char* name : kNames) {
      if (!config.contains(name) || (only_missing && set.special_tokens.contains(name))) continue;
      const auto& v = config[name];
      if (v.is_string()) set.special_tokens[name] = v;
      else if (v.is_object() && v.contains("content") && v["content"].is_string()) set.special_tokens[name] = v["content"];
    }
  };
  std::string tokenizer_config = join_path(folder, "tokenizer_config.json");
  if (is_regular_file(tokenizer_config)) take(read_json(tokenizer_config), false);
  std::string special_map = join_path(folder, "special_tokens_map.json");
  if (is_regular_file(special_map)) take(read_json(special_map), true);
}

std::vector<std::string> jinja_files(const std::string& dir) {
  std::vector<std::string> names;
  if (!is_directory(dir)) return names;
  DIR* d = opendir(dir.c_str());
  if (!d) fail(ErrorCode::io, dir + ": cannot list the directory");
  while (dirent* entry = readdir(d)) {
    std::string n = entry->d_name;
    if (n.size() > 6 && n.compare(n.size() - 6, 6, ".jinja") == 0) names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string default_chat_template(const std::string& model_type) {
  if (model_type == "qwen2_vl" || model_type == "qwen2_5_vl") return kQwen2VLTemplate;
  if (model_type == "llava") return kLlavaTemplate;
  if (model_type == "blip-2" || model_type == "blip_2") return kBlip2Template;
  fail(ErrorCode::not_found, "no default chat template for model_type '" + model_type +
                                 "' (known: qwen2_vl, qwen2_5_vl, llava, blip-2); add a chat_template.jinja");
}

const std::string& ChatTemplateSet::get(const std::string& name) const {
  auto it = named.find(name);
  if (it != named.end()) return it->second;
  std::string available;
  for (const auto& kv : named) available += (available.empty() ? "" : ", ") + kv.first;
  fail(ErrorCode::not_found, origin + ": no chat template named '" + name + "' (available: " + available + ")");
}

ChatTemplateSet load_chat_template(const std::string& folder) {
  if (!is_directory(folder)) fail(ErrorCode::not_found, folder + ": not a directory (expected a checkpoint folder)");
  ChatTemplateSet set;
  fill_special_tokens(set, folder);
  auto finish = [&](std::string origin) {
    set.origin = std::move(origin);
    auto it = set.named.find("default");
    if (it == set.named.end())
      fail(ErrorCode::corrupt_data, set.origin + ": there are several chat templates but none is named \"default\"");
    set.default_template = it->second;
    return set;
  };

  std::string processor_config = join_path(folder, "processor_config.json");
  if (is_regular_file(processor_config)) {
    auto config = read_json(processor_config);
    if (config.is_object() && config.contains("chat_template") && !config["chat_template"].is_null()) {
      set.named["default"] = template_string(config["chat_template"], processor_config);
      return finish(processor_config);
    }
  }
  std::string legacy = join_path(folder, "chat_template.json");
  if (is_regular_file(legacy)) {
    auto config = read_json(legacy);
    if (!config.is_object() || !config.contains("chat_template"))
      fail(ErrorCode::corrupt_data, legacy + ": expected an object with a \"chat_template\" key");
    set.named["default"] = template_string(config["chat_template"], legacy);
    return finish(legacy);
  }
  std::string jinja = join_path(folder, "chat_template.jinja");
  std::string extra_dir = join_path(folder, "additional_chat_templates");
  auto extras = jinja_files(extra_dir);
  if (is_regular_file(jinja) || !extras.empty()) {
    for (const auto& file : extras)
      set.named[file.substr(0, file.size() - 6)] = read_file(join_path(extra_dir, file));
    if (is_regular_file(jinja)) set.named["default"] = read_file(jinja);
    return finish(is_regular_file(jinja) ? jinja : extra_dir);
  }
  std::string tokenizer_config = join_path(folder, "tokenizer_config.json");
  if (is_regular_file(tokenizer_config)) {
    auto config = read_json(tokenizer_config);
    if (config.is_object() && config.contains("chat_template") && !config["chat_template"].is_null()) {
      const auto& value = config["chat_template"];
      if (value.is_array()) {
        for (const auto& entry : value) {
          if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
              !entry["name"].is_string() || !entry["template"].is_string())
            fail(ErrorCode::corrupt_data,
                 tokenizer_config + ": each entry of the \"chat_template\" list needs string \"name\" and \"template\"");
          set.named[entry["name"].get<std::string>()] = entry["template"].get<std::string>();
        }
      } else {
        set.named["default"] = template_string(value, tokenizer_config);
      }
      return finish(tokenizer_config);
    }
  }
  std::string config_path = join_path(folder, "config.json");
  if (is_regular_file(config_path)) {
    auto config = read_json(config_path);
    if (config.is_object() && config.contains("model_type") && config["model_type"].is_string()) {
      std::string model_type = config["model_type"].get<std::string>();
      set.named["default"] = default_chat_template(model_type);
      return finish("family default (" + model_type + ")");
    }
  }
  fail(ErrorCode::not_found, folder +
                                 ": no chat template (looked for processor_config.json, chat_template.json, "
                                 "chat_template.jinja, tokenizer_config.json and a model_type in config.json with "
                                 "a family default); add a chat_template.jinja");
}

std::string apply_chat_template(const Template& tmpl, const nlohmann::ordered_json& messages,
                                bool add_generation_prompt, const nlohmann::ordered_json& special_tokens,
                                const nlohmann::ordered_json& extra_context) {
  if (!messages.is_array())
    fail(ErrorCode::invalid_argument, "apply_chat_template: messages must be a JSON list of message objects");
  if (!special_tokens.is_object() || !extra_context.is_object())
    fail(ErrorCode::invalid_argument, "apply_chat_template: special_tokens and extra_context must be JSON objects");
  // Built directly as interpreter values: no intermediate JSON copies.
  using jinja::Value;
  std::vector<Value> chat;
  chat.reserve(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    if (!message.is_object())
      fail(ErrorCode::invalid_argument,
           "apply_chat_template: message " + std::to_string(i) + " is not an object with \"role\" and \"content\"");
    // The processor drops null-valued keys (OpenAI-style content=None) before rendering.
    auto clean = std::make_shared<jinja::Dict>();
    const nlohmann::ordered_json* reasoning = nullptr;
    for (auto it = message.begin(); it != message.end(); ++it) {
      if (it.value().is_null()) continue;
      clean->set(Value::string(it.key()), jinja::from_json(it.value()));
    }
    for (const char* key : {"reasoning_content", "thinking", "reasoning"})
      if (!reasoning && message.contains(key) && !message[key].is_null()) reasoning = &message[key];
    if (reasoning) {
      // transformers' _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r}.
      Value r = jinja::from_json(*reasoning);
      auto aliased = std::make_shared<jinja::Dict>();
      aliased->set(Value::string("thinking"), r);
      for (auto& kv : clean->items) aliased->set(kv.first, kv.second);
      aliased->set(Value::string("reasoning_content"), r);
      clean = aliased;
    }
    chat.push_back(Value::dict(clean));
  }
  auto context = std::make_shared<jinja::Dict>();
  for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it)
    context->set(Value::string(it.key()), jinja::from_json(it.value()));
  for (auto it = extra_context.begin(); it != extra_context.end(); ++it)
    context->set(Value::string(it.key()), jinja::from_json(it.value()));
  context->set(Value::string("messages"), Value::list(std::move(chat)));
  // tools / documents are apply_chat_template arguments in transformers; here they may come in extra_context.
  if (!context->find(Value::string("tools"))) context->set(Value::string("tools"), Value::none());
  if (!context->find(Value::string("documents"))) context->set(Value::string("documents"), Value::none());
  context->set(Value::string("add_generation_prompt"), Value::boolean(add_generation_prompt));
  return jinja::render(tmpl.impl_->program, Value::dict(context), tmpl.impl_->name, jinja::RenderOptions{});
}

}  // namespace vlm::chat
