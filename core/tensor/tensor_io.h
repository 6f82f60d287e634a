// Safetensors checkpoints <-> torch tensors. Loading is zero-copy: a tensor aliases the memory-mapped file
// (copy-on-write pages, so writing into it never touches the file) and keeps the mapping alive for as long
// as it lives. Data whose offset is not aligned to its element size is copied instead.
#pragma once

#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace vlm {

// The torch scalar type of a safetensors dtype. Throws vlm::Error(unsupported) for types the linked libtorch
// does not have (unsigned 16/32/64-bit and float8 before libtorch 2.3 / 2.1).
torch::ScalarType to_scalar_type(DType dtype, const std::string& tensor_name = "");
DType from_scalar_type(torch::ScalarType type, const std::string& tensor_name = "");

torch::Tensor tensor_from_file(const std::shared_ptr<SafetensorsFile>& file, const TensorInfo& info);
torch::Tensor load_tensor(const Checkpoint& checkpoint, const std::string& name);
// Every tensor of the checkpoint by name.
std::map<std::string, torch::Tensor> load_all_tensors(const Checkpoint& checkpoint);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes one safetensors file atomically. Tensors may live on any device and be non-contiguous.
void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {});
// Writes a (possibly sharded) checkpoint folder; see write_checkpoint in io/checkpoint.h.
void save_checkpoint(const std::string& folder, const NamedTensors& tensors, std::size_t max_shard_bytes,
                     const std::map<std::string, std::string>& metadata = {}, const std::string& stem = "model");

}  // namespace vlm
