#include "model/layers.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "base/error.h"
#include "model/matvec.h"
#include "model/simd.h"

namespace vlm {

// ---------------------------------------------------------------------------------------------------------------
ProjectionImpl::ProjectionImpl(std::int64_t in_features, std::int64_t out_features, bool with_bias)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}), /*requires_grad=*/false);
  if (with_bias) bias = register_parameter("bias", torch::empty({out_features}), /*requires_grad=*/false);
}

namespace {

// CPU autocast to bfloat16 for a product libtorch would give no bfloat16 gemm (matmul_via_float32): autocast would
// cast its inputs to bfloat16 and hand them to the scalar loop. The callers make the same casts themselves and
// multiply in float32 with autocast off, rounding the product once to bfloat16: autocast's result types, a
// float32-accumulated value.
bool autocast_bf16_via_float32(const torch::Device& device, std::int64_t multiply_adds) {
  return device.is_cpu() && at::autocast::is_cpu_enabled() &&
         at::autocast::get_autocast_cpu_dtype() == torch::kBFloat16 &&
         matmul_via_float32(torch::kBFloat16, device, multiply_adds);
}

struct CpuAutocastOff {
  CpuAutocastOff() : previous(at::autocast::is_cpu_enabled()) { at::autocast::set_cpu_enabled(false); }
  ~CpuAutocastOff() { at::autocast::set_cpu_enabled(previous); }
  bool previous;
};

// t's values as autocast would pass them (rounded to bfloat16), in float32.
torch::Tensor through_bf16(const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat); }

// `product(operand)` (`multiply_adds` of them) with each operand passed through `operand`, rounded as
// precise_matmul / precise_linear promise (layers.h): float32 values of autocast's bfloat16 casts with autocast off,
// float32 values where libtorch has no float32-accumulating kernel for the product, or the operands as they are.
template <typename Product>
torch::Tensor float32_accumulated(const torch::Tensor& x, std::int64_t multiply_adds, Product product) {
  if (autocast_bf16_via_float32(x.device(), multiply_adds)) {
    CpuAutocastOff off;
    return product(through_bf16).to(torch::kBFloat16);
  }
  if (matmul_via_float32(x.scalar_type(), x.device(), multiply_adds)) {
    return product([](const torch::Tensor& t) { return t.to(torch::kFloat); }).to(x.scalar_type());
  }
  return product([](const torch::Tensor& t) { return t; });
}

}  // namespace

torch::Tensor precise_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return float32_accumulated(x, x.numel() * weight.size(0), [&](auto operand) {
    return torch::linear(operand(x), operand(weight), bias.defined() ? operand(bias) : torch::Tensor());
  });
}

torch::Tensor ProjectionImpl::forward(const torch::Tensor& x) {
  // A decode step (at most a few rows, no autograd or autocast): a bandwidth-bound kernel instead of libtorch's gemm
  // path, which reaches a third of the memory bandwidth for one row (model/matvec.h).
  auto y = few_row_linear_applies(x, weight) ? few_row_linear(x, weight, bias, coded_weight())
                                             : precise_linear(x, weight, bias);
  // The sum is taken in the promoted type (float32 adapters on a bfloat16 base) and rounded once, as PEFT does.
  for (auto& adapter : adapters_) y = (y + adapter->delta(x, y)).to(y.scalar_type());
  return y;
}

std::vector<std::pair<std::string, Projection>> set_projection_paths(torch::nn::Module& root) {
  std::vector<std::pair<std::string, Projection>> found;
  for (const auto& item : root.named_modules("", /*include_self=*/false)) {
    if (auto projection = std::dynamic_pointer_cast<ProjectionImpl>(item.value())) {
      projection->set_path(item.key());
      found.emplace_back(item.key(), Projection(projection));
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}), false);
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto input_dtype = x.scalar_type();
  auto h = x.to(torch::kFloat);
  auto variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * torch::rsqrt(variance + eps_);
  return weight * h.to(input_dtype);
}

