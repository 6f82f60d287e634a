// LLaVA-1.5 as transformers 5.23.0's LlavaForConditionalGeneration: CLIPVisionModel (class embedding, patch
// convolution without bias, position embeddings, pre_layrnorm, pre-LN encoder layers), hidden states picked by
// vision_feature_layer (one index or a list concatenated on the hidden dimension) with the default / full select
// strategy, the two-layer projector, image features scattered over the image tokens, and the Llama decoder.
#include "model/llava.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "model/layers.h"
#include "model/weights.h"

namespace vlm {

// ---------------------------------------------------------------------------------------------------------------
// Config

std::int64_t LlavaConfig::tokens_per_image() const {
  const auto side = vision.patches_per_side();
  return side * side + (select_strategy == "full" ? 1 : 0);
}

std::vector<std::int64_t> LlavaConfig::resolved_feature_layers() const {
  std::vector<std::int64_t> out;
  for (auto layer : vision_feature_layers) out.push_back(layer < 0 ? layer + vision.num_layers + 1 : layer);
  return out;
}

LlavaConfig LlavaConfig::parse(const ModelConfig& model_config) {
  const ConfigObject& raw = model_config.raw;
  LlavaConfig c;
  const auto text_child = raw.child_optional("text_config");
  const ConfigObject text = text_child ? *text_child : ConfigObject();
  c.text_model_type = text.get_or<std::string>("model_type", "llama");
  if (c.text_model_type != "llama") {
    fail(ErrorCode::unsupported, raw.describe("text_config.model_type") + ": '" + c.text_model_type +
                                     "' is not supported as LLaVA's language model (llama: Llama, Vicuna)");
  }
  c.text = parse_text_model_config(text, c.text_model_type, /*class_defaults=*/true);

  // Without a vision_config LlavaConfig builds CLIP-L/14-336; a given one fills gaps with CLIPVisionConfig's
  // defaults.
  auto& v = c.vision;
  const auto vision_child = raw.child_optional("vision_config");
  if (!vision_child) {
    v.hidden_size = 1024;
    v.intermediate_size = 4096;
    v.num_layers = 24;
    v.num_heads = 16;
    v.image_size = 336;
    v.patch_size = 14;
  } else {
    const ConfigObject& vis = *vision_child;
    const auto type = vis.get_or<std::string>("model_type", "clip_vision_model");
    if (type != "clip_vision_model") {
      fail(ErrorCode::unsupported, vis.describe("model_type") + ": '" + type +
                                       "' is not supported as LLaVA's vision tower (clip_vision_model)");
    }
    v.hidden_size = vis.get_or<std::int64_t>("hidden_size", v.hidden_size);
    v.intermediate_size = vis.get_or<std::int64_t>("intermediate_size", v.intermediate_size);
    v.num_layers = vis.get_or<std::int64_t>("num_hidden_layers", v.num_layers);
    v.num_heads = vis.get_or<std::int64_t>("num_attention_heads", v.num_heads);
    v.num_channels = vis.get_or<std::int64_t>("num_channels", v.num_channels);
    v.image_size = vis.get_or<std::int64_t>("image_size", v.image_size);
    v.patch_size = vis.get_or<std::int64_t>("patch_size", v.patch_size);
    v.hidden_act = vis.get_or<std::string>("hidden_act", v.hidden_act);
    v.layer_norm_eps = vis.get_or<double>("layer_norm_eps", v.layer_norm_eps);
    if (v.num_heads <= 0 || v.hidden_size % v.num_heads != 0 || v.patch_size <= 0 || v.image_size < v.patch_size ||
        v.num_layers <= 0) {
      fail(ErrorCode::corrupt_data, vis.describe("num_attention_heads") +
                                        ": hidden_size must be a multiple of num_attention_heads, patch_size must be "
                                        "positive and at most image_size, num_hidden_layers positive");
    }
  }

  c.image_token_id = raw.get_or<std::int64_t>("image_token_id", raw.get_or<std::int64_t>("image_token_index", 32000));
  if (raw.has("vision_feature_layer")) {
    const auto& layer = raw.raw().at("vision_feature_layer");
    if (layer.is_number_integer()) {
      c.vision_feature_layers = {layer.get<std::int64_t>()};
    } else {
      c.vision_feature_layers = raw.get<std::vector<std::int64_t>>("vision_feature_layer");
      c.feature_layer_is_list = true;
      if (c.vision_feature_layers.empty()) {
        fail(ErrorCode::corrupt_data, raw.describe("vision_feature_layer") + " is an empty list");
      }
    }
  }
  for (auto layer : c.vision_feature_layers) {
    if (layer < -(v.num_layers + 1) || layer > v.num_layers) {
      fail(ErrorCode::corrupt_data, raw.describe("vision_feature_layer") + ": " + std::to_string(layer) +
                                        " is outside the vision tower's hidden states (-" +
                                        std::to_string(v.num_layers + 1) + " .. " + std::to_string(v.num_layers) + ")");
    }
  }
  c.select_strategy = raw.get_or<std::string>("vision_feature_select_strategy", "default");
  if (c.select_strategy != "default" && c.select_strategy != "full") {
    fail(ErrorCode::unsupported, raw.describe("vision_feature_select_strategy") + ": '" + c.select_strategy +
                                     "' is not supported (default, full)");
  }
  c.projector_act = raw.get_or<std::string>("projector_hidden_act", "gelu");
  c.projector_bias = raw.get_or<bool>("multimodal_projector_bias", true);
  // LlavaConfig: tie when either the top level or the text_config asks for it (class default false).
  c.tie_word_embeddings = raw.get_or<bool>("tie_word_embeddings", false) || text.get_or<bool>("tie_word_embeddings", false);
  if (c.text.eos_token_ids.empty()) c.text.eos_token_ids = read_token_ids(raw, "eos_token_id");
  if (c.text.bos_token_id < 0) c.text.bos_token_id = raw.get_or<std::int64_t>("bos_token_id", -1);
  if (c.text.pad_token_id < 0) c.text.pad_token_id = raw.get_or<std::int64_t>("pad_token_id", -1);
  if (c.image_token_id < 0 || c.image_token_id >= c.text.decoder.vocab_size) {
    fail(ErrorCode::corrupt_data, raw.describe("image_token_index") + ": " + std::to_string(c.image_token_id) +
                                      " is outside the vocabulary (size " +
                                      std::to_string(c.text.decoder.vocab_size) + ")");
  }
  return c;
}

std::string llava_module_key(const std::string& key) {
  auto starts = [&](const std::string& k, const char* prefix) { return k.rfind(prefix, 0) == 0; };
  std::string k = key;
  if (starts(k, "language_model.model.")) {
    k = "model.language_model." + k.substr(std::string("language_model.model.").size());
  } else if (starts(k, "language_model.lm_head.")) {
    k = k.substr(std::string("language_model.").size());
  } else if (starts(k, "vision_tower.") || starts(k, "multi_modal_projector.")) {
    k = "model." + k;
  }
  static const std::string kTower = "model.vision_tower.", kLevel = "vision_model.";
  if (starts(k, kTower.c_str()) && k.compare(kTower.size(), kLevel.size(), kLevel) == 0) {
    k = kTower + k.substr(kTower.size() + kLevel.size());
  }
  return k;
}

namespace {

// ---------------------------------------------------------------------------------------------------------------
// CLIP vision tower

struct ClipAttentionImpl : torch::nn::Module {
  Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  std::int64_t num_heads;
  explicit ClipAttentionImpl(const ClipVisionConfig& c) : num_heads(c.num_heads) {
    k_proj = register_module("k_proj", Projection(c.hidden_size, c.hidden_size, true));
    v_proj = register_module("v_proj", Projection(c.hidden_size, c.hidden_size, true));
    q_proj = register_module("q_proj", Projection(c.hidden_size, c.hidden_size, true));
    out_proj = register_module("out_proj", Projection(c.hidden_size, c.hidden_size, true));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [N, T, E], every position sees every other
    const auto n = x.size(0), t = x.size(1);
    auto heads = [&](const torch::Tensor& y) { return y.view({n, t, num_heads, -1}).transpose(1, 2); };
    auto q = heads(q_proj(x)), k = heads(k_proj(x)), v = heads(v_proj(x));
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    return out_proj(attention(q, k, v, torch::Tensor(), scale));
  }
};
TORCH_MODULE(ClipAttention);

struct ClipMlpImpl : torch::nn::Module {
  Projection fc1{nullptr}, fc2{nullptr};
  Activation act;
  explicit ClipMlpImpl(const ClipVisionConfig& c) : act(activation_by_name(c.hidden_act, "vision_config.hidden_act")) {
    fc1 = register_module("fc1", Projection(c.hidden_size, c.intermediate_size, true));
    fc2 = register_module("fc2", Projection(c.intermediate_size, c.hidden_size, true));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(act(fc1(x))); }
};
TORCH_MODULE(ClipMlp);

struct ClipEncoderLayerImpl : torch::nn::Module {
  ClipAttention self_attn{nullptr};
  LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipMlp mlp{nullptr};
  explicit ClipEncoderLayerImpl(const ClipVisionConfig& c) {
    self_attn = register_module("self_attn", ClipAttention(c));
    layer_norm1 = register_module("layer_norm1", LayerNorm(c.hidden_size, c.layer_norm_eps));
    mlp = register_module("mlp", ClipMlp(c));
    layer_norm2 = register_module("layer_norm2", LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = x + self_attn(layer_norm1(x));
    return h + mlp(layer_norm2(h));
  }
};
TORCH_MODULE(ClipEncoderLayer);

struct ClipEmbeddingsImpl : torch::nn::Module {
  torch::Tensor class_embedding;        // [E]
  torch::Tensor patch_weight;           // patch_embedding.weight [E, C, P, P] (a Conv2d without bias)
  torch::Tensor position_weight;        // position_embedding.weight [patches + 1, E]
  explicit ClipEmbeddingsImpl(const ClipVisionConfig& c) {
    class_embedding = register_parameter("class_embedding", torch::zeros({c.hidden_size}), false);
    auto patch = register_module("patch_embedding", std::make_shared<torch::nn::Module>());
    patch_weight = patch->register_parameter(
        "weight", torch::zeros({c.hidden_size, c.num_channels, c.patch_size, c.patch_size}), false);
    auto position = register_module("position_embedding", std::make_shared<torch::nn::Module>());
    const auto side = c.patches_per_side();
    position_weight = position->register_parameter("weight", torch::zeros({side * side + 1, c.hidden_size}), false);
  }
};
TORCH_MODULE(ClipEmbeddings);

struct ClipVisionTowerImpl : torch::nn::Module {
  ClipVisionConfig config;
  ClipEmbeddings embeddings{nullptr};
  LayerNorm pre_layrnorm{nullptr}, post_layernorm{nullptr};
  std::vector<ClipEncoderLayer> layers;

