#include "model/image_feature_store.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "../../include/vlmrt.h"  // VLMRT_VERSION_STRING: features computed by another version are not reused
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "tensor/tensor_io.h"

namespace vlm {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFeaturesTensor = "features";

// Two independent 64-bit multiply-xorshift lanes over 8-byte words: a cache key, not a cryptographic digest
// (a collision between two different images would need ~2^64 entries).
class Hash128 {
 public:
  void add(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    length_ += size;
    for (; size >= 8; p += 8, size -= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      mix(word);
    }
    if (size > 0) {
      std::uint64_t word = 0;
      std::memcpy(&word, p, size);
      mix(word ^ (static_cast<std::uint64_t>(size) << 56));
    }
  }
  void add(const std::string& text) {
    const std::uint64_t n = text.size();
    add(&n, sizeof n);
    add(text.data(), text.size());
  }
  std::string hex() const {
    const std::uint64_t a = finish(a_ ^ length_), b = finish(b_ ^ (length_ * 0x9E3779B97F4A7C15ULL));
    char out[33];
    std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(a),
                  static_cast<unsigned long long>(b));
    return out;
  }

 private:
  void mix(std::uint64_t w) {
    a_ = (a_ ^ w) * 0xFF51AFD7ED558CCDULL;
    a_ ^= a_ >> 32;
    b_ = (b_ + w) * 0xC4CEB9FE1A85EC53ULL;
    b_ = (b_ << 23) | (b_ >> 41);
  }
  static std::uint64_t finish(std::uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    x ^= x >> 33;
    return x;
  }
  std::uint64_t a_ = 0x243F6A8885A308D3ULL, b_ = 0x13198A2E03707344ULL, length_ = 0;
};

void hash_tensor(Hash128& hash, const char* name, const torch::Tensor& t) {
  hash.add(std::string(name));
  if (!t.defined()) {
    hash.add(std::string("undefined"));
    return;
  }
  const torch::Tensor c = t.to(torch::kCPU).contiguous();
  hash.add(std::string(c10::toString(c.scalar_type())));
  for (const auto d : c.sizes()) hash.add(&d, sizeof d);
  hash.add(c.data_ptr(), static_cast<std::size_t>(c.numel()) * c.element_size());
}

std::int64_t folder_bytes(const fs::path& root) {
  std::int64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const auto size = it->file_size(size_ec);
      if (!size_ec) total += static_cast<std::int64_t>(size);
    }
  }
  return total;
}

}  // namespace

bool in_vision_path(const ModelInfo& info, const std::string& path) {
  for (const std::string* prefix : {&info.vision_tower_prefix, &info.projector_prefix}) {
    if (!prefix->empty() && path.compare(0, prefix->size(), *prefix) == 0) return true;
  }
  return false;
}

std::string lora_vision_path_use(const ModelInfo& info, const LoraModel& lora) {
  for (const auto& path : lora.adapted_paths()) {
    if (in_vision_path(info, path)) return "an adapter on " + path;
  }
  for (const auto& [key, tensor] : lora.parameters()) {
    if (in_vision_path(info, lora_module_path_of_key(key))) return "a trained tensor " + key;
  }
  return "";
}

std::string image_inputs_key(const VisionInputs& images) {
  Hash128 hash;
  hash_tensor(hash, "pixel_values", images.pixel_values);
  hash_tensor(hash, "image_grid_thw", images.image_grid_thw);
  hash_tensor(hash, "image_sizes", images.image_sizes);
  return hash.hex();
}

std::string image_feature_fingerprint(const std::string& model_folder, const VisionLanguageModel& model,
                                      const std::string& autocast) {
  nlohmann::ordered_json j;
  j["vlmrt"] = VLMRT_VERSION_STRING;
  j["libtorch"] = TORCH_VERSION;
  std::error_code ec;
  const fs::path folder = fs::weakly_canonical(fs::path(model_folder), ec);
  j["model_folder"] = ec ? model_folder : folder.string();
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  std::vector<fs::path> names;
  for (fs::directory_iterator it(ec ? fs::path(model_folder) : folder, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    const auto ext = it->path().extension().string();
    if (ext == ".safetensors" || name == "config.json" || name == "model.safetensors.index.json") {
      names.push_back(it->path());
    }
  }
  std::sort(names.begin(), names.end());
  for (const auto& path : names) {
    std::error_code file_ec;
    // Follow links: Hugging Face cache snapshots link to blobs.
    const auto size = fs::file_size(path, file_ec);
    const auto mtime = fs::last_write_time(path, file_ec);
    files.push_back({{"name", path.filename().string()},
                     {"bytes", file_ec ? -1 : static_cast<std::int64_t>(size)},
                     {"mtime_ns", file_ec ? 0 : static_cast<std::int64_t>(
                                                    std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                        mtime.time_since_epoch()).count())}});
  }
  j["files"] = files;
  j["family"] = model.info().family;
  j["dtype"] = std::string(c10::toString(model.dtype()));
  j["device"] = model.device().str();
  j["autocast"] = autocast;
  return j.dump();
}

