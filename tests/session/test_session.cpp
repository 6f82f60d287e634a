// The whole inference path on a complete tiny Qwen2-VL checkpoint folder: chat template, tokenizer, image files,
// image processor, placeholder expansion, model, generation and decoding, against transformers' processor and
// generate() (fixtures: tools/oracle/gen_session_fixtures.py).
#include "session/session.h"

#include <torch/torch.h>

#include "io/checkpoint.h"
#include "tensor/tensor_io.h"
#include "test_util.h"

using namespace vlm;

namespace {

Conversation conversation_of(const nlohmann::json& c) {
  Conversation conv;
  conv.messages = nlohmann::ordered_json::parse(c["messages"].dump());
  for (const auto& name : c["images"]) conv.images.push_back(load_image(vlm::test::fixture("session/" + name.get<std::string>())));
  return conv;
}

GenerationOptions greedy(int max_new_tokens) {
  GenerationOptions o;
  o.max_new_tokens = max_new_tokens;
  o.do_sample = false;
  o.eos_token_ids = std::vector<std::int64_t>{2};
  o.pad_token_id = 0;
  return o;
}

}  // namespace

TEST_CASE("a checkpoint folder runs end to end exactly as transformers' processor + generate()") {
  auto fixture = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("session/cases.json")));
  auto pixels = Checkpoint::open(vlm::test::fixture("session/pixel_values.safetensors"));
  SessionOptions options;
  options.model = vlm::test::fixture("session/qwen2_vl_tiny");
  auto session = Session::open(options);
  std::vector<Conversation> all;
  std::vector<std::vector<std::int64_t>> expected_all;
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    Conversation conv = conversation_of(c);
    PreparedPrompt p = session->prepare(conv);
    CHECK(p.text == c["prompt_text"].get<std::string>());
    CHECK(p.input_ids == c["input_ids"].get<std::vector<std::int64_t>>());
    if (c.contains("image_grid_thw")) {
      const auto grids = c["image_grid_thw"].get<std::vector<std::vector<std::int64_t>>>();
      REQUIRE(p.pixels.images.size() == grids.size());
      for (std::size_t i = 0; i < grids.size(); ++i) {
        CHECK(std::vector<std::int64_t>(p.pixels.images[i].grid_thw.begin(), p.pixels.images[i].grid_thw.end()) == grids[i]);
      }
      torch::Tensor expected = load_tensor(*pixels, name + ".pixel_values");
      torch::Tensor got = torch::from_blob(p.pixels.pixel_values.data(), p.pixels.shape, torch::kFloat32);
      REQUIRE(got.sizes() == expected.sizes());
      CHECK((got - expected).abs().max().item<float>() <= 1e-6f);
    }
    auto out = session->generate({conv}, greedy(fixture["max_new_tokens"].get<int>()));
    REQUIRE(out.size() == 1);
    CHECK(out[0].tokens == c["generated"].get<std::vector<std::int64_t>>());
    CHECK(out[0].text == c["generated_text"].get<std::string>());
    all.push_back(conv);
    expected_all.push_back(c["generated"].get<std::vector<std::int64_t>>());
  }
  // The three conversations in one left-padded batch give the same tokens as one by one.
  auto batched = session->generate(all, greedy(fixture["max_new_tokens"].get<int>()));
  REQUIRE(batched.size() == expected_all.size());
  for (std::size_t i = 0; i < batched.size(); ++i) CHECK(batched[i].tokens == expected_all[i]);
}

TEST_CASE("image placeholders and images must agree") {
  SessionOptions options;
  options.model = vlm::test::fixture("session/qwen2_vl_tiny");
  auto session = Session::open(options);
  Conversation conv;
  conv.messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the room ?"}]}])");
  vlm::test::expect_error([&] { session->prepare(conv); }, ErrorCode::invalid_argument, {"1 image placeholder", "0 images"});
  conv.images.push_back(load_image(vlm::test::fixture("session/wide.png")));
  conv.images.push_back(load_image(vlm::test::fixture("session/tall.png")));
  vlm::test::expect_error([&] { session->prepare(conv); }, ErrorCode::invalid_argument, {"1 image placeholder", "2 images"});
  vlm::test::expect_error([] {
    SessionOptions missing;
    missing.model = vlm::test::fixture("session/no-such-model");
    Session::open(missing);
  }, ErrorCode::not_found, {"no-such-model"});
}
