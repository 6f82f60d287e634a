// A loaded checkpoint ready for inference: tokenizer, chat template, image processor, model and generation
// defaults, used together the way transformers' processor + model.generate() use them. This is what the C API's
// sessions and the pipeline programs run.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "generate/generate.h"
#include "image/image.h"
#include "io/hf_files.h"
#include "model/registry.h"
#include "processor/image_processor.h"

namespace vlm {

class Tokenizer;
class LoraModel;
class ImageFeatureStore;
namespace chat {
class Template;
}

struct SessionOptions {
  std::string model;               // a model folder or an offline Hub id (see io/hub.h)
  LoadOptions load;                // dtype and device
  ImageProcessorOverrides image;   // pixel limits (e.g. the fixed 224x224 mode) and threads
};

// A conversation in transformers' message format: {"role": ..., "content": "text" or
// [{"type": "text", "text": ...}, {"type": "image"}]}. `images` are the images of the {"type": "image"} items,
// in order of appearance.
struct Conversation {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::vector<RgbImage> images;
};

// What the processor makes of one conversation.
struct PreparedPrompt {
  std::string text;                          // the rendered chat template
  std::vector<std::int64_t> input_ids;       // image placeholders expanded to one token per image feature
  ProcessedImages pixels;                    // empty without images
};

struct GeneratedText {
  std::vector<std::int64_t> tokens;
  std::string text;                          // decoded with special tokens skipped
  FinishReason finish_reason = FinishReason::length;
};

class Session {
 public:
  static std::unique_ptr<Session> open(const SessionOptions& options);
  ~Session();

  // Renders the chat template, tokenizes, processes the images and expands each image placeholder token into
  // as many tokens as the image has features. The number of image items must equal the number of images.
  PreparedPrompt prepare(const Conversation& conversation, bool add_generation_prompt = true) const;
  // Pads prompts into one batch (pad id: the tokenizer's, else the model's, else 0) with their images: on the left
  // for generation, on the right for training (as the training collators do).
  ForwardInputs make_batch(const std::vector<PreparedPrompt>& prompts, bool pad_right = false) const;
  std::int64_t pad_token_id() const { return pad_id_; }
  std::vector<GeneratedText> generate(const std::vector<Conversation>& conversations, GenerationOptions options);
  // Log-likelihood of `continuation` (tokenized alone, without special tokens) after the prepared conversation.
  ContinuationScore score(const Conversation& conversation, const std::string& continuation);

  // Attaches a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors, either key naming) to
  // the model; adapters loaded one after another add up. Throws vlm::Error naming the folder when the files are
  // missing or corrupt or when no adapter key matches a module of the model.
  void load_adapter(const std::string& adapter_dir);

  // Reads and writes the image features of generate() and score() through `store` (the features of each prompt's
  // images, computed alone), while no loaded adapter changes the vision tower or projector; null turns it off.
  // The store's fingerprint must describe this session's model (image_feature_fingerprint with autocast "no").
  void set_image_feature_store(std::shared_ptr<ImageFeatureStore> store) { feature_store_ = std::move(store); }

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  VisionLanguageModel& model() { return *model_; }
  const ImageProcessor* image_processor() const { return image_processor_.get(); }
  const std::string& folder() const { return folder_; }
  const std::optional<GenerationDefaults>& generation_defaults() const { return generation_defaults_; }

 private:
  Session() = default;
  std::string folder_;
  std::shared_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<VisionLanguageModel> model_;
  std::unique_ptr<ImageProcessor> image_processor_;
  std::optional<GenerationDefaults> generation_defaults_;
  std::shared_ptr<const chat::Template> chat_template_;  // parsed once
  nlohmann::ordered_json special_tokens_;
  std::int64_t pad_id_ = 0;
  std::vector<std::unique_ptr<LoraModel>> adapters_;
  std::shared_ptr<ImageFeatureStore> feature_store_;
  // The features of every prompt's images from feature_store_, concatenated in prompt order, when it applies.
  torch::Tensor stored_features(const std::vector<PreparedPrompt>& prompts);
};

}  // namespace vlm