ImageFeatureStore::ImageFeatureStore(const std::string& root, const std::string& fingerprint,
                                     std::int64_t budget_bytes)
    : budget_bytes_(budget_bytes) {
  Hash128 hash;
  hash.add(fingerprint);
  fingerprint_hash_ = hash.hex();
  directory_ = (fs::path(root) / fingerprint_hash_.substr(0, 16)).string();
  create_directories(directory_);
  const std::string described = join_path(directory_, "fingerprint.json");
  if (!path_exists(described)) {
    write_file_atomic(described, nlohmann::json::parse(fingerprint).dump(2) + "\n");
  }
  used_bytes_ = folder_bytes(root);
}

std::string ImageFeatureStore::entry_path(const std::string& key) const {
  return join_path(directory_, key + ".safetensors");
}

torch::Tensor ImageFeatureStore::find(const VisionInputs& images, torch::Device device) {
  if (images.empty()) return torch::Tensor();
  return find_entry(image_inputs_key(images), device);
}

torch::Tensor ImageFeatureStore::find_entry(const std::string& key, torch::Device device) {
  const std::string path = entry_path(key);
  if (!is_regular_file(path)) return torch::Tensor();
  try {
    auto file = SafetensorsFile::open(path);
    const auto meta = file->metadata();
    const auto fp = meta.find("fingerprint");
    const auto k = meta.find("key");
    if (fp == meta.end() || fp->second != fingerprint_hash_ || k == meta.end() || k->second != key) {
      fail(ErrorCode::corrupt_data, "its metadata names another model or image");
    }
    const torch::Tensor stored = tensor_from_file(file, file->at(kFeaturesTensor));
    if (stored.dim() != 2) fail(ErrorCode::corrupt_data, "the features are not a [tokens, hidden] matrix");
    ++hits_;
    // A private copy: the entry may be replaced while the tensor lives.
    return stored.to(device, stored.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
  } catch (const std::exception& e) {
    log(LogLevel::warning, "image feature store: ignoring and removing " + path + " (" + e.what() + ")");
    std::error_code ec;
    fs::remove(path, ec);
    return torch::Tensor();
  }
}

void ImageFeatureStore::put(const VisionInputs& images, const torch::Tensor& features) {
  if (images.empty() || !features.defined()) return;
  put_entry(image_inputs_key(images), features);
}

void ImageFeatureStore::put_entry(const std::string& key, const torch::Tensor& features) {
  const auto size = static_cast<std::int64_t>(features.numel() * features.element_size());
  if (used_bytes_ + size > budget_bytes_) {
    if (!full_reported_) {
      log(LogLevel::info, "image feature store: " + directory_ + " reached its budget of " +
                              std::to_string(budget_bytes_ >> 20) + " MiB; further features are not stored");
      full_reported_ = true;
    }
    return;
  }
  try {
    save_tensors(entry_path(key), {{kFeaturesTensor, features.detach()}},
                 {{"fingerprint", fingerprint_hash_}, {"key", key}});
    used_bytes_ += size;
    ++writes_;
  } catch (const std::exception& e) {
    log(LogLevel::warning, std::string("image feature store: could not write an entry (") + e.what() + ")");
  }
}

torch::Tensor ImageFeatureStore::features(VisionLanguageModel& model, const VisionInputs& images) {
  if (images.empty()) return torch::Tensor();
  const std::string key = image_inputs_key(images);
  torch::Tensor found = find_entry(key, model.device());
  if (found.defined()) return found;
  ++computed_;
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor computed;
  {
    torch::NoGradGuard no_grad;
    computed = model.encode_images(images);
  }
  encode_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (computed.defined()) put_entry(key, computed);
  return computed;
}

}  // namespace vlm