  explicit ClipVisionTowerImpl(const ClipVisionConfig& c) : config(c) {
    embeddings = register_module("embeddings", ClipEmbeddings(c));
    pre_layrnorm = register_module("pre_layrnorm", LayerNorm(c.hidden_size, c.layer_norm_eps));
    auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
    auto list = encoder->register_module("layers", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.num_layers; ++i) {
      layers.push_back(ClipEncoderLayer(c));
      list->push_back(layers.back());
    }
    // Loaded with the checkpoint, unused: LLaVA reads hidden states, not the pooled output.
    post_layernorm = register_module("post_layernorm", LayerNorm(c.hidden_size, c.layer_norm_eps));
  }

  // pixel_values [N, C, S, S] -> the hidden states at `wanted` (ascending indices 0..num_layers), each [N, 1 + P, E].
  std::vector<torch::Tensor> forward(const torch::Tensor& pixel_values, const std::vector<std::int64_t>& wanted) {
    const auto& c = config;
    if (pixel_values.dim() != 4 || pixel_values.size(1) != c.num_channels || pixel_values.size(2) != c.image_size ||
        pixel_values.size(3) != c.image_size) {
      fail(ErrorCode::invalid_argument, "pixel_values has shape " + c10::str(pixel_values.sizes()) + ", expected [N, " +
                                            std::to_string(c.num_channels) + ", " + std::to_string(c.image_size) +
                                            ", " + std::to_string(c.image_size) +
                                            "] (the vision tower's image_size; process images with the model's "
                                            "preprocessor_config.json)");
    }
    const auto weight = embeddings->patch_weight;
    const auto n = pixel_values.size(0), side = c.patches_per_side(), p = c.patch_size;
    // The stride-P convolution as one matmul over flattened (C, P, P) patches in row-major patch order.
    auto patches = pixel_values.to(weight.device(), weight.scalar_type())
                       .view({n, c.num_channels, side, p, side, p})
                       .permute({0, 2, 4, 1, 3, 5})
                       .reshape({n * side * side, c.num_channels * p * p});
    auto x = precise_matmul(patches, weight.view({weight.size(0), -1}).t()).view({n, side * side, -1});
    auto cls = embeddings->class_embedding.view({1, 1, -1}).expand({n, 1, c.hidden_size});
    x = torch::cat({cls.to(x.scalar_type()), x}, 1) + embeddings->position_weight.unsqueeze(0);
    x = pre_layrnorm(x);
    std::vector<torch::Tensor> out;
    std::size_t next = 0;
    while (next < wanted.size() && wanted[next] == 0) out.push_back(x), ++next;
    for (std::int64_t i = 0; i < c.num_layers && next < wanted.size(); ++i) {
      x = layers[i](x);
      while (next < wanted.size() && wanted[next] == i + 1) out.push_back(x), ++next;
    }
    return out;
  }
};
TORCH_MODULE(ClipVisionTower);

struct ProjectorImpl : torch::nn::Module {
  Projection linear_1{nullptr}, linear_2{nullptr};
  Activation act;
  ProjectorImpl(std::int64_t in, std::int64_t hidden, bool bias, const std::string& act_name)
      : act(activation_by_name(act_name, "projector_hidden_act")) {
    linear_1 = register_module("linear_1", Projection(in, hidden, bias));
    linear_2 = register_module("linear_2", Projection(hidden, hidden, bias));
  }
  torch::Tensor forward(const torch::Tensor& x) { return linear_2(act(linear_1(x))); }
};
TORCH_MODULE(Projector);

// ---------------------------------------------------------------------------------------------------------------
// The model

struct LlavaState : InferenceState {
  KVCache cache;
  explicit LlavaState(std::int64_t layers) : cache(layers) {}
  std::int64_t length() const override { return cache.length(); }
  void reorder(const torch::Tensor& indices) override { cache.reorder(indices); }
};

struct LlavaRootImpl : torch::nn::Module {
  ClipVisionTower vision_tower{nullptr};
  Projector multi_modal_projector{nullptr};
  Decoder language_model{nullptr};
  Projection lm_head{nullptr};
  explicit LlavaRootImpl(const LlavaConfig& c) {
    auto model = register_module("model", std::make_shared<torch::nn::Module>());
    vision_tower = model->register_module("vision_tower", ClipVisionTower(c.vision));
    const auto layers = static_cast<std::int64_t>(c.vision_feature_layers.size());
    multi_modal_projector = model->register_module(
        "multi_modal_projector",
        Projector(c.vision.hidden_size * layers, c.text.decoder.hidden_size, c.projector_bias, c.projector_act));
    language_model = model->register_module("language_model", Decoder(c.text.decoder));
    lm_head = register_module("lm_head", Projection(c.text.decoder.hidden_size, c.text.decoder.vocab_size, false));
  }
};
TORCH_MODULE(LlavaRoot);

class LlavaModel : public VisionLanguageModel {
 public:
  LlavaModel(LlavaConfig config, const Checkpoint& checkpoint, const LoadOptions& options)
      : config_(std::move(config)), root_(config_), dtype_(options.dtype), device_(options.device) {
    root_->eval();
    WeightLoadPlan plan;
    plan.dtype = dtype_;
    plan.device = device_;
    plan.family = "llava";
    plan.rename = llava_module_key;
    if (config_.tie_word_embeddings) plan.tied["lm_head.weight"] = "model.language_model.embed_tokens.weight";
    load_weights(*root_, checkpoint, plan);
    set_projection_paths(*root_);
    inv_freq_ = rope_inv_freq(config_.text.decoder.head_dim, config_.text.rope_theta, config_.text.scaling).to(device_);
    // Hidden-state indices in ascending order, and where each configured layer sits among them.
    const auto resolved = config_.resolved_feature_layers();
    wanted_ = resolved;
    std::sort(wanted_.begin(), wanted_.end());
    wanted_.erase(std::unique(wanted_.begin(), wanted_.end()), wanted_.end());
    for (auto layer : resolved) {
      feature_order_.push_back(std::find(wanted_.begin(), wanted_.end(), layer) - wanted_.begin());
    }
    info_.family = "llava";
    info_.vocab_size = config_.text.decoder.vocab_size;
    info_.num_layers = config_.text.decoder.num_layers;
    info_.image_token_id = config_.image_token_id;
    info_.tokens_per_image = config_.tokens_per_image();
    info_.eos_token_ids = config_.text.eos_token_ids;
    info_.pad_token_id = config_.text.pad_token_id;
    info_.bos_token_id = config_.text.bos_token_id;
    info_.language_model_prefix = "model.language_model.";
    info_.vision_tower_prefix = "model.vision_tower.";
    info_.projector_prefix = "model.multi_modal_projector.";
  }

