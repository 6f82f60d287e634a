// The built-in Jinja2 interpreter against Python jinja2 as transformers configures it: every case of
// tests/fixtures/chat/interpreter_cases.json (made by tools/oracle/gen_chat_fixtures.py) renders to the exact
// string Python produced, or fails where Python failed.
#include <doctest/doctest.h>

#include <string>

#include "base/error.h"
#include "base/fs.h"
#include "chat/chat_template.h"

using nlohmann::ordered_json;

namespace {

ordered_json load_cases(const std::string& file) {
  return ordered_json::parse(vlm::read_file(std::string(VLM_FIXTURES_DIR) + "/chat/" + file));
}

}  // namespace

TEST_CASE("interpreter cases render exactly like Python jinja2") {
  ordered_json fixture = load_cases("interpreter_cases.json");
  const auto& cases = fixture["cases"];
  REQUIRE(cases.size() >= 80);
  int rendered = 0, render_errors = 0, syntax_errors = 0, unsupported = 0;
  for (const auto& c : cases) {
    std::string name = c["name"];
    std::string source = c["template"];
    CAPTURE(name);
    if (!c.contains("error")) {
      std::string got;
      try {
        vlm::chat::Template t(source, name);
        got = t.render(c["context"]);
      } catch (const vlm::Error& e) {
        FAIL_CHECK("unexpected error: " << e.what());
        continue;
      }
      CHECK(got == c["expected"].get<std::string>());
      ++rendered;
    } else if (c["error"] == "render") {
      vlm::chat::Template t(source, name);
      CHECK_THROWS_AS(t.render(c["context"]), vlm::Error);
      ++render_errors;
    } else if (c["error"] == "syntax") {
      CHECK_THROWS_AS(vlm::chat::Template(source, name), vlm::Error);
      ++syntax_errors;
    } else {
      REQUIRE(c["error"] == "unsupported");
      try {
        vlm::chat::Template t(source, name);
        FAIL_CHECK("expected an unsupported-construct error");
      } catch (const vlm::Error& e) {
        CHECK(e.code() == vlm::ErrorCode::unsupported);
        std::string what = e.what();
        CHECK(what.find(c["construct"].get<std::string>()) != std::string::npos);
        CHECK(what.find("line 1") != std::string::npos);
      }
      ++unsupported;
    }
  }
  CHECK(rendered >= 60);
  CHECK(render_errors >= 10);
  CHECK(syntax_errors >= 5);
  CHECK(unsupported >= 5);
}

TEST_CASE("real chat templates match transformers' apply_chat_template") {
  ordered_json fixture = load_cases("conversation_cases.json");
  const auto& cases = fixture["cases"];
  REQUIRE(cases.size() >= 60);
  std::map<std::string, std::unique_ptr<vlm::chat::Template>> templates;
  int with_spans = 0;
  for (const auto& c : cases) {
    std::string name = c["name"];
    CAPTURE(name);
    std::string template_name = c["template"];
    auto& tmpl = templates[template_name];
    if (!tmpl) {
      std::string path = std::string(VLM_FIXTURES_DIR) + "/chat/templates/" + template_name + ".jinja";
      tmpl = std::make_unique<vlm::chat::Template>(vlm::read_file(path), template_name);
    }
    std::string got = vlm::chat::apply_chat_template(*tmpl, c["messages"], c["add_generation_prompt"].get<bool>(),
                                                     c["special_tokens"], c["extra_context"]);
    CHECK(got == c["expected"].get<std::string>());
    if (c.contains("generation_spans")) {
      // Same context as apply_chat_template builds, rendered with span tracking.
      ordered_json context = c["special_tokens"];
      context["messages"] = c["messages"];
      context["tools"] = nullptr;
      context["documents"] = nullptr;
      context["add_generation_prompt"] = c["add_generation_prompt"];
      std::vector<std::pair<std::size_t, std::size_t>> spans;
      std::string again = tmpl->render(context, spans);
      CHECK(again == got);
      REQUIRE(spans.size() == c["generation_spans"].size());
      for (std::size_t i = 0; i < spans.size(); ++i) {
        CHECK(spans[i].first == c["generation_spans"][i][0].get<std::size_t>());
        CHECK(spans[i].second == c["generation_spans"][i][1].get<std::size_t>());
      }
      CHECK(tmpl->has_generation_blocks());
      ++with_spans;
    }
  }
  CHECK(templates.size() == 5);
  CHECK(with_spans >= 8);
}
