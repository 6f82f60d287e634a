// A SentencePiece model (tokenizer.model), run by the sentencepiece library loaded in isolation through
// libvlmrt_sentencepiece.so (see sentencepiece_plugin_api.h for why).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vlm {

class SentencePieceModel {
 public:
  // Loads the plugin on first use, then the model. Throws vlm::Error naming the file, or naming every place
  // the plugin was searched when it cannot be found.
  static std::unique_ptr<SentencePieceModel> load(const std::string& path);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  std::vector<int> encode(std::string_view text) const;
  std::string decode(const std::vector<int>& ids) const;
  int piece_to_id(std::string_view piece) const;
  std::string id_to_piece(int id) const;
  int piece_size() const;
  int unk_id() const;
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  bool is_control(int id) const;
  bool is_unknown(int id) const;

 private:
  SentencePieceModel() = default;
  void* model_ = nullptr;
};

// Where the plugin is searched, in order (for error messages and tests).
std::vector<std::string> sentencepiece_plugin_candidates();

}  // namespace vlm
