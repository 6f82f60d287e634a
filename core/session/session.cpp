#include "session/session.h"

#include "model/image_feature_store.h"
#include "model/lora.h"

#include <torch/torch.h>

#include "base/error.h"
#include "base/fs.h"
#include "chat/chat_template.h"
#include "io/hub.h"
#include "text/tokenizer.h"

namespace vlm {

Session::~Session() = default;

std::unique_ptr<Session> Session::open(const SessionOptions& options) {
  std::unique_ptr<Session> s(new Session());
  s->folder_ = locate_model(options.model).folder;
  s->model_ = load_model(s->folder_, options.load);
  s->tokenizer_ = Tokenizer::load(s->folder_);
  const chat::ChatTemplateSet templates = chat::load_chat_template(s->folder_);
  s->chat_template_ = std::make_shared<const chat::Template>(templates.default_template, templates.origin);
  s->special_tokens_ = templates.special_tokens;
  if (s->model_->info().image_token_id >= 0) {
    const std::string preprocessor = join_path(s->folder_, "preprocessor_config.json");
    if (!is_regular_file(preprocessor)) {
      fail(ErrorCode::not_found, "model folder " + s->folder_ + " has no preprocessor_config.json, which a vision-language "
                                 "model needs to process images");
    }
    s->image_processor_ = ImageProcessor::load(preprocessor, options.image);
  }
  const std::string generation = join_path(s->folder_, "generation_config.json");
  if (is_regular_file(generation)) s->generation_defaults_ = GenerationDefaults::load(generation);
  if (auto pad = s->tokenizer_->pad_id()) {
    s->pad_id_ = *pad;
  } else if (s->model_->info().pad_token_id >= 0) {
    s->pad_id_ = s->model_->info().pad_token_id;
  }
  return s;
}

PreparedPrompt Session::prepare(const Conversation& conversation, bool add_generation_prompt) const {
  PreparedPrompt p;
  p.text = chat::apply_chat_template(*chat_template_, conversation.messages, add_generation_prompt, special_tokens_);
  // As transformers' processor apply_chat_template: special tokens are added (LLaVA's BOS) unless the rendered
  // text already starts with the BOS token (Qwen2-VL's tokenizer adds none either way).
  const auto& bos = tokenizer_->config().bos_token;
  const bool add_special_tokens = !(bos && !bos->empty() && p.text.rfind(*bos, 0) == 0);
  const std::vector<std::int32_t> ids = tokenizer_->encode(p.text, add_special_tokens);

  const std::int64_t image_token = model_->info().image_token_id;
  std::size_t placeholders = 0;
  for (auto id : ids) placeholders += (image_token >= 0 && id == image_token) ? 1 : 0;
  if (placeholders != conversation.images.size()) {
    fail(ErrorCode::invalid_argument, "the conversation has " + std::to_string(placeholders) + " image placeholder" +
                                          (placeholders == 1 ? "" : "s") + " but " +
                                          std::to_string(conversation.images.size()) + " image" +
                                          (conversation.images.size() == 1 ? "" : "s") +
                                          " were given: add one {\"type\": \"image\"} item per image");
  }
  if (!conversation.images.empty()) {
    if (!image_processor_) fail(ErrorCode::invalid_argument, "this model takes no images");
    p.pixels = image_processor_->process(conversation.images);
  }
  std::size_t image = 0;
  for (auto id : ids) {
    if (image_token >= 0 && id == image_token) {
      // Qwen2-VL's processor counts per image; for CLIP-preprocessed families (LLaVA) the model fixes the count.
      std::int64_t n = p.pixels.images[image++].num_image_tokens;
      if (n <= 0) n = model_->info().tokens_per_image;
      if (n <= 0) {
        fail(ErrorCode::unsupported, "the image processor of this model does not say how many tokens an image takes; "
                                     "this model family is not supported for image prompts yet");
      }
      p.input_ids.insert(p.input_ids.end(), static_cast<std::size_t>(n), image_token);
    } else {
      p.input_ids.push_back(id);
    }
  }
  return p;
}

ForwardInputs Session::make_batch(const std::vector<PreparedPrompt>& prompts, bool pad_right) const {
  if (prompts.empty()) fail(ErrorCode::invalid_argument, "no prompts to batch");
  std::size_t width = 0;
  for (const auto& p : prompts) width = std::max(width, p.input_ids.size());
  const auto rows = static_cast<std::int64_t>(prompts.size());
  torch::Tensor ids = torch::full({rows, static_cast<std::int64_t>(width)}, pad_id_, torch::kInt64);
  torch::Tensor mask = torch::zeros({rows, static_cast<std::int64_t>(width)}, torch::kInt64);
  std::vector<torch::Tensor> pixels, grids;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto& p = prompts[r];
    const auto n = static_cast<std::int64_t>(p.input_ids.size());
    if (n == 0) fail(ErrorCode::invalid_argument, "prompt " + std::to_string(r) + " is empty");
    const std::int64_t offset = pad_right ? 0 : static_cast<std::int64_t>(width) - n;
    ids[r].narrow(0, offset, n).copy_(torch::tensor(p.input_ids, torch::kInt64));
    mask[r].narrow(0, offset, n).fill_(1);
    if (!p.pixels.pixel_values.empty()) {
      pixels.push_back(torch::from_blob(const_cast<float*>(p.pixels.pixel_values.data()), p.pixels.shape, torch::kFloat32).clone());
      for (const auto& info : p.pixels.images) {
        grids.push_back(torch::tensor(std::vector<std::int64_t>(info.grid_thw.begin(), info.grid_thw.end()), torch::kInt64).view({1, 3}));
      }
    }
  }
  ForwardInputs in;
  in.input_ids = ids;
  in.attention_mask = mask;
  if (!pixels.empty()) {
    in.vision.pixel_values = torch::cat(pixels, 0);
    in.vision.image_grid_thw = torch::cat(grids, 0);
  }
  return in;
}