  const ModelInfo& info() const override { return info_; }
  torch::Device device() const override { return device_; }
  torch::ScalarType dtype() const override { return dtype_; }
  std::unique_ptr<InferenceState> new_state(std::int64_t) override {
    return std::make_unique<LlavaState>(config_.text.decoder.num_layers);
  }
  torch::nn::Module& module() override { return *root_; }
  std::string canonical_module_path(const std::string& path) const override { return llava_module_key(path); }
  void set_gradient_checkpointing(bool enabled) override { root_->language_model->gradient_checkpointing = enabled; }

  // pixel_values [N, C, S, S] -> projected features [N, tokens_per_image, hidden].
  torch::Tensor image_features(const torch::Tensor& pixel_values) {
    auto states = root_->vision_tower(pixel_values, wanted_);
    std::vector<torch::Tensor> picked;
    for (auto index : feature_order_) {
      auto h = states[static_cast<std::size_t>(index)];
      if (config_.select_strategy == "default") h = h.narrow(1, 1, h.size(1) - 1);
      picked.push_back(h);
    }
    auto selected = picked.size() == 1 ? picked[0] : torch::cat(picked, -1);
    return root_->multi_modal_projector(selected);
  }

  torch::Tensor forward(const ForwardInputs& inputs, InferenceState* state_base) override {
    LlavaState* state = state_cast<LlavaState>(state_base);
    if (!inputs.input_ids.defined() || inputs.input_ids.dim() != 2 || inputs.input_ids.size(1) == 0) {
      fail(ErrorCode::invalid_argument, "forward: input_ids must be a [batch, length] int64 tensor with length > 0");
    }
    const auto past = state ? state->length() : 0;
    auto ids = inputs.input_ids.to(device_, torch::kLong);
    const auto batch = ids.size(0), len = ids.size(1);
    if (state && past > 0 && state->cache.batch_size() != batch) {
      fail(ErrorCode::invalid_argument, "forward: input_ids has " + std::to_string(batch) +
                                            " rows but the state holds " + std::to_string(state->cache.batch_size()));
    }
    auto lm = root_->language_model;
    // Without images, image token ids are embedded like any other token (as transformers does).
    auto embeds = lm->embed(ids);
    if (!inputs.vision.empty()) {
      auto image_mask = ids == config_.image_token_id;
      if (past > 0) fail(ErrorCode::invalid_argument, "forward: images can only be passed at prefill (empty state)");
      auto features = inputs.vision.features.defined() ? inputs.vision.features : encode_images(inputs.vision);
      const auto tokens = image_mask.sum().item<std::int64_t>();
      const auto count = features.size(0);
      if (tokens != count) {
        fail(ErrorCode::invalid_argument,
             "forward: image features and image tokens do not match, tokens: " + std::to_string(tokens) +
                 " (id " + std::to_string(config_.image_token_id) + "), features: " + std::to_string(count) + " (" +
                 std::to_string(inputs.vision.pixel_values.size(0)) + " images); each image needs " +
                 std::to_string(config_.tokens_per_image()) + " image tokens");
      }
      embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), features.to(embeds.scalar_type()));
    }
    auto positions = text_positions(inputs.attention_mask, batch, len, past, device_);
    auto rope = rope_cos_sin(inv_freq_, positions, dtype_);
    torch::Tensor mask;
    if (inputs.attention_mask.defined() || len > 1) mask = causal_mask(inputs.attention_mask, batch, len, past, dtype_, device_);
    auto hidden = lm(embeds, rope, mask, state ? &state->cache : nullptr);
    return root_->lm_head(rows_for_logits(hidden, inputs)).to(torch::kFloat);
  }

  torch::Tensor encode_images(const VisionInputs& vision) override {
    auto features = image_features(vision.pixel_values);  // [images, tokens per image, hidden]
    return features.reshape({features.size(0) * features.size(1), features.size(2)});
  }

 private:
  LlavaConfig config_;
  LlavaRoot root_;
  torch::ScalarType dtype_;
  torch::Device device_;
  torch::Tensor inv_freq_;
  std::vector<std::int64_t> wanted_;        // hidden-state indices to keep, ascending
  std::vector<std::int64_t> feature_order_; // position in wanted_ of each configured feature layer
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<VisionLanguageModel> create_llava(const ModelConfig& config, const Checkpoint& checkpoint,
                                                  const LoadOptions& options) {
  return std::make_unique<LlavaModel>(LlavaConfig::parse(config), checkpoint, options);
}

}  // namespace vlm
