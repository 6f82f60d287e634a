// Reading the model parity fixtures (tests/fixtures/model/<config>/cases/<case>.safetensors).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "io/checkpoint.h"
#include "model/model.h"
#include "tensor/tensor_io.h"
#include "test_util.h"

namespace vlm::test {

inline std::string model_fixture(const std::string& config) { return fixture("model/" + config); }

struct ModelCase {
  std::map<std::string, torch::Tensor> tensors;
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  const torch::Tensor& at(const std::string& name) const { return tensors.at(name); }

  ForwardInputs inputs() const {
    ForwardInputs in;
    in.input_ids = at("input_ids");
    in.attention_mask = at("attention_mask");
    if (has("pixel_values")) {
      in.vision.pixel_values = at("pixel_values");
      in.vision.image_grid_thw = at("image_grid_thw");
    }
    return in;
  }
};

inline ModelCase load_case(const std::string& config, const std::string& name) {
  auto checkpoint = Checkpoint::open(model_fixture(config) + "/cases/" + name + ".safetensors");
  ModelCase c;
  for (const auto& [key, tensor] : load_all_tensors(*checkpoint)) c.tensors[key] = tensor.clone();
  return c;
}

// Largest |a - b| over the positions where `mask` [B, L] is 1 (a, b: [B, L, V]).
inline double max_diff_on(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  auto keep = mask.to(torch::kBool);
  return (a - b).abs().index({keep}).max().item<double>();
}

}  // namespace vlm::test
