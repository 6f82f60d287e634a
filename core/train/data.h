// Training examples from a CSV: each row (image reference, instruction, response) becomes the conversation
//   user: [image] instruction   assistant: response
// rendered with the checkpoint's chat template and tokenized by the session, with labels on the response tokens
// only (prompt, image and padding masked with -100) or on the whole sequence. A preflight pass builds every
// example's token ids before training starts and reports every row that cannot be used, all at once.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "pipeline/config.h"
#include "pipeline/image_source.h"
#include "session/session.h"

namespace vlm {

constexpr std::int64_t kIgnoreIndex = -100;

struct TrainingExample {
  std::int64_t row = 0;    // 0-based data row
  std::int64_t line = 0;   // line in the CSV
  std::string image;       // the image reference as written
  std::string instruction, response;
  std::vector<std::int64_t> input_ids;
  std::vector<std::int64_t> labels;   // kIgnoreIndex where no loss is taken
  std::int64_t predicted_tokens = 0;  // labels[1:] != kIgnoreIndex: the tokens this example adds to the loss
};

struct TrainingDataOptions {
  std::string csv;                    // resolved path
  std::string image_column = "url", instruction_column = "instruction", response_column = "response";
  std::optional<std::int64_t> max_samples;
  std::optional<int> max_seq_length;  // truncation from the right, never inside an image span
  bool loss_on_response_only = true;
  ImageFetchOptions fetch;
};

class TrainingDataset {
 public:
  // The preflight: reads the CSV, loads and processes every image, tokenizes every conversation. Throws one
  // vlm::Error listing every unusable row (missing image, empty response, too long for max_seq_length, ...).
  static TrainingDataset build(const Session& session, const TrainingDataOptions& options);

  std::size_t size() const { return examples_.size(); }
  const TrainingExample& operator[](std::size_t i) const { return examples_[i]; }
  const std::vector<TrainingExample>& examples() const { return examples_; }
  std::int64_t total_tokens() const;

  // A right-padded batch of the given examples with their pixels (images decoded and processed again, so the
  // dataset holds only token ids). labels [B, L] int64 in `labels`. `example_vision`, when given, receives each
  // row's own images (empty for a text-only row), for per-example image features (ImageFeatureCache).
  ForwardInputs collate(const Session& session, const std::vector<std::size_t>& indices, torch::Tensor& labels,
                        std::vector<VisionInputs>* example_vision = nullptr) const;

 private:
  std::vector<TrainingExample> examples_;
  TrainingDataOptions options_;
  std::string base_dir_;
};

// One example from its parts (the preflight's per-row work): chat template, tokens, labels, truncation. `image`
// may be null (text-only). Throws vlm::Error naming `where`.
TrainingExample make_training_example(const Session& session, const std::string& instruction,
                                      const std::string& response, const RgbImage* image,
                                      const TrainingDataOptions& options, const std::string& where);

// A right-padded batch of examples whose images are in memory (images[i] may be null for a text-only example).
// `example_vision` as in TrainingDataset::collate.
ForwardInputs collate_examples(const Session& session, const std::vector<const TrainingExample*>& examples,
                               const std::vector<const RgbImage*>& images, torch::Tensor& labels,
                               std::vector<VisionInputs>* example_vision = nullptr);

// The conversation of one training row; `with_response` false gives the prompt alone.
Conversation training_conversation(const std::string& instruction, const std::string& response, bool with_image,
                                   bool with_response);

}  // namespace vlm
