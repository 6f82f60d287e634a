// The C interface between vlmrt and its SentencePiece plugin (libvlmrt_sentencepiece.so).
//
// Why a plugin: Debian's libsentencepiece exports a private copy of protobuf-lite, while libtorch links the
// system libprotobuf. Linking both into one process makes the two copies interpose each other's symbols and
// crashes at start-up. The plugin is loaded on first use with dlopen(RTLD_LOCAL | RTLD_DEEPBIND), so
// sentencepiece binds to its own protobuf and nothing of it leaks into the process's global symbol scope.
#pragma once

#include <stddef.h>

extern "C" {

enum { VLM_SPM_UNK = 0, VLM_SPM_BOS = 1, VLM_SPM_EOS = 2, VLM_SPM_PAD = 3 };

struct VlmSentencePieceApi {
  int version;  // 1
  // Returns a model handle, or NULL with a message in `error`.
  void* (*load)(const char* path, char* error, size_t error_size);
  void (*free_model)(void* model);
  // Encodes UTF-8 text to ids; *ids is malloc'ed (free with free_buffer). Returns 0, or -1 with a message.
  int (*encode)(void* model, const char* text, size_t size, int** ids, size_t* count, char* error, size_t error_size);
  // Decodes ids to UTF-8 text; *text is malloc'ed and NUL-terminated (free with free_buffer).
  int (*decode)(void* model, const int* ids, size_t count, char** text, size_t* size, char* error, size_t error_size);
  void (*free_buffer)(void* buffer);
  int (*piece_to_id)(void* model, const char* piece, size_t size);
  // The piece text of an id; the pointer stays valid while the model lives.
  const char* (*id_to_piece)(void* model, int id, size_t* size);
  int (*piece_size)(void* model);
  int (*special_id)(void* model, int which);  // VLM_SPM_*; -1 when the model has none
  int (*is_control)(void* model, int id);
  int (*is_unknown)(void* model, int id);
};

// The one symbol the plugin exports.
const VlmSentencePieceApi* vlm_sentencepiece_plugin_v1(void);
typedef const VlmSentencePieceApi* (*VlmSentencePiecePluginEntry)(void);
}