LayerNormImpl::LayerNormImpl(std::int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}), false);
  bias = register_parameter("bias", torch::zeros({dim}), false);
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  // No float16 kernel on the CPU in libtorch 1.13, and no mixed input/weight types (bfloat16 activations under
  // autocast with float32 weights): compute in float32 and round once, as the mixed-type kernels of later releases do.
  if (x.device().is_cpu() && (x.scalar_type() == torch::kHalf || x.scalar_type() != weight.scalar_type())) {
    return torch::layer_norm(x.to(torch::kFloat), {weight.size(0)}, weight.to(torch::kFloat), bias.to(torch::kFloat),
                             eps_)
        .to(x.scalar_type());
  }
  return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps_);
}

// ---------------------------------------------------------------------------------------------------------------
static Activation half_safe(Activation f) {
  // Some activations lack float16 CPU kernels in libtorch 1.13: compute those in float32, round once.
  return [f](const torch::Tensor& x) {
    if (x.scalar_type() == torch::kHalf && x.device().is_cpu()) return f(x.to(torch::kFloat)).to(torch::kHalf);
    return f(x);
  };
}

static Activation activation_kernel(const std::string& name, const std::string& where);

Activation activation_by_name(const std::string& name, const std::string& where) {
  return half_safe(activation_kernel(name, where));
}

static Activation activation_kernel(const std::string& name, const std::string& where) {
  if (name == "silu" || name == "swish") return [](const torch::Tensor& x) { return torch::silu(x); };
  if (name == "gelu") return [](const torch::Tensor& x) { return torch::gelu(x); };
  if (name == "gelu_pytorch_tanh") return [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); };
  if (name == "gelu_new") {
    return [](const torch::Tensor& x) {
      return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3.0))));
    };
  }
  if (name == "quick_gelu") return [](const torch::Tensor& x) { return x * torch::sigmoid(1.702 * x); };
  if (name == "relu") return [](const torch::Tensor& x) { return torch::relu(x); };
  fail(ErrorCode::unsupported, where + ": activation '" + name +
                                   "' is not supported (supported: silu, swish, gelu, gelu_pytorch_tanh, gelu_new, "
                                   "quick_gelu, relu)");
}

// ---------------------------------------------------------------------------------------------------------------
torch::Tensor rope_inv_freq(std::int64_t dim, double theta, const RopeScaling& scaling) {
  auto exponent = torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) / static_cast<double>(dim);
  auto inv_freq = 1.0 / torch::pow(theta, exponent);
  if (scaling.type == "default") return inv_freq;
  if (scaling.type == "linear") return inv_freq / scaling.factor;
  if (scaling.type == "llama3") {
    const double old_context = static_cast<double>(scaling.original_max_position_embeddings);
    const double low_freq_wavelen = old_context / scaling.low_freq_factor;
    const double high_freq_wavelen = old_context / scaling.high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq);
    auto smooth = (old_context / wavelen - scaling.low_freq_factor) /
                  (scaling.high_freq_factor - scaling.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled;
    auto medium = (wavelen < high_freq_wavelen).logical_not() & (wavelen > low_freq_wavelen).logical_not();
    return torch::where(medium, smoothed, scaled);
  }
  fail(ErrorCode::unsupported, "rope scaling type '" + scaling.type + "' is not supported (default, linear, llama3)");
}

