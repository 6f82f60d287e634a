// load_chat_template (where transformers finds a checkpoint's template), the family defaults, apply_chat_template
// context building, and the interpreter's error reporting.
#include <doctest/doctest.h>

#include <string>

#include "base/error.h"
#include "base/fs.h"
#include "chat/chat_template.h"

using nlohmann::ordered_json;
using vlm::chat::Template;

namespace {

std::string fixture(const std::string& rel) { return std::string(VLM_FIXTURES_DIR) + "/chat/" + rel; }

ordered_json expected_loads() { return ordered_json::parse(vlm::read_file(fixture("checkpoints/expected.json"))); }

// Runs `fn`, which must throw vlm::Error; returns it.
template <typename F>
vlm::Error error_of(F&& fn) {
  try {
    fn();
  } catch (const vlm::Error& e) {
    return e;
  }
  FAIL("expected a vlm::Error");
  return vlm::Error(vlm::ErrorCode::internal, "unreachable");
}

}  // namespace

TEST_CASE("load_chat_template follows transformers' file order") {
  ordered_json expected = expected_loads();

  SUBCASE("tokenizer_config.json string template and special tokens (real Qwen3 config)") {
    auto set = vlm::chat::load_chat_template(fixture("checkpoints/qwen3_tokenizer_config"));
    CHECK(set.default_template == expected["qwen3_tokenizer_config"]["chat_template"].get<std::string>());
    CHECK(set.default_template == vlm::read_file(fixture("templates/qwen3.jinja")));
    CHECK(set.origin.find("tokenizer_config.json") != std::string::npos);
    CHECK(set.special_tokens == expected["qwen3_tokenizer_config"]["special_tokens"]);
  }
  SUBCASE("chat_template.jinja wins over tokenizer_config.json") {
    auto set = vlm::chat::load_chat_template(fixture("checkpoints/jinja_over_config"));
    CHECK(set.default_template == expected["jinja_over_config"]["chat_template"].get<std::string>());
    CHECK(set.special_tokens == expected["jinja_over_config"]["special_tokens"]);
    Template t(set.default_template, set.origin);
    // The file's trailing newline is dropped by the renderer (keep_trailing_newline=False).
    CHECK(vlm::chat::apply_chat_template(t, ordered_json::array({{{"role", "user"}, {"content", "x"}}}), false,
                                         set.special_tokens) == "FROM JINJA <s>1");
  }
  SUBCASE("legacy chat_template.json wins over chat_template.jinja (processor order)") {
    auto set = vlm::chat::load_chat_template(fixture("checkpoints/legacy_json"));
    CHECK(set.default_template == expected["legacy_json"]["chat_template"].get<std::string>());
  }
  SUBCASE("named templates from a list in tokenizer_config.json") {
    auto set = vlm::chat::load_chat_template(fixture("checkpoints/named_templates"));
    const auto& named = expected["named_templates"]["chat_template"];
    CHECK(set.default_template == named["default"].get<std::string>());
    CHECK(set.get("tool_use") == named["tool_use"].get<std::string>());
    CHECK(set.named.size() == 2);
    auto e = error_of([&] { set.get("nope"); });
    CHECK(e.code() == vlm::ErrorCode::not_found);
    CHECK(std::string(e.what()).find("tool_use") != std::string::npos);
  }
  SUBCASE("chat_template.jinja with additional_chat_templates/*.jinja") {
    auto set = vlm::chat::load_chat_template(fixture("checkpoints/additional_templates"));
    const auto& named = expected["additional_templates"]["chat_template"];
    REQUIRE(named.is_object());
    CHECK(set.named.size() == named.size());
    for (auto it = named.begin(); it != named.end(); ++it) CHECK(set.get(it.key()) == it.value().get<std::string>());
    CHECK(set.default_template == named["default"].get<std::string>());
  }
  SUBCASE("family defaults by model_type when there is no template") {
    for (const char* name : {"qwen2_vl", "qwen2_5_vl", "llava", "blip_2"}) {
      CAPTURE(name);
      auto set = vlm::chat::load_chat_template(fixture(std::string("checkpoints/default_") + name));
      CHECK(set.default_template == expected[std::string("default_") + name]["chat_template"].get<std::string>());
      CHECK(set.origin.find("family default") != std::string::npos);
    }
    CHECK(vlm::chat::default_chat_template("qwen2_vl") == vlm::read_file(fixture("templates/qwen2_vl.jinja")));
    CHECK(vlm::chat::default_chat_template("qwen2_5_vl") == vlm::read_file(fixture("templates/qwen2_5_vl.jinja")));
    CHECK(vlm::chat::default_chat_template("llava") == vlm::read_file(fixture("templates/llava.jinja")));
    CHECK(vlm::chat::default_chat_template("blip-2") == vlm::read_file(fixture("templates/blip2.jinja")));
    CHECK(error_of([] { vlm::chat::default_chat_template("gpt2"); }).code() == vlm::ErrorCode::not_found);
  }
  SUBCASE("no template and no model_type: a clear not_found error (real LLaMA-2 config has no template)") {
    CHECK(expected["llama2_no_template"]["chat_template"].is_null());
    auto e = error_of([] { vlm::chat::load_chat_template(fixture("checkpoints/llama2_no_template")); });
    CHECK(e.code() == vlm::ErrorCode::not_found);
    CHECK(std::string(e.what()).find("chat_template.jinja") != std::string::npos);
  }
  SUBCASE("missing folder") {
    CHECK(error_of([] { vlm::chat::load_chat_template(fixture("checkpoints/does_not_exist")); }).code() ==
          vlm::ErrorCode::not_found);
  }
}

