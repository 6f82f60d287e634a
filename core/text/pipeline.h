// The stages of a Hugging Face tokenizer pipeline (tokenizer.json): normalizer, pre-tokenizer, model,
// post-processor and decoder, each built from its JSON description. Internal to core/text; the public API is
// tokenizer.h. Offsets are not tracked: each stage rewrites plain UTF-8 strings.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace vlm::text {

// A piece of the input between added tokens, or a pre-token. `at_start` is true when the piece begins at
// offset 0 of the original text (what Metaspace's prepend_scheme "first" tests).
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their pre-tokens (empty pieces are dropped, as tokenizers does).
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual void tokenize(std::string_view word, std::vector<std::int32_t>& out) const = 0;
  virtual std::optional<std::int32_t> token_to_id(std::string_view token) const = 0;
  virtual const std::string* id_to_token(std::int32_t id) const = 0;
  virtual std::size_t vocab_size() const = 0;
  virtual std::string kind() const = 0;  // "BPE", "Unigram", "WordPiece", "WordLevel"
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<std::int32_t>& ids) const = 0;  // called only with add_special_tokens
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builders from tokenizer.json sections; `where` names the section for error messages. A null JSON value
// yields nullptr (no stage).
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& where);
// The model's bulk tables when read by the fast scanner (json_scan.h) instead of nlohmann_json.
struct ModelTables {
  bool has_vocab = false;
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  bool has_merges = false;
  std::vector<std::pair<std::string, std::string>> merges;
};
std::unique_ptr<Model> make_model(const nlohmann::json& j, const std::string& where, ModelTables* tables = nullptr);
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j, const std::string& where);
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& where);

// GPT-2 byte-level BPE from a vocab.json + merges.txt pair.
std::unique_ptr<Model> make_bpe_from_files(const std::string& vocab_json_path, const std::string& merges_path);

// The GPT-2 byte <-> printable character table.
const std::string& byte_to_char(unsigned char b);  // UTF-8 of the mapped code point
int char_to_byte(char32_t c);                        // -1 when c is not in the table

}  // namespace vlm::text
