#include "io/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "base/error.h"
#include "base/fs.h"

namespace vlm {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string parent_dir(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? "." : path.substr(0, pos);
}

// Pickle checkpoint files transformers and PyTorch write, in the order a folder is searched.
const char* const kPickleNames[] = {"pytorch_model.bin", "pytorch_model.bin.index.json", "adapter_model.bin",
                                    "model.pt", "model.pth", "training_args.bin"};

}  // namespace

void refuse_pickle_checkpoint(const std::string& path) {
  fail(ErrorCode::unsupported,
       path + " is a PyTorch pickle checkpoint. vlmrt reads only safetensors and never unpickles files, because "
              "loading a pickle can execute arbitrary code. Convert it once where Python is available, e.g. "
              "`python -c \"from transformers import AutoModel as M; M.from_pretrained('<folder>')"
              ".save_pretrained('<out>', safe_serialization=True)\"` (for an adapter: "
              "`PeftModel.from_pretrained(base, '<folder>').save_pretrained('<out>', safe_serialization=True)`), "
              "or download the repository's safetensors files instead.");
}

std::shared_ptr<Checkpoint> Checkpoint::open(const std::string& path, const std::string& stem) {
  auto ckpt = std::make_shared<Checkpoint>();
  std::string index_path, single_path;
  if (is_directory(path)) {
    const std::string single = join_path(path, stem + ".safetensors");
    const std::string index = join_path(path, stem + ".safetensors.index.json");
    if (is_regular_file(index)) {
      index_path = index;
    } else if (is_regular_file(single)) {
      single_path = single;
    } else {
      for (const char* name : kPickleNames) {
        if (is_regular_file(join_path(path, name))) refuse_pickle_checkpoint(join_path(path, name));
      }
      fail(ErrorCode::not_found, "no checkpoint in " + path + ": expected " + stem + ".safetensors or " + stem +
                                     ".safetensors.index.json");
    }
  } else if (ends_with(path, ".bin") || ends_with(path, ".pt") || ends_with(path, ".pth") ||
             ends_with(path, ".bin.index.json")) {
    refuse_pickle_checkpoint(path);
  } else if (ends_with(path, ".json")) {
    index_path = path;
  } else {
    single_path = path;
  }

  if (!single_path.empty()) {
    auto file = SafetensorsFile::open(single_path);
    ckpt->source_ = single_path;
    ckpt->shard_paths_.push_back(single_path);
    ckpt->shards_.push_back(file);
    for (const auto& t : file->tensors()) {
      ckpt->shard_of_[t.name] = 0;
      ckpt->names_.push_back(t.name);
    }
    ckpt->metadata_ = file->metadata();
  } else {
    ckpt->source_ = index_path;
    nlohmann::json index = nlohmann::json::parse(read_file(index_path), nullptr, false);
    if (index.is_discarded() || !index.is_object()) {
      fail(ErrorCode::corrupt_data, "checkpoint index " + index_path + " is not a valid JSON object");
    }
    auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object()) {
      fail(ErrorCode::corrupt_data, "checkpoint index " + index_path + " has no \"weight_map\" object");
    }
    if (auto md = index.find("metadata"); md != index.end() && md->is_object()) {
      for (auto it = md->begin(); it != md->end(); ++it) {
        ckpt->metadata_[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
      }
    }
    const std::string folder = parent_dir(index_path);
    std::map<std::string, std::size_t> shard_ids;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) {
        fail(ErrorCode::corrupt_data, "checkpoint index " + index_path + ": weight_map entry for \"" + it.key() +
                                          "\" is not a file name");
      }
      const std::string shard = it->get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
        fail(ErrorCode::corrupt_data, "checkpoint index " + index_path + ": shard name \"" + shard +
                                          "\" must be a plain file name in the same folder");
      }
      auto [pos, inserted] = shard_ids.emplace(shard, ckpt->shard_paths_.size());
      if (inserted) ckpt->shard_paths_.push_back(join_path(folder, shard));
      ckpt->shard_of_[it.key()] = pos->second;
      ckpt->names_.push_back(it.key());
    }
    ckpt->shards_.resize(ckpt->shard_paths_.size());
    // A missing shard is reported now, not at the first access halfway through loading a model.
    for (const auto& [shard, id] : shard_ids) {
      if (!is_regular_file(ckpt->shard_paths_[id])) {
        std::string example;
        for (const auto& [name, sid] : ckpt->shard_of_) {
          if (sid == id) {
            example = name;
            break;
          }
        }
        fail(ErrorCode::not_found, "checkpoint shard " + ckpt->shard_paths_[id] + " is missing (listed in " +
                                       index_path + " for tensor \"" + example +
                                       "\" and others); the download is incomplete: fetch every shard the index lists");
      }
    }
  }
  std::sort(ckpt->names_.begin(), ckpt->names_.end());
  return ckpt;
}

Checkpoint::Entry Checkpoint::get(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end()) fail(ErrorCode::not_found, "tensor \"" + name + "\" is not in checkpoint " + source_);
  std::shared_ptr<SafetensorsFile> file;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!shards_[it->second]) shards_[it->second] = SafetensorsFile::open(shard_paths_[it->second]);
    file = shards_[it->second];
  }
  const TensorInfo* info = file->find(name);
  if (info == nullptr) {
    fail(ErrorCode::corrupt_data, "checkpoint index " + source_ + " places tensor \"" + name + "\" in " +
                                      file->path() + ", but that shard does not contain it");
  }
  return {file, info};
}

void write_checkpoint(const std::string& folder, const std::vector<TensorBytes>& tensors,
                      std::size_t max_shard_bytes, const std::map<std::string, std::string>& metadata,
                      const std::string& stem) {
  if (max_shard_bytes == 0) fail(ErrorCode::invalid_argument, "max_shard_bytes must be positive");
  create_directories(folder);
  // Greedy sharding in the given order, like transformers: start a new shard when the next tensor would
  // overflow the current one (a tensor larger than the limit gets a shard of its own).
  std::vector<std::vector<TensorBytes>> shards(1);
  std::size_t current = 0, total = 0;
  for (const auto& t : tensors) {
    if (current + t.nbytes > max_shard_bytes && !shards.back().empty()) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(t);
    current += t.nbytes;
    total += t.nbytes;
  }

  std::set<std::string> keep;
  if (shards.size() == 1) {
    write_safetensors(join_path(folder, stem + ".safetensors"), shards[0], metadata);
    keep.insert(stem + ".safetensors");
    std::remove(join_path(folder, stem + ".safetensors.index.json").c_str());
  } else {
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    std::map<std::string, std::string> sorted_map;
    const std::size_t n = shards.size();
    for (std::size_t i = 0; i < n; ++i) {
      char name[256];
      std::snprintf(name, sizeof name, "%s-%05zu-of-%05zu.safetensors", stem.c_str(), i + 1, n);
      write_safetensors(join_path(folder, name), shards[i], metadata);
      keep.insert(name);
      for (const auto& t : shards[i]) sorted_map[t.name] = name;
    }
    for (const auto& [k, v] : sorted_map) weight_map[k] = v;
    nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomic(join_path(folder, stem + ".safetensors.index.json"), index.dump(2) + "\n");
    keep.insert(stem + ".safetensors.index.json");
    std::remove(join_path(folder, stem + ".safetensors").c_str());
  }
  // Remove shards of an earlier save that no longer belong to this checkpoint.
  const std::regex shard_pattern(stem + "-[0-9]{5}-of-[0-9]{5}\\.safetensors");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, shard_pattern) && !keep.count(name)) std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace vlm
