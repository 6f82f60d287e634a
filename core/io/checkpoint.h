// A Hugging Face checkpoint on disk: one safetensors file, or shards listed by "<stem>.safetensors.index.json".
// Shards are opened lazily on first access. Pickle checkpoints (pytorch_model.bin, *.pt) are refused: loading a
// pickle can run arbitrary code, so vlmrt never unpickles anything.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace vlm {

class Checkpoint {
 public:
  // `path` is a folder holding "<stem>.safetensors" or "<stem>.safetensors.index.json", a .safetensors file,
  // or an index .json file. `stem` is "model" for models and "adapter_model" for PEFT adapters.
  static std::shared_ptr<Checkpoint> open(const std::string& path, const std::string& stem = "model");

  // Every tensor name, sorted.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return shard_of_.count(name) != 0; }

  struct Entry {
    std::shared_ptr<SafetensorsFile> file;
    const TensorInfo* info = nullptr;
  };
  // Opens the tensor's shard if needed (thread-safe). Throws vlm::Error(not_found) naming the checkpoint.
  Entry get(const std::string& name) const;

  // "__metadata__" of a single file, or "metadata" of the index (values stringified).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Where the checkpoint was read from (the file or index path).
  const std::string& source() const { return source_; }
  std::size_t shard_count() const { return shard_paths_.size(); }

 private:
  std::string source_;
  std::vector<std::string> names_;
  std::map<std::string, std::size_t> shard_of_;
  std::vector<std::string> shard_paths_;
  mutable std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> metadata_;
};

// Throws vlm::Error(unsupported) explaining why pickle checkpoints are refused and how to convert one.
[[noreturn]] void refuse_pickle_checkpoint(const std::string& path);

// Writes tensors as "<stem>.safetensors", or, when their total size exceeds `max_shard_bytes`, as
// "<stem>-0000k-of-0000n.safetensors" shards plus "<stem>.safetensors.index.json" (metadata.total_size and
// weight_map, as transformers writes them). Every file is written atomically; shard files of an earlier save
// in the same folder that the new index no longer lists are removed after the new index is in place.
void write_checkpoint(const std::string& folder, const std::vector<TensorBytes>& tensors,
                      std::size_t max_shard_bytes, const std::map<std::string, std::string>& metadata = {},
                      const std::string& stem = "model");

}  // namespace vlm