TEST_CASE("errors name the construct and the template line") {
  SUBCASE("unknown filter on line 3") {
    auto e = error_of([] { Template("a\nb\n{{ x | no_such_filter }}", "tmpl"); });
    std::string what = e.what();
    CHECK(what.find("tmpl line 3") != std::string::npos);
    CHECK(what.find("no_such_filter") != std::string::npos);
  }
  SUBCASE("unsupported tag") {
    auto e = error_of([] { Template("{% if x %}\n  {% include 'x.jinja' %}\n{% endif %}", "tmpl"); });
    CHECK(e.code() == vlm::ErrorCode::unsupported);
    CHECK(std::string(e.what()).find("line 2") != std::string::npos);
    CHECK(std::string(e.what()).find("include") != std::string::npos);
  }
  SUBCASE("unclosed block") {
    auto e = error_of([] { Template("{% for m in messages %}\n{{ m }}\n", "tmpl"); });
    CHECK(e.code() == vlm::ErrorCode::corrupt_data);
    CHECK(std::string(e.what()).find("endfor") != std::string::npos);
  }
  SUBCASE("raise_exception carries the template's message and line") {
    Template t("line1\n{% if messages|length == 0 %}{{ raise_exception('need at least one message') }}{% endif %}");
    auto e = error_of([&] { t.render(ordered_json{{"messages", ordered_json::array()}}); });
    CHECK(e.code() == vlm::ErrorCode::invalid_argument);
    CHECK(std::string(e.what()).find("need at least one message") != std::string::npos);
    CHECK(std::string(e.what()).find("line 2") != std::string::npos);
  }
  SUBCASE("undefined attribute access") {
    Template t("{{ messages[0].content.strip() }}\n{{ nothing.attr }}");
    auto e = error_of([&] { t.render(ordered_json{{"messages", {{{"content", " x "}}}}}); });
    CHECK(std::string(e.what()).find("'nothing' is undefined") != std::string::npos);
    CHECK(std::string(e.what()).find("line 2") != std::string::npos);
  }
  SUBCASE("runaway recursion hits a limit instead of crashing") {
    Template t("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    CHECK(error_of([&] { t.render(ordered_json::object()); }).code() == vlm::ErrorCode::limit_exceeded);
  }
  SUBCASE("context must be an object") {
    Template t("x");
    CHECK(error_of([&] { t.render(ordered_json::array()); }).code() == vlm::ErrorCode::invalid_argument);
    CHECK(error_of([&] { vlm::chat::apply_chat_template(t, ordered_json::object(), true); }).code() ==
          vlm::ErrorCode::invalid_argument);
  }
}

TEST_CASE("integers beyond 64 bits are an error, not a wrapped number") {
  for (const char* source : {"{{ 2 ** 64 }}", "{{ 9223372036854775807 + 1 }}", "{{ 3037000500 * 3037000500 }}",
                             "{{ (-9223372036854775807 - 1) // -1 }}", "{{ -(-9223372036854775807 - 1) }}"}) {
    CAPTURE(source);
    CHECK(error_of([&] { Template(source).render(ordered_json::object()); }).code() == vlm::ErrorCode::limit_exceeded);
  }
  CHECK(error_of([] { Template("{{ 99999999999999999999 }}"); }).code() == vlm::ErrorCode::limit_exceeded);
  CHECK(Template("{{ 2 ** 62 }} {{ 1 ** 1000000 }} {{ 0 ** 5 }}").render(ordered_json::object()) ==
        "4611686018427387904 1 0");
}

TEST_CASE("a compiled template renders many contexts") {
  Template t(vlm::chat::default_chat_template("qwen2_vl"), "qwen2_vl");
  auto user = [](const std::string& text) {
    return ordered_json::array({{{"role", "user"},
                                 {"content", ordered_json::array({{{"type", "image"}}, {{"type", "text"}, {"text", text}}})}}});
  };
  CHECK(vlm::chat::apply_chat_template(t, user("A?"), true) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>A?<|im_end|>\n<|im_start|>assistant\n");
  CHECK(vlm::chat::apply_chat_template(t, user("B!"), false) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>B!<|im_end|>\n");
  CHECK_FALSE(t.has_generation_blocks());
}

TEST_CASE("apply_chat_template builds the context like transformers") {
  SUBCASE("null-valued keys are dropped and reasoning is aliased") {
    Template t("{% for m in messages %}{{ m|tojson }}\n{% endfor %}{{ tools }}|{{ documents }}|{{ add_generation_prompt }}");
    ordered_json messages = ordered_json::array(
        {{{"role", "assistant"}, {"content", "a"}, {"tool_calls", nullptr}, {"reasoning", "r"}}});
    CHECK(vlm::chat::apply_chat_template(t, messages, false) ==
          "{\"thinking\": \"r\", \"role\": \"assistant\", \"content\": \"a\", \"reasoning\": \"r\", "
          "\"reasoning_content\": \"r\"}\nNone|None|False");
  }
  SUBCASE("extra context overrides special tokens") {
    Template t("{{ bos_token }}{{ enable_thinking }}");
    CHECK(vlm::chat::apply_chat_template(t, ordered_json::array(), false, {{"bos_token", "<s>"}},
                                         {{"bos_token", "<S>"}, {"enable_thinking", false}}) == "<S>False");
  }
  SUBCASE("plain nlohmann::json contexts see sorted keys") {
    Template t("{% for k in d %}{{ k }}{% endfor %}");
    nlohmann::json context = {{"d", {{"b", 1}, {"a", 2}}}};
    CHECK(t.render(context) == "ab");
    ordered_json ordered = {{"d", {{"b", 1}, {"a", 2}}}};
    CHECK(t.render(ordered) == "ba");
  }
}
