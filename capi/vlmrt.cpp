// The C API: a thin translation layer over the core. Conventions are documented in include/vlmrt.h.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/fs.h"
#include "capi_internal.h"
#include "image/image.h"
#include "io/checkpoint.h"
#include "io/hub.h"

namespace vlm::capi {
namespace {
thread_local std::string t_last_error;
}

void set_last_error(const std::string& message) { t_last_error = message; }
void clear_last_error() { t_last_error.clear(); }

char* copy_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

vlm_status status_of(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return VLM_ERR_INVALID_ARGUMENT;
    case ErrorCode::not_found: return VLM_ERR_NOT_FOUND;
    case ErrorCode::io: return VLM_ERR_IO;
    case ErrorCode::corrupt_data: return VLM_ERR_CORRUPT_DATA;
    case ErrorCode::unsupported: return VLM_ERR_UNSUPPORTED;
    case ErrorCode::limit_exceeded: return VLM_ERR_LIMIT_EXCEEDED;
    case ErrorCode::cancelled: return VLM_ERR_CANCELLED;
    case ErrorCode::out_of_memory: return VLM_ERR_OUT_OF_MEMORY;
    case ErrorCode::internal: return VLM_ERR_INTERNAL;
  }
  return VLM_ERR_INTERNAL;
}

void require(const void* pointer, const char* what) {
  if (pointer == nullptr) fail(ErrorCode::invalid_argument, std::string(what) + " must not be NULL");
}

std::size_t check_struct_size(const void* options, std::size_t expected, const char* name,
                              std::initializer_list<std::size_t> older) {
  require(options, name);
  std::size_t size = 0;
  std::memcpy(&size, options, sizeof size);
  if (size != expected && std::find(older.begin(), older.end(), size) == older.end()) {
    fail(ErrorCode::invalid_argument, std::string(name) + "->struct_size is " + std::to_string(size) + ", expected " +
                                          std::to_string(expected) + ": initialise the struct with its _init function");
  }
  return size;
}

}  // namespace vlm::capi

using namespace vlm::capi;