CosSin rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions, torch::ScalarType dtype) {
  auto freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq.to(positions.device()).unsqueeze(0);
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

CosSin mrope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                     const std::vector<std::int64_t>& mrope_section, torch::ScalarType dtype) {
  // freqs [3, B, L, dim/2]
  auto freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq.to(positions.device());
  std::vector<torch::Tensor> parts;
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < mrope_section.size(); ++i) {
    parts.push_back(freqs[static_cast<std::int64_t>(i % 3)].narrow(-1, offset, mrope_section[i]));
    offset += mrope_section[i];
  }
  auto picked = torch::cat(parts, -1);
  auto emb = torch::cat({picked, picked}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

void apply_rotary(torch::Tensor& q, torch::Tensor& k, const CosSin& cs) {
  auto cos = cs.cos.unsqueeze(1), sin = cs.sin.unsqueeze(1);
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
}

CosSin vision_rotary_cos_sin(const torch::Tensor& grid_thw, std::int64_t head_dim, std::int64_t merge_size,
                             double theta) {
  auto grid = grid_thw.to(torch::kCPU, torch::kLong).contiguous();
  std::vector<torch::Tensor> rows;
  for (std::int64_t i = 0; i < grid.size(0); ++i) {
    const auto t = grid[i][0].item<std::int64_t>(), h = grid[i][1].item<std::int64_t>(),
               w = grid[i][2].item<std::int64_t>();
    auto hpos = torch::arange(h, torch::kLong).unsqueeze(1).expand({h, w});
    auto wpos = torch::arange(w, torch::kLong).unsqueeze(0).expand({h, w});
    auto block = [&](const torch::Tensor& p) {
      return p.reshape({h / merge_size, merge_size, w / merge_size, merge_size}).transpose(1, 2).flatten();
    };
    rows.push_back(torch::stack({block(hpos), block(wpos)}, -1).repeat({t, 1}));
  }
  auto positions = torch::cat(rows, 0);  // [N, 2]
  const auto spatial_dim = head_dim / 2;
  auto inv_freq = 1.0 / torch::pow(theta, torch::arange(0, spatial_dim, 2, torch::kLong).to(torch::kFloat) /
                                              static_cast<double>(spatial_dim));
  auto freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq;  // [N, 2, spatial_dim/2]
  auto hw = torch::cat({freqs.select(1, 0), freqs.select(1, 1)}, -1);
  auto emb = torch::cat({hw, hw}, -1);
  return {emb.cos(), emb.sin()};
}

// ---------------------------------------------------------------------------------------------------------------
KVCache::Slots KVCache::extend(std::int64_t layer, std::int64_t added, std::int64_t batch, std::int64_t kv_heads,
                               std::int64_t head_dim, const torch::TensorOptions& options) {
  auto& keys = keys_.at(static_cast<std::size_t>(layer));
  auto& values = values_.at(static_cast<std::size_t>(layer));
  auto& length = lengths_[static_cast<std::size_t>(layer)];
  if (!keys.defined() || keys.size(2) < length + added) {
    // Geometric growth keeps the copying amortized O(1) per token.
    const auto capacity = std::max<std::int64_t>({length + added, keys.defined() ? 2 * keys.size(2) : 0, 64});
    auto grow = [&](const torch::Tensor& old) {
      auto buffer = torch::empty({batch, kv_heads, capacity, head_dim}, options);
      if (length > 0) buffer.narrow(2, 0, length).copy_(old.narrow(2, 0, length));
      return buffer;
    };
    keys = grow(keys);
    values = grow(values);
  }
  length += added;
  return {keys, values, length};
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(std::int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  const auto added = k.size(2);
  auto slots = extend(layer, added, k.size(0), k.size(1), k.size(3), k.options());
  slots.keys.narrow(2, slots.length - added, added).copy_(k);
  slots.values.narrow(2, slots.length - added, added).copy_(v);
  return {slots.keys.narrow(2, 0, slots.length), slots.values.narrow(2, 0, slots.length)};
}

std::int64_t KVCache::batch_size() const {
  return keys_.empty() || !keys_[0].defined() ? 0 : keys_[0].size(0);
}

void KVCache::reorder(const torch::Tensor& indices) {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (!keys_[i].defined()) continue;
    auto index = indices.to(keys_[i].device(), torch::kLong);
    keys_[i] = keys_[i].index_select(0, index);
    values_[i] = values_[i].index_select(0, index);
  }
}

void KVCache::clear() {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    keys_[i] = torch::Tensor();
    values_[i] = torch::Tensor();
    lengths_[i] = 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
static double lowest_of(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat: return std::numeric_limits<float>::lowest();
    case torch::kDouble: return std::numeric_limits<double>::lowest();
    case torch::kBFloat16: return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kHalf: return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    default: fail(ErrorCode::unsupported, std::string("attention mask for dtype ") + c10::toString(dtype));
  }
}

torch::Tensor causal_mask(const torch::Tensor& attention_mask, std::int64_t batch, std::int64_t query_len,
                          std::int64_t past, torch::ScalarType dtype, torch::Device device) {
  const auto total = past + query_len;
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto q_pos = (torch::arange(query_len, opts) + past).unsqueeze(1);
  auto k_pos = torch::arange(total, opts).unsqueeze(0);
  auto allowed = (k_pos <= q_pos).unsqueeze(0).expand({batch, query_len, total});
  if (attention_mask.defined()) {
    if (attention_mask.dim() != 2 || attention_mask.size(0) != batch || attention_mask.size(1) != total) {
      fail(ErrorCode::invalid_argument,
           "attention_mask has shape " + c10::str(attention_mask.sizes()) + ", expected [" + std::to_string(batch) +
               ", " + std::to_string(total) + "] (batch, cached tokens + new tokens)");
    }
    allowed = allowed & attention_mask.to(device).to(torch::kBool).unsqueeze(1);
  }
  auto mask = torch::zeros({batch, 1, query_len, total}, torch::TensorOptions().dtype(dtype).device(device));
  return mask.masked_fill(allowed.unsqueeze(1).logical_not(), lowest_of(dtype));
}

bool matmul_via_float32(torch::ScalarType dtype, const torch::Device& device, std::int64_t multiply_adds) {
  if (!device.is_cpu()) return false;
  if (dtype == torch::kHalf) return true;
  if (dtype != torch::kBFloat16) return false;
  // libtorch's threshold (mkldnn_bf16_gemm, checksize): oneDNN only for more than 16 * 16 * 16 multiply-adds.
  constexpr std::int64_t onednn_min_multiply_adds = 16 * 16 * 16;
  return !simd::cpu_has_onednn_bf16() || multiply_adds <= onednn_min_multiply_adds;
}

namespace {
// batch x m x n x k of torch::matmul(a, b), or fewer where the batch dimensions broadcast (never more, so a product
// libtorch would give its scalar loop is never taken for a oneDNN one).
std::int64_t matmul_multiply_adds(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.dim() == 0 || b.dim() == 0) return 0;
  const std::int64_t k = a.size(-1);
  const std::int64_t m = a.dim() >= 2 ? a.size(-2) : 1;
  const std::int64_t n = b.dim() >= 2 ? b.size(-1) : 1;
  const std::int64_t a_batch = m * k == 0 ? 0 : a.numel() / (m * k);
  const std::int64_t b_batch = n * k == 0 ? 0 : b.numel() / (n * k);
  return std::max(a_batch, b_batch) * m * n * k;
}
}  // namespace

