// Malformed and hostile templates fail with vlm::Error, never a crash or another exception type: a deterministic
// mutation run over the real templates, and explicit resource-limit cases.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "chat/chat_template.h"

using nlohmann::ordered_json;

namespace {

ordered_json sample_context() {
  return ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]},
      {"role": "assistant", "content": "<think>\nr\n</think>\n\nanswer"},
      {"role": "user", "content": "again"}
    ],
    "tools": null, "documents": null, "add_generation_prompt": true,
    "bos_token": "<s>", "eos_token": "</s>"
  })");
}

// Outcome of compiling and rendering one template: 0 rendered, 1 vlm::Error, 2 anything else (a bug).
int try_template(const std::string& source, const ordered_json& context) {
  try {
    vlm::chat::Template t(source, "mutant");
    t.render(context);
    return 0;
  } catch (const vlm::Error&) {
    return 1;
  } catch (...) {
    return 2;
  }
}

}  // namespace

TEST_CASE("mutated real templates render or fail with vlm::Error") {
  std::vector<std::string> seeds;
  for (const char* name : {"qwen3", "qwen2_vl", "llava", "blip2"})
    seeds.push_back(vlm::read_file(std::string(VLM_FIXTURES_DIR) + "/chat/templates/" + name + ".jinja"));
  const std::string alphabet = "{}%#-+|.[]()'\"\\:,=~*/ \nabcxy0129_";
  ordered_json context = sample_context();
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int rendered = 0, failed = 0, bugs = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string s = seeds[next() % seeds.size()];
    int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t pos = next() % s.size();
      char c = alphabet[next() % alphabet.size()];
      switch (next() % 3) {
        case 0: s.erase(pos, 1 + next() % 3); break;
        case 1: s.insert(pos, 1, c); break;
        default: s[pos] = c;
      }
    }
    int outcome = try_template(s, context);
    if (outcome == 2) {
      ++bugs;
      CAPTURE(s);
      FAIL_CHECK("a non-vlm::Error exception escaped");
    }
    (outcome == 0 ? rendered : failed)++;
  }
  CHECK(bugs == 0);
  CHECK(rendered > 100);
  CHECK(failed > 100);
}

TEST_CASE("resource limits are errors, not crashes") {
  auto code_of = [](const std::string& source, const ordered_json& context) {
    try {
      vlm::chat::Template(source).render(context);
    } catch (const vlm::Error& e) {
      return e.code();
    }
    return vlm::ErrorCode::internal;  // rendered: not expected here
  };
  ordered_json empty = ordered_json::object();
  CHECK(code_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", empty) ==
        vlm::ErrorCode::limit_exceeded);
  CHECK(code_of("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}", empty) ==
        vlm::ErrorCode::limit_exceeded);
  std::string nested_ifs;
  for (int i = 0; i < 400; ++i) nested_ifs += "{% if true %}";
  for (int i = 0; i < 400; ++i) nested_ifs += "{% endif %}";
  CHECK(code_of(nested_ifs, empty) == vlm::ErrorCode::limit_exceeded);
  // A list nested by a loop, then printed.
  CHECK(code_of("{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
                empty) == vlm::ErrorCode::limit_exceeded);
  // A namespace that contains itself.
  CHECK(code_of("{% set ns = namespace() %}{% set ns.me = [ns] %}{{ ns }}", empty) == vlm::ErrorCode::limit_exceeded);
  // Deep JSON in the context.
  ordered_json deep = 1;
  for (int i = 0; i < 2000; ++i) deep = ordered_json::array({deep});
  CHECK(code_of("{{ x }}", ordered_json{{"x", deep}}) == vlm::ErrorCode::limit_exceeded);
  // range() above jinja2's sandbox limit, and string repetition blow-up.
  CHECK(code_of("{{ range(200000)|length }}", empty) == vlm::ErrorCode::limit_exceeded);
  CHECK(code_of("{{ 'x' * 100000000 }}", empty) == vlm::ErrorCode::limit_exceeded);
}
