// Strict loading of checkpoint tensors into a module tree whose parameter names are the checkpoint keys.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <map>
#include <string>

#include "io/checkpoint.h"

namespace vlm {

struct WeightLoadPlan {
  torch::ScalarType dtype = torch::kFloat;
  torch::Device device = torch::kCPU;
  // Checkpoint key -> parameter name (key layouts differ between checkpoint generations). Identity when empty.
  std::function<std::string(const std::string&)> rename;
  // Parameters that share another's tensor when the checkpoint lacks them (tied embeddings): target -> source.
  std::map<std::string, std::string> tied;
  std::string family;  // for messages
};

// Loads every parameter of `root` from `checkpoint`. Missing, unexpected and wrongly shaped tensors are reported
// together in one vlm::Error(corrupt_data) naming each. Tensors whose dtype and device already match stay
// zero-copy views of the memory-mapped file.
void load_weights(torch::nn::Module& root, const Checkpoint& checkpoint, const WeightLoadPlan& plan);

}  // namespace vlm