torch::Tensor precise_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  return float32_accumulated(a, matmul_multiply_adds(a, b), [&](auto operand) {
    return torch::matmul(operand(a), operand(b));
  });
}

namespace {

// softmax(q k^T * scale + mask) v for one block of query rows.
torch::Tensor attention_rows(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& mask, double scale) {
  const auto batch = q.size(0), heads = q.size(1), len = q.size(2), dim = q.size(3);
  const auto kv_heads = k.size(1), total = k.size(2), group = heads / kv_heads;
  // GQA without copying the keys and values per query head (transformers' repeat_kv): the `group` query heads
  // that share a KV head are stacked along the query axis, [B, H_kv, group * L, D], and multiply that head's keys
  // and values directly. Query head h uses KV head h / group, as in repeat_kv.
  auto grouped = q.reshape({batch, kv_heads, group * len, dim});
  auto weights = precise_matmul(grouped, k.transpose(2, 3)) * scale;  // [B, H_kv, group * L, S]
  if (mask.defined()) {
    weights = (weights.view({batch, kv_heads, group, len, total}) + mask.unsqueeze(1))
                  .view({batch, kv_heads, group * len, total});
  }
  weights = torch::softmax(weights, -1, torch::kFloat).to(q.scalar_type());
  auto out = precise_matmul(weights, v).view({batch, heads, len, dim});  // [B, H, L, D]
  return out.transpose(1, 2).reshape({batch, len, heads * dim});
}

// The score matrix of one block of query rows stays under this size. A long prompt's full [B, H, L, S] scores
// would take L/S-quadratic memory (14 heads x 4096^2 in float32: 940 MB); and blocks below glibc's mmap threshold
// are reused from the heap instead of being mapped and zero-filled anew for every layer (a Qwen2-VL image of 1024
// patches has 64 MB of scores per vision block).
constexpr std::int64_t kScoreBlockBytes = 16 << 20;

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, double scale) {
  const auto len = q.size(2);
  const auto row_bytes = q.size(0) * q.size(1) * k.size(2) * static_cast<std::int64_t>(sizeof(float));
  const auto rows = std::max<std::int64_t>(1, kScoreBlockBytes / std::max<std::int64_t>(1, row_bytes));
  if (len <= rows) return attention_rows(q, k, v, mask, scale);
  std::vector<torch::Tensor> blocks;
  for (std::int64_t start = 0; start < len; start += rows) {
    const auto n = std::min(rows, len - start);
    blocks.push_back(attention_rows(q.narrow(2, start, n), k, v, mask.defined() ? mask.narrow(2, start, n) : mask,
                                    scale));
  }
  return torch::cat(blocks, 1);
}

