// Text tokenizers that produce exactly the ids of Hugging Face `tokenizers` (and of transformers' AutoTokenizer),
// with no Python. Torch-free.
//
// Sources, in the order Tokenizer::load looks for them in a folder:
//   tokenizer.json            the Hugging Face format (BPE, Unigram, WordPiece, WordLevel models and the
//                             normalizers / pre-tokenizers / post-processors / decoders listed in pipeline.h)
//   vocab.json + merges.txt   a GPT-2 style byte-level BPE (pipeline of GPT2TokenizerFast: ByteLevel without prefix
//                             space, "<|endoftext|>" as special token when in the vocab)
//   tokenizer.model           a SentencePiece model, run by the sentencepiece library
// A folder's tokenizer_config.json (when present) supplies the special tokens, add_bos/add_eos, model_max_length,
// padding_side, clean_up_tokenization_spaces, chat_template and extra added tokens.
//
// Two flavors (TokenizerOptions::flavor):
//   transformers (default)  what transformers 5.x `AutoTokenizer.from_pretrained(folder)` does. It differs from the
//                           raw file where a tokenizer class rebuilds the pipeline: LlamaTokenizer(Fast)
//                           replaces the normalizer by a Metaspace pre-tokenizer (prepend_scheme "always" when
//                           legacy, else "first") and drops the model's unk_token; T5Tokenizer keeps only the
//                           Precompiled normalizer and forces unk_id 2; GemmaTokenizer uses a Replace(" ", "▁")
//                           normalizer, a Split(" ") pre-tokenizer and its class default specials; GPT2Tokenizer (vocab.json + merges.txt
//                           with a config) takes the config's specials and add_bos_token/add_eos_token. Special
//                           tokens named by the config but missing from the vocabulary (T5's <extra_id_N>) are
//                           appended after it. decode skips clean_up_tokenization_spaces for BPE models.
//                           Other classes (Qwen2Tokenizer included) are read as the raw file; Qwen2 is verified
//                           against AutoTokenizer, other classes are not.
//   raw                     exactly `tokenizers.Tokenizer.from_file("tokenizer.json")`: tokenizer_config.json
//                           supplies the special tokens and settings, but decode never applies its
//                           clean_up_tokenization_spaces (only an explicit DecodeOptions value does).
//
// Invalid UTF-8 input: encode() replaces each maximal invalid byte sequence by U+FFFD (the Unicode "maximal
// subpart" rule, identical to Python's bytes.decode("utf-8", "replace")) and tokenizes the result; it never
// crashes. encode_strict() instead throws vlm::Error(invalid_argument) naming the byte offset.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vlm {

struct TokenizerOptions {
  enum class Flavor { transformers, raw };
  Flavor flavor = Flavor::transformers;
};

// Facts from tokenizer_config.json that the runtime needs (defaults when the file is absent).
struct TokenizerSettings {
  std::string tokenizer_class;
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token;
  bool add_bos_token = false;  // informational: the post-processor decides what encode() adds
  bool add_eos_token = false;
  bool clean_up_tokenization_spaces = false;
  double model_max_length = 1e30;  // transformers' "very large" default when unset
  std::string padding_side = "right";
  std::string chat_template;  // empty when none
};

struct DecodeOptions {
  bool skip_special_tokens = false;
  // Unset: use the tokenizer's configured value (TokenizerSettings::clean_up_tokenization_spaces).
  std::optional<bool> clean_up_tokenization_spaces;
};

class Tokenizer {
 public:
  // folder_or_file: a folder (see above), a tokenizer.json, a vocab.json (merges.txt next to it) or a .model file.
  // Throws vlm::Error: not_found (nothing loadable), corrupt_data (malformed file, naming file and key),
  // unsupported (a component kind this build does not implement, naming it).
  static std::shared_ptr<Tokenizer> load(const std::string& folder_or_file, const TokenizerOptions& options = {});
  // A tokenizer.json given as text (config_json: optional tokenizer_config.json text).
  static std::shared_ptr<Tokenizer> from_json(const std::string& tokenizer_json, const std::string& config_json = "",
                                              const TokenizerOptions& options = {});
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special_tokens: apply the post-processor (e.g. Llama's BOS), as tokenizers' encode(text, True).
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  std::vector<std::int32_t> encode_strict(std::string_view text, bool add_special_tokens = true) const;
  // num_threads <= 0: one per hardware thread. Results are in input order and identical to encode().
  std::vector<std::vector<std::int32_t>> encode_batch(const std::vector<std::string>& texts,
                                                      bool add_special_tokens = true, int num_threads = 1) const;
  // Ids outside the vocabulary are skipped (as tokenizers does); a negative id is an invalid_argument error.
  std::string decode(const std::vector<std::int32_t>& ids, const DecodeOptions& options = {}) const;

  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(std::int32_t id) const;
  // Number of distinct tokens including added tokens (tokenizers' get_vocab_size(with_added_tokens=True)).
  std::size_t vocab_size() const;
  bool is_special(std::int32_t id) const;
  std::vector<std::int32_t> special_ids() const;  // sorted
  std::optional<std::int32_t> bos_id() const;
  std::optional<std::int32_t> eos_id() const;
  std::optional<std::int32_t> unk_id() const;
  std::optional<std::int32_t> pad_id() const;
  const TokenizerSettings& config() const;
  std::string model_kind() const;  // "BPE", "Unigram", "WordPiece", "WordLevel", "SentencePiece"

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  static std::unique_ptr<Impl> load_impl(const std::string& folder_or_file, const TokenizerOptions& options);
  std::unique_ptr<Impl> impl_;
};

// Turns generated ids into text as they arrive. Each push returns only complete text: a character whose bytes
// are split over several tokens (byte fallback, byte-level BPE) is held back until it is complete, so the
// returned pieces are always valid UTF-8, and their concatenation plus flush() equals decode(all ids).
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(std::shared_ptr<const Tokenizer> tokenizer, DecodeOptions options = {true, std::nullopt});
  std::string push(std::int32_t id);
  // Emits what is still held back (an incomplete character becomes U+FFFD) and resets.
  std::string flush();
  void reset();

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  DecodeOptions options_;
  std::vector<std::int32_t> ids_;
  std::size_t prefix_offset_ = 0;
  std::size_t read_offset_ = 0;
};

}  // namespace vlm
