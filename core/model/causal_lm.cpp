// Text-only decoders (Qwen2, Llama) behind the VisionLanguageModel interface: the "other HF models".
#include <torch/torch.h>

#include "base/error.h"
#include "model/families.h"
#include "model/layers.h"
#include "model/weights.h"

namespace vlm {
namespace {

struct CausalLMConfig {
  std::string model_type;
  DecoderConfig text;
  double rope_theta = 10000.0;
  RopeScaling scaling;
  bool tie_word_embeddings = true;
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t bos_token_id = -1, pad_token_id = -1;

  static CausalLMConfig parse(const ModelConfig& model_config) {
    CausalLMConfig c;
    c.model_type = model_config.model_type;
    TextModelConfig t = parse_text_model_config(model_config.raw, c.model_type, /*class_defaults=*/false);
    c.text = t.decoder;
    c.rope_theta = t.rope_theta;
    c.scaling = t.scaling;
    c.tie_word_embeddings = model_config.tie_word_embeddings;
    c.eos_token_ids = t.eos_token_ids;
    c.bos_token_id = t.bos_token_id;
    c.pad_token_id = t.pad_token_id;
    return c;
  }
};

struct CausalLMState : InferenceState {
  KVCache cache;
  explicit CausalLMState(std::int64_t layers) : cache(layers) {}
  std::int64_t length() const override { return cache.length(); }
  void reorder(const torch::Tensor& indices) override { cache.reorder(indices); }
};

struct CausalLMRootImpl : torch::nn::Module {
  Decoder model{nullptr};
  Projection lm_head{nullptr};
  explicit CausalLMRootImpl(const DecoderConfig& c) {
    model = register_module("model", Decoder(c));
    lm_head = register_module("lm_head", Projection(c.hidden_size, c.vocab_size, false));
  }
};
TORCH_MODULE(CausalLMRoot);

class CausalLM : public VisionLanguageModel {
 public:
  CausalLM(CausalLMConfig config, const Checkpoint& checkpoint, const LoadOptions& options)
      : config_(std::move(config)), root_(config_.text), dtype_(options.dtype), device_(options.device) {
    root_->eval();
    WeightLoadPlan plan;
    plan.dtype = dtype_;
    plan.device = device_;
    plan.family = config_.model_type;
    if (config_.tie_word_embeddings) plan.tied["lm_head.weight"] = "model.embed_tokens.weight";
    load_weights(*root_, checkpoint, plan);
    set_projection_paths(*root_);
    inv_freq_ = rope_inv_freq(config_.text.head_dim, config_.rope_theta, config_.scaling).to(device_);
    info_.family = config_.model_type;
    info_.vocab_size = config_.text.vocab_size;
    info_.num_layers = config_.text.num_layers;
    info_.eos_token_ids = config_.eos_token_ids;
    info_.pad_token_id = config_.pad_token_id;
    info_.bos_token_id = config_.bos_token_id;
    info_.language_model_prefix = "model.";
    info_.vision_tower_prefix = "";
    info_.projector_prefix = "";
  }

  const ModelInfo& info() const override { return info_; }
  torch::Device device() const override { return device_; }
  torch::ScalarType dtype() const override { return dtype_; }
  std::unique_ptr<InferenceState> new_state(std::int64_t) override {
    return std::make_unique<CausalLMState>(config_.text.num_layers);
  }

  torch::nn::Module& module() override { return *root_; }
  void set_gradient_checkpointing(bool enabled) override { root_->model->gradient_checkpointing = enabled; }

  torch::Tensor forward(const ForwardInputs& inputs, InferenceState* state_base) override {
    CausalLMState* state = state_cast<CausalLMState>(state_base);
    if (!inputs.vision.empty()) {
      fail(ErrorCode::invalid_argument, "forward: " + config_.model_type + " is a text-only model; drop the images");
    }
    if (!inputs.input_ids.defined() || inputs.input_ids.dim() != 2 || inputs.input_ids.size(1) == 0) {
      fail(ErrorCode::invalid_argument, "forward: input_ids must be a [batch, length] int64 tensor with length > 0");
    }
    const auto past = state ? state->length() : 0;
    auto ids = inputs.input_ids.to(device_, torch::kLong);
    const auto batch = ids.size(0), len = ids.size(1);
    auto embeds = root_->model->embed(ids);
    auto positions = text_positions(inputs.attention_mask, batch, len, past, device_);
    auto rope = rope_cos_sin(inv_freq_, positions, dtype_);
    torch::Tensor mask;
    if (inputs.attention_mask.defined() || len > 1) mask = causal_mask(inputs.attention_mask, batch, len, past, dtype_, device_);
    auto hidden = root_->model(embeds, rope, mask, state ? &state->cache : nullptr);
    return root_->lm_head(rows_for_logits(hidden, inputs)).to(torch::kFloat);
  }

