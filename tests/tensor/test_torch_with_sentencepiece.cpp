// libtorch and SentencePiece in one process. Linking Debian's libsentencepiece next to libtorch crashes at
// start-up (two protobuf copies interpose each other); vlmrt loads SentencePiece through an isolated plugin.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "text/sentencepiece_model.h"

TEST_CASE("SentencePiece through the plugin gives the reference ids while libtorch is loaded") {
  torch::Tensor t = torch::ones({2, 2}).matmul(torch::ones({2, 2}));
  CHECK(t.sum().item<float>() == 8.f);

  auto expected = nlohmann::json::parse(vlm::test::read_bytes(vlm::test::fixture("spm/expected.json")));
  auto model = vlm::SentencePieceModel::load(vlm::test::fixture("spm/tokenizer.model"));
  CHECK(model->unk_id() == 0);
  CHECK(model->bos_id() == 1);
  CHECK(model->eos_id() == 2);
  CHECK(model->pad_id() == -1);
  CHECK(model->piece_size() == 50);
  CHECK(model->is_control(1));
  CHECK(model->is_unknown(0));
  CHECK(model->id_to_piece(1) == "<s>");
  CHECK(model->piece_to_id("</s>") == 2);
  for (const auto& sample : expected["samples"]) {
    const std::string text = sample["text"];
    CAPTURE(text);
    const std::vector<int> ids = model->encode(text);
    CHECK(ids == sample["ids"].get<std::vector<int>>());
    CHECK(model->decode(ids) == sample["decoded"].get<std::string>());
  }
  vlm::test::expect_error([] { vlm::SentencePieceModel::load(vlm::test::fixture("spm/expected.json")); },
                          vlm::ErrorCode::corrupt_data, {"expected.json", "not a SentencePiece model"});
}