std::vector<GeneratedText> Session::generate(const std::vector<Conversation>& conversations, GenerationOptions options) {
  std::vector<PreparedPrompt> prompts;
  prompts.reserve(conversations.size());
  for (const auto& c : conversations) prompts.push_back(prepare(c));
  if (!options.stop_strings.empty() && !options.decode) {
    options.decode = [this](const std::vector<std::int64_t>& tokens) {
      return tokenizer_->decode(std::vector<std::int32_t>(tokens.begin(), tokens.end()));
    };
  }
  if (!options.pad_token_id) options.pad_token_id = pad_id_;
  ForwardInputs batch = make_batch(prompts);
  if (!batch.vision.empty()) batch.vision.features = stored_features(prompts);
  GenerationResult result =
      vlm::generate(*model_, batch, options, generation_defaults_ ? &*generation_defaults_ : nullptr);
  std::vector<GeneratedText> out(result.tokens.size());
  DecodeOptions decode;
  decode.skip_special_tokens = true;
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].tokens = result.tokens[i];
    out[i].text = tokenizer_->decode(std::vector<std::int32_t>(result.tokens[i].begin(), result.tokens[i].end()), decode);
    out[i].finish_reason = result.finish_reasons[i];
  }
  return out;
}

ContinuationScore Session::score(const Conversation& conversation, const std::string& continuation) {
  PreparedPrompt p = prepare(conversation);
  const std::vector<std::int32_t> ids = tokenizer_->encode(continuation, /*add_special_tokens=*/false);
  if (ids.empty()) fail(ErrorCode::invalid_argument, "the continuation \"" + continuation + "\" has no tokens");
  ForwardInputs batch = make_batch({p});
  if (!batch.vision.empty()) batch.vision.features = stored_features({p});
  return score_continuation(*model_, p.input_ids, std::vector<std::int64_t>(ids.begin(), ids.end()), batch.vision);
}

torch::Tensor Session::stored_features(const std::vector<PreparedPrompt>& prompts) {
  if (!feature_store_) return torch::Tensor();
  for (const auto& adapter : adapters_) {
    if (!lora_vision_path_use(model_->info(), *adapter).empty()) return torch::Tensor();
  }
  std::vector<torch::Tensor> parts;
  for (const auto& p : prompts) {
    if (p.pixels.pixel_values.empty()) continue;
    parts.push_back(feature_store_->features(*model_, make_batch({p}).vision));
  }
  if (parts.empty()) return torch::Tensor();
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

void Session::load_adapter(const std::string& adapter_dir) {
  adapters_.push_back(LoraModel::load(*model_, adapter_dir));
}

}  // namespace vlm
