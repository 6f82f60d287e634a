// Building blocks shared by every model family: norms, activations, rotary embeddings (RoPE, M-RoPE, the 2-D
// vision rotary), attention with GQA over a KV cache, masks, the SwiGLU MLP and the one projection helper every
// Linear goes through. Modules register their parameters under the Hugging Face checkpoint names, so a model's
// named_parameters() are the checkpoint keys (transformers >= 4.52 layout).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/matvec.h"

namespace vlm {

// ---------------------------------------------------------------------------------------------------------------
// Projection: y = x W^T + b, the single choke point of every Linear in the language model and the vision tower.
// It knows its module path ("model.language_model.layers.0.self_attn.q_proj") so the training engine can attach
// adapters (LoRA) by name without touching model code.
class ProjectionAdapter {
 public:
  virtual ~ProjectionAdapter() = default;
  // Returns what to add to the base output `y` for input `x` (e.g. scale * B(A(x))).
  virtual torch::Tensor delta(const torch::Tensor& x, const torch::Tensor& y) = 0;
};

class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(std::int64_t in_features, std::int64_t out_features, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

  // Set by set_projection_paths() once the module tree is complete.
  const std::string& path() const { return path_; }
  void set_path(std::string path) { path_ = std::move(path); }
  void add_adapter(std::shared_ptr<ProjectionAdapter> adapter) { adapters_.push_back(std::move(adapter)); }
  void clear_adapters() { adapters_.clear(); }
  void remove_adapter(const ProjectionAdapter* adapter) {
    for (auto it = adapters_.begin(); it != adapters_.end(); ++it) {
      if (it->get() == adapter) {
        adapters_.erase(it);
        return;
      }
    }
  }
  const std::vector<std::shared_ptr<ProjectionAdapter>>& adapters() const { return adapters_; }

  // The weight's coded copy for decode steps (model/matvec.h), or null. coded_weight() returns it only while it
  // still encodes `weight`; once the weight is replaced or changed in place the copy is dropped (its memory
  // freed) and it returns null.
  void set_coded_weight(std::shared_ptr<const CodedBf16Weight> coded) { coded_ = std::move(coded); }
  const CodedBf16Weight* coded_weight() {
    if (coded_ && !coded_->encodes(weight)) coded_.reset();
    return coded_.get();
  }

 private:
  std::int64_t in_features_, out_features_;
  std::string path_;
  std::shared_ptr<const CodedBf16Weight> coded_;
  std::vector<std::shared_ptr<ProjectionAdapter>> adapters_;
};
TORCH_MODULE(Projection);

// Every Projection under `root`, keyed by its module path; also stores the path in each Projection.
std::vector<std::pair<std::string, Projection>> set_projection_paths(torch::nn::Module& root);

// ---------------------------------------------------------------------------------------------------------------
// Norms. RMSNorm computes in float32 and returns weight * x.to(input dtype), as Hugging Face's LlamaRMSNorm.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(std::int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(std::int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  double eps_;
};
TORCH_MODULE(LayerNorm);

// ---------------------------------------------------------------------------------------------------------------
// Activations by their Hugging Face name (config "hidden_act"): silu/swish, gelu (erf), gelu_pytorch_tanh,
// gelu_new, quick_gelu, relu. Unknown names are a vlm::Error(unsupported) naming `where`.
using Activation = std::function<torch::Tensor(const torch::Tensor&)>;
Activation activation_by_name(const std::string& name, const std::string& where);

// ---------------------------------------------------------------------------------------------------------------
// Rotary embeddings.
struct RopeScaling {
  std::string type = "default";  // default | linear | llama3 (dynamic/yarn are refused by the config parsers)
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};

// inv_freq[i] = 1 / theta^(2i/dim), i < dim/2, in float32 as transformers computes it, then scaled by `scaling`.
torch::Tensor rope_inv_freq(std::int64_t dim, double theta, const RopeScaling& scaling = {});

struct CosSin {
  torch::Tensor cos, sin;
};

// Standard RoPE: positions [B, L] -> cos/sin [B, L, dim] (dim = 2 * inv_freq.size), in `dtype`.
CosSin rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions, torch::ScalarType dtype);
// M-RoPE: positions [3, B, L] (t, h, w); frequency chunk i of `mrope_section` takes axis i % 3 -> [B, L, dim].
CosSin mrope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                     const std::vector<std::int64_t>& mrope_section, torch::ScalarType dtype);
// q, k [B, H, L, D]; cos/sin [B, L, D].
void apply_rotary(torch::Tensor& q, torch::Tensor& k, const CosSin& cs);
torch::Tensor rotate_half(const torch::Tensor& x);