extern "C" {

const char* vlm_last_error(void) { return t_last_error.c_str(); }

const char* vlm_status_name(vlm_status status) {
  switch (status) {
    case VLM_OK: return "ok";
    case VLM_ERR_INVALID_ARGUMENT: return "invalid argument";
    case VLM_ERR_NOT_FOUND: return "not found";
    case VLM_ERR_IO: return "I/O error";
    case VLM_ERR_CORRUPT_DATA: return "corrupt data";
    case VLM_ERR_UNSUPPORTED: return "unsupported";
    case VLM_ERR_LIMIT_EXCEEDED: return "limit exceeded";
    case VLM_ERR_CANCELLED: return "cancelled";
    case VLM_ERR_OUT_OF_MEMORY: return "out of memory";
    case VLM_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* vlm_version(void) { return VLMRT_VERSION_STRING; }
int vlm_version_number(void) {
  return VLMRT_VERSION_MAJOR * 10000 + VLMRT_VERSION_MINOR * 100 + VLMRT_VERSION_PATCH;
}
int vlm_abi_version(void) { return VLMRT_ABI_VERSION; }

void vlm_string_free(char* str) { std::free(str); }

vlm_status vlm_model_locate(const char* model, char** out_path) {
  return guard([&] {
    require(model, "model");
    require(out_path, "out_path");
    vlm::ModelLocation location = vlm::locate_model(model);
    *out_path = copy_string(location.folder);
  });
}

void vlm_image_load_options_init(vlm_image_load_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  vlm::ImageLoadOptions defaults;
  options->max_pixels = defaults.max_pixels;
  options->apply_exif_orientation = defaults.apply_exif_orientation ? 1 : 0;
}

namespace {

vlm::ImageLoadOptions image_options(const vlm_image_load_options* options) {
  vlm::ImageLoadOptions out;
  if (options != nullptr) {
    check_struct_size(options, sizeof *options, "options");
    out.max_pixels = options->max_pixels;
    out.apply_exif_orientation = options->apply_exif_orientation != 0;
  }
  return out;
}

vlm_image* to_c_image(const vlm::RgbImage& image) {
  auto* out = static_cast<vlm_image*>(std::calloc(1, sizeof(vlm_image)));
  if (out == nullptr) throw std::bad_alloc();
  out->width = static_cast<uint32_t>(image.width);
  out->height = static_cast<uint32_t>(image.height);
  out->pixels = static_cast<uint8_t*>(std::malloc(image.pixels.size()));
  if (out->pixels == nullptr) {
    std::free(out);
    throw std::bad_alloc();
  }
  std::memcpy(out->pixels, image.pixels.data(), image.pixels.size());
  return out;
}

}  // namespace

vlm_status vlm_image_load(const char* path, const vlm_image_load_options* options, vlm_image** out_image) {
  return guard([&] {
    require(path, "path");
    require(out_image, "out_image");
    *out_image = to_c_image(vlm::load_image(path, image_options(options)));
  });
}

vlm_status vlm_image_decode(const void* data, size_t size, const vlm_image_load_options* options, vlm_image** out_image) {
  return guard([&] {
    require(data, "data");
    require(out_image, "out_image");
    *out_image = to_c_image(vlm::decode_image(static_cast<const uint8_t*>(data), size, "<memory>", image_options(options)));
  });
}

void vlm_image_free(vlm_image* image) {
  if (image == nullptr) return;
  std::free(image->pixels);
  std::free(image);
}

}  // extern "C"

// ---- checkpoints ---------------------------------------------------------------------------------------

struct vlm_checkpoint {
  std::shared_ptr<vlm::Checkpoint> checkpoint;
  // Per-tensor storage for the strings and shapes handed out by vlm_checkpoint_tensor_info.
  std::vector<std::string> dtypes;
  std::vector<std::vector<int64_t>> shapes;
  std::mutex mutex;
};

extern "C" {

vlm_status vlm_checkpoint_open(const char* path, vlm_checkpoint** out_checkpoint) {
  return guard([&] {
    require(path, "path");
    require(out_checkpoint, "out_checkpoint");
    auto handle = std::make_unique<vlm_checkpoint>();
    const std::string p = path;
    const bool adapter_only = vlm::is_directory(p) && !vlm::path_exists(vlm::join_path(p, "model.safetensors")) &&
                              !vlm::path_exists(vlm::join_path(p, "model.safetensors.index.json")) &&
                              vlm::path_exists(vlm::join_path(p, "adapter_model.safetensors"));
    handle->checkpoint = vlm::Checkpoint::open(p, adapter_only ? "adapter_model" : "model");
    handle->dtypes.resize(handle->checkpoint->names().size());
    handle->shapes.resize(handle->checkpoint->names().size());
    *out_checkpoint = handle.release();
  });
}

size_t vlm_checkpoint_tensor_count(const vlm_checkpoint* checkpoint) {
  return checkpoint == nullptr ? 0 : checkpoint->checkpoint->names().size();
}

vlm_status vlm_checkpoint_tensor_info(vlm_checkpoint* checkpoint, size_t index, vlm_tensor_info* out_info) {
  return guard([&] {
    require(checkpoint, "checkpoint");
    require(out_info, "out_info");
    const auto& names = checkpoint->checkpoint->names();
    if (index >= names.size()) {
      vlm::fail(vlm::ErrorCode::invalid_argument, "tensor index " + std::to_string(index) + " is out of range (the checkpoint has " +
                                                      std::to_string(names.size()) + " tensors)");
    }
    auto entry = checkpoint->checkpoint->get(names[index]);
    std::lock_guard<std::mutex> lock(checkpoint->mutex);
    checkpoint->dtypes[index] = vlm::dtype_name(entry.info->dtype);
    checkpoint->shapes[index].assign(entry.info->shape.begin(), entry.info->shape.end());
    vlm_tensor_info info;
    info.name = names[index].c_str();
    info.dtype = checkpoint->dtypes[index].c_str();
    info.ndim = checkpoint->shapes[index].size();
    info.shape = checkpoint->shapes[index].data();
    info.nbytes = entry.info->nbytes();
    *out_info = info;
  });
}

void vlm_checkpoint_free(vlm_checkpoint* checkpoint) { delete checkpoint; }

}  // extern "C"
