// The whole inference path on a complete tiny Qwen2-VL checkpoint folder: chat template, tokenizer, image files,
// image processor, placeholder expansion, model, generation and decoding, against transformers' processor and
// generate() (fixtures: tools/oracle/gen_session_fixtures.py).
#include "session/session.h"

#include <torch/torch.h>

#include <algorithm>

#include "io/checkpoint.h"
#include "model/image_feature_store.h"
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

TEST_CASE("with an image feature store, generation reads each image's stored features and equals transformers") {
  auto fixture = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("session/cases.json")));
  const int max_new = fixture["max_new_tokens"].get<int>();
  vlm::test::TempDir dir;
  SessionOptions options;
  options.model = vlm::test::fixture("session/qwen2_vl_tiny");
  auto session = Session::open(options);
  auto store = std::make_shared<ImageFeatureStore>(
      dir.path(), image_feature_fingerprint(session->folder(), session->model(), "no"), std::int64_t{1} << 30);
  session->set_image_feature_store(store);
  std::vector<Conversation> all;
  std::vector<std::vector<std::int64_t>> expected;
  std::int64_t images = 0;
  for (const auto& c : fixture["cases"]) {
    all.push_back(conversation_of(c));
    expected.push_back(c["generated"].get<std::vector<std::int64_t>>());
    images += all.back().images.empty() ? 0 : 1;
  }
  REQUIRE(images > 0);
  // First pass: every prompt with images computes and stores its features; second pass (a batch): all read back.
  for (std::size_t i = 0; i < all.size(); ++i) {
    CAPTURE(i);
    CHECK(session->generate({all[i]}, greedy(max_new))[0].tokens == expected[i]);
  }
  CHECK(store->computed() == images);
  CHECK(store->writes() == images);
  CHECK(store->hits() == 0);
  auto batched = session->generate(all, greedy(max_new));
  for (std::size_t i = 0; i < batched.size(); ++i) CHECK(batched[i].tokens == expected[i]);
  CHECK(store->computed() == images);
  CHECK(store->hits() == images);

  // Scores through the store equal scores without it.
  const Conversation& with_image = *std::find_if(all.begin(), all.end(), [](const Conversation& c) { return !c.images.empty(); });
  const ContinuationScore stored = session->score(with_image, " a red square");
  session->set_image_feature_store(nullptr);
  const ContinuationScore computed = session->score(with_image, " a red square");
  CHECK(stored.token_logprobs == computed.token_logprobs);
  CHECK(stored.is_greedy == computed.is_greedy);
}