// ---------------------------------------------------------------------------------------------------------------
GatedMLPImpl::GatedMLPImpl(std::int64_t hidden, std::int64_t intermediate, bool bias, const std::string& act)
    : act_name_(act), act_(activation_by_name(act, "hidden_act")) {
  gate_proj = register_module("gate_proj", Projection(hidden, intermediate, bias));
  up_proj = register_module("up_proj", Projection(hidden, intermediate, bias));
  down_proj = register_module("down_proj", Projection(intermediate, hidden, bias));
}

torch::Tensor GatedMLPImpl::forward(const torch::Tensor& x) {
  return down_proj(act_(gate_proj(x)) * up_proj(x));
}

// ---------------------------------------------------------------------------------------------------------------
DecoderLayerImpl::AttentionImpl::AttentionImpl(const DecoderConfig& c) {
  q_proj = register_module("q_proj", Projection(c.hidden_size, c.num_heads * c.head_dim, c.qkv_bias));
  k_proj = register_module("k_proj", Projection(c.hidden_size, c.num_kv_heads * c.head_dim, c.qkv_bias));
  v_proj = register_module("v_proj", Projection(c.hidden_size, c.num_kv_heads * c.head_dim, c.qkv_bias));
  o_proj = register_module("o_proj", Projection(c.num_heads * c.head_dim, c.hidden_size, c.o_bias));
}