// The Qwen2-VL vision rotary: per patch (h, w) positions in merge-window order; head_dim/2 frequencies split
// between h and w. Returns cos/sin [num_patches, head_dim] in float32.
CosSin vision_rotary_cos_sin(const torch::Tensor& grid_thw, std::int64_t head_dim, std::int64_t merge_size,
                             double theta = 10000.0);

// ---------------------------------------------------------------------------------------------------------------
// KV cache: one [B, H_kv, capacity, D] buffer per layer for keys and values, grown geometrically, so a decode
// step writes in place instead of re-copying the whole past (see bench/model for the measurement).
class KVCache {
 public:
  explicit KVCache(std::int64_t num_layers) : keys_(num_layers), values_(num_layers), lengths_(num_layers, 0) {}
  // Appends k, v [B, H_kv, L, D] to `layer` and returns views of the whole cached keys/values.
  std::pair<torch::Tensor, torch::Tensor> append(std::int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  // The buffers of `layer` after making room for `added` more tokens and counting them as cached: keys and values
  // [batch, kv_heads, capacity, head_dim] of `options`, and the new length. The caller writes the new tokens at
  // [length - added, length) itself (the fused decode step writes them straight from its rotary pass).
  struct Slots {
    torch::Tensor keys, values;
    std::int64_t length;
  };
  Slots extend(std::int64_t layer, std::int64_t added, std::int64_t batch, std::int64_t kv_heads,
               std::int64_t head_dim, const torch::TensorOptions& options);
  // Tokens cached (layer 0; all layers agree after a full forward).
  std::int64_t length() const { return lengths_.empty() ? 0 : lengths_[0]; }
  std::int64_t batch_size() const;
  void reorder(const torch::Tensor& indices);
  void clear();

 private:
  std::vector<torch::Tensor> keys_, values_;
  std::vector<std::int64_t> lengths_;
};

// ---------------------------------------------------------------------------------------------------------------
// Masks and attention.

// Additive attention mask [B, 1, L, past + L] for `dtype`: 0 where query i (absolute position past + i) may see
// key j (j <= past + i and attention_mask[b, j] == 1), the dtype's lowest value elsewhere, as transformers' eager
// path. `attention_mask` [B, past + L] may be undefined (no padding).
torch::Tensor causal_mask(const torch::Tensor& attention_mask, std::int64_t batch, std::int64_t query_len,
                          std::int64_t past, torch::ScalarType dtype, torch::Device device);

// True where libtorch 1.13 has no float32-accumulating matmul of its own for a product of `dtype` tensors on `device`
// with `multiply_adds` = batch x m x n x k: float16 on the CPU (no kernel at all), and bfloat16 on the CPU unless
// oneDNN takes it. libtorch hands a bfloat16 product to oneDNN only on CPUs with AVX-512 BW/VL/DQ and only above
// 16 x 16 x 16 multiply-adds (matmul, bmm, linear and their backward alike); otherwise a scalar loop rounds its
// running sums to bfloat16 (off by up to 3623 bfloat16 steps on a 16 x 16 x 16 product, and some 37x slower
// than float32 OpenBLAS for a 300 x 896 x 4864 one on a 2-core AVX2 EPYC). Matmuls of such products compute in
// float32 and round once: what oneDNN and torch 2's kernels return.
bool matmul_via_float32(torch::ScalarType dtype, const torch::Device& device, std::int64_t multiply_adds);

// torch::matmul and torch::linear, computing in float32 and rounding once where matmul_via_float32 says so. Under
// CPU autocast to bfloat16 (training), such products make autocast's bfloat16 casts themselves and multiply in
// float32 with autocast off: autocast's result type (bfloat16) holding a float32-accumulated value, as oneDNN
// returns. The autograd graph is then float32 matmuls between bfloat16 roundings, so a backward pass run outside the
// autocast scope (the trainer's, as transformers') multiplies in float32 too and rounds each input gradient to
// bfloat16 once, as a bfloat16 matmul's backward does.
torch::Tensor precise_matmul(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor precise_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// softmax(q k^T * scale + mask) v with softmax in float32; q [B, H, L, D], k/v [B, H_kv, S, D] (GQA: H_kv divides
// H). Returns [B, L, H * D].
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, double scale);

// ---------------------------------------------------------------------------------------------------------------
// SwiGLU MLP: down(act(gate(x)) * up(x)).
class GatedMLPImpl : public torch::nn::Module {
 public:
  GatedMLPImpl(std::int64_t hidden, std::int64_t intermediate, bool bias, const std::string& act);
  torch::Tensor forward(const torch::Tensor& x);
  Projection gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  const std::string& activation_name() const { return act_name_; }
  const Activation& activation() const { return act_; }

