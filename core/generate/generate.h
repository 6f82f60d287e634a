// The generation engine shared by every model family: greedy, sampling and beam search with the semantics of
// transformers' generate() (5.x), over the VisionLanguageModel interface (core/model/model.h).
#pragma once

#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace vlm {

struct GenerationDefaults;

// Every field is optional: unset fields take the checkpoint's generation_config.json value, then
// transformers' GenerationConfig default (resolve_generation_options).
struct GenerationOptions {
  std::optional<int> max_new_tokens;       // default: generation_config.json's max_new_tokens, else its max_length
                                           // minus the prompt length, else 20
  std::optional<int> min_new_tokens;       // EOS is suppressed until this many tokens exist (default 0)
  std::optional<bool> do_sample;           // default false
  std::optional<double> temperature;       // default 1.0 (sampling only)
  std::optional<int> top_k;                // default 50 (sampling only; 0 disables)
  std::optional<double> top_p;             // default 1.0 (sampling only)
  std::optional<double> repetition_penalty;  // default 1.0; applies to greedy and beams too
  std::optional<int> num_beams;            // default 1
  std::optional<double> length_penalty;    // default 1.0 (beam search)
  std::optional<std::string> early_stopping;  // "false" (default), "true" or "never" (beam search)
  std::optional<std::vector<std::int64_t>> eos_token_ids;
  std::optional<std::int64_t> pad_token_id;  // default: the first EOS id
  std::optional<std::uint64_t> seed;       // sampling seed (default 0)
  // Stop strings: a row finishes once its decoded continuation newly contains one of them. Needs `decode`.
  std::vector<std::string> stop_strings;
  std::function<std::string(const std::vector<std::int64_t>&)> decode;
  // Called for every new token of every unfinished row (greedy and sampling; for beam search once per token
  // of the final sequences). Return false to stop generating (the result is then marked cancelled).
  std::function<bool(std::int64_t row, std::int64_t token)> on_token;
  // Checked between steps; when it becomes true generation stops and the result is marked cancelled.
  const std::atomic<bool>* cancel = nullptr;
};

// The options after applying generation_config.json and transformers' defaults; validated.
struct ResolvedGenerationOptions {
  std::optional<int> max_new_tokens;       // unset: max_length - prompt length
  std::optional<int> max_length;           // from generation_config.json; unset with max_new_tokens: 20 new tokens
  int min_new_tokens = 0;
  bool do_sample = false;
  double temperature = 1.0;
  int top_k = 50;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  int num_beams = 1;
  double length_penalty = 1.0;
  std::string early_stopping = "false";
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t pad_token_id = 0;
  std::uint64_t seed = 0;
};

// `checkpoint_defaults` may be null. Throws vlm::Error(invalid_argument) naming the option for impossible values.
ResolvedGenerationOptions resolve_generation_options(const GenerationOptions& options, const GenerationDefaults* checkpoint_defaults,
                                                     const ModelInfo& model);

enum class FinishReason { eos, length, stop_string, cancelled };
const char* finish_reason_name(FinishReason reason);

struct GenerationResult {
  // Per prompt row: the generated tokens (the EOS token included when one ended the row; no padding).
  std::vector<std::vector<std::int64_t>> tokens;
  std::vector<FinishReason> finish_reasons;
  // Beam search: the final length-normalised beam score of each row; greedy/sampling: sum of log-probs of the
  // chosen tokens under the processed distribution.
  std::vector<double> scores;
};

// Generates continuations of a batch of prompts. `prompt.input_ids` is [B, L], left-padded when rows differ in
// length, with `prompt.attention_mask` marking real tokens; `prompt.vision` holds the images of the batch.
GenerationResult generate(VisionLanguageModel& model, const ForwardInputs& prompt, const GenerationOptions& options,
                          const GenerationDefaults* checkpoint_defaults = nullptr);

// ---- logits processors (transformers' semantics), exposed for tests --------------------------------------

// scores [N, V] float32, sequences [N, T] int64 (every token so far, prompt included). `leading_padding` [N]
// (optional) counts the left-padding positions of each row, which are not penalised (transformers >= 5).
torch::Tensor apply_repetition_penalty(const torch::Tensor& scores, const torch::Tensor& sequences, double penalty,
                                       const torch::Tensor& leading_padding = {});
torch::Tensor suppress_eos(const torch::Tensor& scores, const std::vector<std::int64_t>& eos_token_ids);
torch::Tensor apply_temperature(const torch::Tensor& scores, double temperature);
torch::Tensor apply_top_k(const torch::Tensor& scores, int top_k, int min_tokens_to_keep);
torch::Tensor apply_top_p(const torch::Tensor& scores, double top_p, int min_tokens_to_keep);

// ---- scoring for evaluation harnesses (lm-evaluation-harness loglikelihood semantics) --------------------

struct ContinuationScore {
  std::vector<double> token_logprobs;  // log p(continuation token i | prompt, previous tokens)
  double sum = 0.0;
  bool is_greedy = false;              // every continuation token is the argmax at its position
};

// Scores `continuation` token ids after `prompt_ids` (one row, no padding) with the prompt's images.
ContinuationScore score_continuation(VisionLanguageModel& model, const std::vector<std::int64_t>& prompt_ids,
                                     const std::vector<std::int64_t>& continuation, const VisionInputs& vision = {});

}  // namespace vlm