  torch::Tensor encode_images(const VisionInputs&) override {
    fail(ErrorCode::invalid_argument, "encode_images: " + config_.model_type + " is a text-only model");
  }

 private:
  CausalLMConfig config_;
  CausalLMRoot root_;
  torch::ScalarType dtype_;
  torch::Device device_;
  torch::Tensor inv_freq_;
  ModelInfo info_;
};

}  // namespace

TextModelConfig parse_text_model_config(const ConfigObject& raw, const std::string& model_type, bool class_defaults) {
  TextModelConfig c;
  const bool qwen2 = model_type == "qwen2";
  auto& t = c.decoder;
  // LlamaConfig's class defaults (Llama-2-7B), used for keys a LLaVA text_config leaves out.
  auto size = [&](const char* key, std::int64_t fallback) {
    return class_defaults ? raw.get_or<std::int64_t>(key, fallback) : raw.get<std::int64_t>(key);
  };
  t.vocab_size = size("vocab_size", 32000);
  t.hidden_size = size("hidden_size", 4096);
  t.intermediate_size = size("intermediate_size", 11008);
  t.num_layers = size("num_hidden_layers", 32);
  t.num_heads = size("num_attention_heads", 32);
  t.num_kv_heads = raw.get_or<std::int64_t>("num_key_value_heads", t.num_heads);
  if (t.num_heads <= 0 || t.num_kv_heads <= 0 || t.num_heads % t.num_kv_heads != 0 || t.hidden_size <= 0) {
    fail(ErrorCode::corrupt_data, raw.describe("num_key_value_heads") +
                                      ": num_attention_heads must be a positive multiple of num_key_value_heads");
  }
  // transformers writes head_dim: null for "hidden_size / num_attention_heads".
  const auto head_dim = raw.get_optional<std::int64_t>("head_dim");
  t.head_dim = head_dim ? *head_dim : t.hidden_size / t.num_heads;
  t.rms_norm_eps = raw.get_or<double>("rms_norm_eps", 1e-6);
  t.hidden_act = raw.get_or<std::string>("hidden_act", "silu");
  t.qkv_bias = qwen2 ? true : raw.get_or<bool>("attention_bias", false);
  t.o_bias = qwen2 ? false : raw.get_or<bool>("attention_bias", false);
  t.mlp_bias = qwen2 ? false : raw.get_or<bool>("mlp_bias", false);
  if (qwen2 && raw.get_or<bool>("use_sliding_window", false)) {
    fail(ErrorCode::unsupported, raw.describe("use_sliding_window") + ": sliding-window attention is not supported");
  }
  c.rope_theta = raw.get_or<double>("rope_theta", qwen2 ? 1e6 : 10000.0);
  std::optional<ConfigObject> rope = raw.child_optional("rope_parameters");
  if (!rope) rope = raw.child_optional("rope_scaling");
  if (rope) {
    c.rope_theta = rope->get_or<double>("rope_theta", c.rope_theta);
    auto& s = c.scaling;
    s.type = rope->get_or<std::string>("rope_type", rope->get_or<std::string>("type", "default"));
    s.factor = rope->get_or<double>("factor", 1.0);
    s.low_freq_factor = rope->get_or<double>("low_freq_factor", 1.0);
    s.high_freq_factor = rope->get_or<double>("high_freq_factor", 4.0);
    s.original_max_position_embeddings = rope->get_or<std::int64_t>(
        "original_max_position_embeddings", raw.get_or<std::int64_t>("max_position_embeddings", 8192));
    if (s.type != "default" && s.type != "linear" && s.type != "llama3") {
      fail(ErrorCode::unsupported, rope->describe("rope_type") + ": '" + s.type +
                                       "' is not supported (default, linear, llama3)");
    }
  }
  c.eos_token_ids = read_token_ids(raw, "eos_token_id");
  c.bos_token_id = raw.get_or<std::int64_t>("bos_token_id", -1);
  c.pad_token_id = raw.get_or<std::int64_t>("pad_token_id", -1);
  return c;
}

std::unique_ptr<VisionLanguageModel> create_causal_lm(const ModelConfig& config, const Checkpoint& checkpoint,
                                                      const LoadOptions& options) {
  return std::make_unique<CausalLM>(CausalLMConfig::parse(config), checkpoint, options);
}

}  // namespace vlm
