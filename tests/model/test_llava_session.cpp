// The whole LLaVA inference path on a complete tiny checkpoint folder (tests/fixtures/llava/session/llava_tiny:
// Llama-style byte-fallback BPE tokenizer.json with an <image> token, the llava-hf chat template, CLIP
// preprocessing): chat template, BOS, image files, pixel values, image-token expansion, model, generation and
// decoding, against transformers' LlavaProcessor + generate() (tools/oracle/gen_llava_fixtures.py).
#include "session/session.h"

#include <torch/torch.h>

#include "io/checkpoint.h"
#include "tensor/tensor_io.h"
#include "test_util.h"

using namespace vlm;

namespace {

std::string session_fixture(const std::string& name) { return vlm::test::fixture("llava/session/" + name); }

Conversation conversation_of(const nlohmann::json& c) {
  Conversation conv;
  conv.messages = nlohmann::ordered_json::parse(c["messages"].dump());
  for (const auto& name : c["images"]) conv.images.push_back(load_image(session_fixture(name.get<std::string>())));
  return conv;
}

GenerationOptions greedy(int max_new_tokens) {
  GenerationOptions o;
  o.max_new_tokens = max_new_tokens;
  o.do_sample = false;
  o.eos_token_ids = std::vector<std::int64_t>{2};
  return o;
}

}  // namespace

TEST_CASE("a LLaVA checkpoint folder runs end to end exactly as LlavaProcessor + generate()") {
  auto fixture = nlohmann::json::parse(vlm::test::read_bytes(session_fixture("cases.json")));
  auto pixels = Checkpoint::open(session_fixture("pixel_values.safetensors"));
  SessionOptions options;
  options.model = session_fixture("llava_tiny");
  auto session = Session::open(options);
  CHECK(session->model().info().family == "llava");
  CHECK(session->model().info().image_token_id == fixture["image_token_id"].get<std::int64_t>());
  REQUIRE(session->image_processor() != nullptr);
  CHECK(std::string(session->image_processor()->family()) == "clip");
  std::vector<Conversation> all;
  std::vector<std::vector<std::int64_t>> expected_all;
  double worst_pixel = 0;
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"];
    CAPTURE(name);
    Conversation conv = conversation_of(c);
    PreparedPrompt p = session->prepare(conv);
    CHECK(p.text == c["prompt_text"].get<std::string>());
    CHECK(p.input_ids == c["input_ids"].get<std::vector<std::int64_t>>());
    if (!conv.images.empty()) {
      torch::Tensor expected = load_tensor(*pixels, name + ".pixel_values");
      torch::Tensor got = torch::from_blob(p.pixels.pixel_values.data(), p.pixels.shape, torch::kFloat32);
      REQUIRE(got.sizes() == expected.sizes());
      const double diff = (got - expected).abs().max().item<double>();
      CHECK(diff <= 1e-6);
      worst_pixel = std::max(worst_pixel, diff);
    }
    auto out = session->generate({conv}, greedy(fixture["max_new_tokens"].get<int>()));
    REQUIRE(out.size() == 1);
    CHECK(out[0].tokens == c["generated"].get<std::vector<std::int64_t>>());
    CHECK(out[0].text == c["generated_text"].get<std::string>());
    all.push_back(conv);
    expected_all.push_back(c["generated"].get<std::vector<std::int64_t>>());
  }
  MESSAGE("LLaVA session: largest |pixel_values - transformers| " << worst_pixel);
  // One left-padded batch of all conversations gives the same tokens as one by one.
  auto batched = session->generate(all, greedy(fixture["max_new_tokens"].get<int>()));
  REQUIRE(batched.size() == expected_all.size());
  for (std::size_t i = 0; i < batched.size(); ++i) CHECK(batched[i].tokens == expected_all[i]);
}

TEST_CASE("LLaVA session: image placeholders and images must agree") {
  SessionOptions options;
  options.model = session_fixture("llava_tiny");
  auto session = Session::open(options);
  Conversation conv;
  conv.messages = nlohmann::ordered_json::parse(
      R"([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in this image?"}]}])");
  vlm::test::expect_error([&] { session->prepare(conv); }, ErrorCode::invalid_argument, {"1 image placeholder", "0 images"});
}
