// libvlmrt_sentencepiece.so: the sentencepiece library behind a plain C table (see sentencepiece_plugin_api.h).
#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "text/sentencepiece_plugin_api.h"

namespace {

using Processor = sentencepiece::SentencePieceProcessor;

void set_error(char* error, size_t size, const std::string& message) {
  if (error != nullptr && size > 0) std::snprintf(error, size, "%s", message.c_str());
}

void* load(const char* path, char* error, size_t error_size) {
  try {
    auto* processor = new Processor();
    const auto status = processor->Load(path);
    if (!status.ok()) {
      set_error(error, error_size, status.ToString());
      delete processor;
      return nullptr;
    }
    return processor;
  } catch (const std::exception& e) {
    set_error(error, error_size, e.what());
    return nullptr;
  }
}

void free_model(void* model) { delete static_cast<Processor*>(model); }

int encode(void* model, const char* text, size_t size, int** ids, size_t* count, char* error, size_t error_size) {
  try {
    std::vector<int> out;
    const auto status = static_cast<Processor*>(model)->Encode(absl::string_view(text, size), &out);
    if (!status.ok()) {
      set_error(error, error_size, status.ToString());
      return -1;
    }
    *ids = static_cast<int*>(std::malloc((out.size() + 1) * sizeof(int)));
    if (*ids == nullptr) {
      set_error(error, error_size, "out of memory");
      return -1;
    }
    std::memcpy(*ids, out.data(), out.size() * sizeof(int));
    *count = out.size();
    return 0;
  } catch (const std::exception& e) {
    set_error(error, error_size, e.what());
    return -1;
  }
}

int decode(void* model, const int* ids, size_t count, char** text, size_t* size, char* error, size_t error_size) {
  try {
    std::string out;
    const auto status = static_cast<Processor*>(model)->Decode(std::vector<int>(ids, ids + count), &out);
    if (!status.ok()) {
      set_error(error, error_size, status.ToString());
      return -1;
    }
    *text = static_cast<char*>(std::malloc(out.size() + 1));
    if (*text == nullptr) {
      set_error(error, error_size, "out of memory");
      return -1;
    }
    std::memcpy(*text, out.data(), out.size());
    (*text)[out.size()] = '\0';
    *size = out.size();
    return 0;
  } catch (const std::exception& e) {
    set_error(error, error_size, e.what());
    return -1;
  }
}

void free_buffer(void* buffer) { std::free(buffer); }

int piece_to_id(void* model, const char* piece, size_t size) {
  return static_cast<Processor*>(model)->PieceToId(absl::string_view(piece, size));
}

const char* id_to_piece(void* model, int id, size_t* size) {
  const std::string& piece = static_cast<Processor*>(model)->IdToPiece(id);
  *size = piece.size();
  return piece.c_str();
}

int piece_size(void* model) { return static_cast<Processor*>(model)->GetPieceSize(); }

int special_id(void* model, int which) {
  auto* p = static_cast<Processor*>(model);
  switch (which) {
    case VLM_SPM_UNK: return p->unk_id();
    case VLM_SPM_BOS: return p->bos_id();
    case VLM_SPM_EOS: return p->eos_id();
    case VLM_SPM_PAD: return p->pad_id();
  }
  return -1;
}

int is_control(void* model, int id) { return static_cast<Processor*>(model)->IsControl(id) ? 1 : 0; }
int is_unknown(void* model, int id) { return static_cast<Processor*>(model)->IsUnknown(id) ? 1 : 0; }

const VlmSentencePieceApi kApi = {1,          load,        free_model, encode,     decode,     free_buffer,
                                  piece_to_id, id_to_piece, piece_size, special_id, is_control, is_unknown};

}  // namespace

extern "C" __attribute__((visibility("default"))) const VlmSentencePieceApi* vlm_sentencepiece_plugin_v1(void) {
  return &kApi;
}