DecoderLayerImpl::DecoderLayerImpl(const DecoderConfig& config) : config_(config) {
  self_attn_ = register_module("self_attn", std::make_shared<AttentionImpl>(config));
  mlp_ = register_module("mlp", GatedMLP(config.hidden_size, config.intermediate_size, config.mlp_bias,
                                         config.hidden_act));
  input_layernorm_ = register_module("input_layernorm", RMSNorm(config.hidden_size, config.rms_norm_eps));
  post_attention_layernorm_ =
      register_module("post_attention_layernorm", RMSNorm(config.hidden_size, config.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const CosSin& rope, const torch::Tensor& mask,
                                        KVCache* cache, std::int64_t layer_index) {
  const auto batch = x.size(0), len = x.size(1), head_dim = config_.head_dim;
  auto h = input_layernorm_(x);
  auto q = self_attn_->q_proj(h).view({batch, len, -1, head_dim}).transpose(1, 2);
  auto k = self_attn_->k_proj(h).view({batch, len, -1, head_dim}).transpose(1, 2);
  auto v = self_attn_->v_proj(h).view({batch, len, -1, head_dim}).transpose(1, 2);
  apply_rotary(q, k, rope);
  if (cache) std::tie(k, v) = cache->append(layer_index, k, v);
  auto attended = attention(q, k, v, mask, 1.0 / std::sqrt(static_cast<double>(head_dim)));
  auto out = x + self_attn_->o_proj(attended);
  return out + mlp_(post_attention_layernorm_(out));
}

DecoderImpl::DecoderImpl(const DecoderConfig& config) : config_(config) {
  embed_tokens = register_module(
      "embed_tokens", torch::nn::Embedding(torch::nn::EmbeddingOptions(config.vocab_size, config.hidden_size)));
  embed_tokens->weight.set_requires_grad(false);
  auto layers = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < config.num_layers; ++i) {
    layers_.push_back(DecoderLayer(config));
    layers->push_back(layers_.back());
  }
  norm_ = register_module("norm", RMSNorm(config.hidden_size, config.rms_norm_eps));
}

torch::Tensor DecoderImpl::embed(const torch::Tensor& input_ids) {
  const auto vocab = config_.vocab_size;
  if (input_ids.numel() > 0) {
    const auto lo = input_ids.min().item<std::int64_t>(), hi = input_ids.max().item<std::int64_t>();
    if (lo < 0 || hi >= vocab) {
      fail(ErrorCode::invalid_argument, "input_ids holds token id " + std::to_string(lo < 0 ? lo : hi) +
                                            " outside the vocabulary [0, " + std::to_string(vocab) +
                                            "); check that the tokenizer belongs to this model");
    }
  }
  return torch::embedding(embed_tokens->weight, input_ids.to(embed_tokens->weight.device()));
}

namespace {

// Activation checkpointing of one decoder layer: the forward runs without a graph and saves only its input; the
// backward re-runs the layer with grad on, from the same CPU RNG state (dropout), and back-propagates through it,
// which accumulates the parameters' gradients exactly as the stored-activation path would.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, DecoderLayerImpl* layer,
                               const CosSin* rope, const torch::Tensor* mask, std::int64_t index) {
    ctx->saved_data["layer"] = reinterpret_cast<std::int64_t>(layer);
    ctx->saved_data["rope_cos"] = rope->cos;
    ctx->saved_data["rope_sin"] = rope->sin;
    ctx->saved_data["mask"] = mask->defined() ? *mask : torch::Tensor();
    ctx->saved_data["index"] = index;
    auto generator = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      ctx->saved_data["rng"] = generator.get_state();
    }
    ctx->save_for_backward({x});
    torch::NoGradGuard no_grad;
    return layer->forward(x, *rope, *mask, nullptr, index);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    CosSin rope{ctx->saved_data["rope_cos"].toTensor(), ctx->saved_data["rope_sin"].toTensor()};
    auto mask = ctx->saved_data["mask"].toTensor();
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto generator = at::detail::getDefaultCPUGenerator();
    torch::Tensor current_rng;
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      current_rng = generator.get_state();
      generator.set_state(ctx->saved_data["rng"].toTensor());
    }
    torch::Tensor out;
    {
      torch::AutoGradMode grad_on(true);
      out = layer->forward(x, rope, mask, nullptr, ctx->saved_data["index"].toInt());
    }
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(current_rng);
    }
    torch::autograd::backward({out}, {grad_outputs[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor DecoderImpl::forward(const torch::Tensor& inputs_embeds, const CosSin& rope, const torch::Tensor& mask,
                                   KVCache* cache) {
  if (fused_decode_applies(inputs_embeds, rope, mask, cache)) return decode_step(inputs_embeds, rope, mask, *cache);
  auto h = inputs_embeds;
  const bool checkpoint = gradient_checkpointing && cache == nullptr && torch::GradMode::is_enabled();
  // A checkpointed layer joins the graph only through its input: when nothing before the decoder is trained the
  // embeddings must require grad themselves (what PEFT's enable_input_require_grads does).
  if (checkpoint && !h.requires_grad()) h = h.detach().requires_grad_(true);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const auto index = static_cast<std::int64_t>(i);
    h = checkpoint ? CheckpointedLayer::apply(h, layers_[i].get(), &rope, &mask, index)
                   : layers_[i](h, rope, mask, cache, index);
  }
  return norm_(h);
}

torch::Tensor text_positions(const torch::Tensor& attention_mask, std::int64_t batch, std::int64_t query_len,
                             std::int64_t past, torch::Device device) {
  if (attention_mask.defined()) {
    auto mask = attention_mask.to(device, torch::kLong);
    auto pos = mask.cumsum(-1) - 1;
    pos = pos.masked_fill(mask == 0, 1);
    return pos.narrow(1, pos.size(1) - query_len, query_len);
  }
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  return (torch::arange(query_len, opts) + past).unsqueeze(0).expand({batch, query_len});
}

}  // namespace vlm