 private:
  std::string act_name_;
  Activation act_;
};
TORCH_MODULE(GatedMLP);

// ---------------------------------------------------------------------------------------------------------------
// A decoder-only transformer (Qwen2 / Llama style): embed_tokens, layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
// post_attention_layernorm, mlp.{gate,up,down}_proj}, norm. Positions are applied by the caller via cos/sin.
struct DecoderConfig {
  std::int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_layers = 0;
  std::int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  double rms_norm_eps = 1e-6;
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  std::string hidden_act = "silu";
};

struct DecodeStep;  // decode_step.cpp

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const DecoderConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const CosSin& rope, const torch::Tensor& mask, KVCache* cache,
                        std::int64_t layer_index);
  // This layer's part of a fused decode step (decode_step.cpp): `hidden` [rows, hidden_size] float32, updated in
  // place.
  void decode_step(DecodeStep& step, float* hidden, std::int64_t layer_index);
  // Whether both norm weights are contiguous tensors of `dtype` (the fused step reads them raw).
  bool norms_are(torch::ScalarType dtype) const {
    for (const auto& norm : {input_layernorm_, post_attention_layernorm_}) {
      if (norm->weight.scalar_type() != dtype || !norm->weight.is_contiguous()) return false;
    }
    return true;
  }

 private:
  struct AttentionImpl : torch::nn::Module {
    explicit AttentionImpl(const DecoderConfig& config);
    Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  };
  DecoderConfig config_;
  std::shared_ptr<AttentionImpl> self_attn_;
  RMSNorm input_layernorm_{nullptr}, post_attention_layernorm_{nullptr};
  GatedMLP mlp_{nullptr};
};
TORCH_MODULE(DecoderLayer);

class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const DecoderConfig& config);
  torch::Tensor embed(const torch::Tensor& input_ids);
  // inputs_embeds [B, L, hidden] -> final-normed hidden states [B, L, hidden].
  torch::Tensor forward(const torch::Tensor& inputs_embeds, const CosSin& rope, const torch::Tensor& mask,
                        KVCache* cache);
  const DecoderConfig& config() const { return config_; }
  torch::nn::Embedding embed_tokens{nullptr};
  // When on (and grad mode is on, without a cache), each layer keeps only its input for the backward pass and is
  // recomputed there, with the RNG state of the first run, as torch.utils.checkpoint does.
  bool gradient_checkpointing = false;
  // Decode steps on the CPU (one new token per row over a KV cache, grad mode and autocast off) run each layer as a
  // few passes over raw float32 rows (decode_step.cpp) instead of some 80 small libtorch calls, rounding to the
  // model's dtype where those calls do. Results equal the op-by-op path up to float32 summation order (in bfloat16,
  // libtorch's own matmul rounds its running sums on CPUs without AVX-512; the fused step accumulates in float32).
  // Off: always the op-by-op path.
  bool fused_decode = true;
  bool fused_decode_applies(const torch::Tensor& x, const CosSin& rope, const torch::Tensor& mask,
                            const KVCache* cache) const;

 private:
  torch::Tensor decode_step(const torch::Tensor& x, const CosSin& rope, const torch::Tensor& mask, KVCache& cache);
  DecoderConfig config_;
  std::vector<DecoderLayer> layers_;
  RMSNorm norm_{nullptr};
};
TORCH_MODULE(Decoder);

// Positions for a decoder-only step as generate() builds them: cumsum(mask) - 1 with pads at 1, or
// past..past+L-1 without a mask. Returns [B, L] int64 for the last `query_len` columns.
torch::Tensor text_positions(const torch::Tensor& attention_mask, std::int64_t batch, std::int64_t query_len,
                             std::int64_t past, torch::Device device);

}  // namespace vlm
