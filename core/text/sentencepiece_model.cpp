#include "text/sentencepiece_model.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "base/error.h"
#include "base/fs.h"
#include "text/sentencepiece_plugin_api.h"

namespace vlm {
namespace {

constexpr const char* kPluginName = "libvlmrt_sentencepiece.so";

const VlmSentencePieceApi* g_api = nullptr;

std::string directory_of_this_module() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&directory_of_this_module), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string path = info.dli_fname;
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

const VlmSentencePieceApi& api() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    // RTLD_DEEPBIND keeps sentencepiece bound to its own protobuf copy; sanitizer runtimes refuse it, so
    // sanitizer builds load without it (fine as long as libtorch is not in the same process).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const int flags = RTLD_NOW | RTLD_LOCAL;
#else
    const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
    std::string tried;
    for (const std::string& candidate : sentencepiece_plugin_candidates()) {
      if (!is_regular_file(candidate)) {
        tried += "\n  - " + candidate + " (missing)";
        continue;
      }
      void* handle = dlopen(candidate.c_str(), flags);
      if (handle == nullptr) {
        tried += "\n  - " + candidate + " (" + dlerror() + ")";
        continue;
      }
      auto entry = reinterpret_cast<VlmSentencePiecePluginEntry>(dlsym(handle, "vlm_sentencepiece_plugin_v1"));
      if (entry == nullptr || entry() == nullptr || entry()->version != 1) {
        tried += "\n  - " + candidate + " (not a compatible vlmrt SentencePiece plugin)";
        dlclose(handle);
        continue;
      }
      g_api = entry();  // the handle stays open for the life of the process
      return;
    }
    failure = "cannot load the SentencePiece plugin " + std::string(kPluginName) +
              " needed for tokenizer.model files; looked at:" + tried +
              "\nReinstall vlmrt, or set VLMRT_SENTENCEPIECE_PLUGIN to the plugin's path.";
  });
  if (g_api == nullptr) fail(ErrorCode::not_found, failure);
  return *g_api;
}

}  // namespace

std::vector<std::string> sentencepiece_plugin_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("VLMRT_SENTENCEPIECE_PLUGIN"); env != nullptr && *env != '\0') out.push_back(env);
  const std::string here = directory_of_this_module();
  if (!here.empty()) {
    out.push_back(here + "/vlmrt/" + kPluginName);
    out.push_back(here + "/" + kPluginName);
  }
#ifdef VLM_SPM_PLUGIN_INSTALL_PATH
  out.push_back(VLM_SPM_PLUGIN_INSTALL_PATH);
#endif
#ifdef VLM_SPM_PLUGIN_BUILD_PATH
  out.push_back(VLM_SPM_PLUGIN_BUILD_PATH);
#endif
  return out;
}

std::unique_ptr<SentencePieceModel> SentencePieceModel::load(const std::string& path) {
  const VlmSentencePieceApi& a = api();
  if (!is_regular_file(path)) fail(ErrorCode::not_found, "SentencePiece model not found: " + path);
  char error[512] = {0};
  void* model = a.load(path.c_str(), error, sizeof error);
  if (model == nullptr) fail(ErrorCode::corrupt_data, path + ": not a SentencePiece model: " + error);
  std::unique_ptr<SentencePieceModel> out(new SentencePieceModel());
  out->model_ = model;
  return out;
}

SentencePieceModel::~SentencePieceModel() {
  if (model_ != nullptr) g_api->free_model(model_);
}

std::vector<int> SentencePieceModel::encode(std::string_view text) const {
  int* ids = nullptr;
  std::size_t count = 0;
  char error[512] = {0};
  if (g_api->encode(model_, text.data(), text.size(), &ids, &count, error, sizeof error) != 0) {
    fail(ErrorCode::internal, std::string("sentencepiece encode failed: ") + error);
  }
  std::vector<int> out(ids, ids + count);
  g_api->free_buffer(ids);
  return out;
}

std::string SentencePieceModel::decode(const std::vector<int>& ids) const {
  char* text = nullptr;
  std::size_t size = 0;
  char error[512] = {0};
  if (g_api->decode(model_, ids.data(), ids.size(), &text, &size, error, sizeof error) != 0) {
    fail(ErrorCode::internal, std::string("sentencepiece decode failed: ") + error);
  }
  std::string out(text, size);
  g_api->free_buffer(text);
  return out;
}

int SentencePieceModel::piece_to_id(std::string_view piece) const {
  return g_api->piece_to_id(model_, piece.data(), piece.size());
}

std::string SentencePieceModel::id_to_piece(int id) const {
  std::size_t size = 0;
  const char* p = g_api->id_to_piece(model_, id, &size);
  return std::string(p, size);
}

int SentencePieceModel::piece_size() const { return g_api->piece_size(model_); }
int SentencePieceModel::unk_id() const { return g_api->special_id(model_, VLM_SPM_UNK); }
int SentencePieceModel::bos_id() const { return g_api->special_id(model_, VLM_SPM_BOS); }
int SentencePieceModel::eos_id() const { return g_api->special_id(model_, VLM_SPM_EOS); }
int SentencePieceModel::pad_id() const { return g_api->special_id(model_, VLM_SPM_PAD); }
bool SentencePieceModel::is_control(int id) const { return g_api->is_control(model_, id) != 0; }
bool SentencePieceModel::is_unknown(int id) const { return g_api->is_unknown(model_, id) != 0; }

}  // namespace vlm
