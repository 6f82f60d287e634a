#include "model/qwen2_vl.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <regex>

#include "base/error.h"
#include "model/families.h"
#include "model/weights.h"

namespace vlm {

// ---------------------------------------------------------------------------------------------------------------
// Config

QwenVLConfig QwenVLConfig::parse(const ModelConfig& model_config) {
  const ConfigObject& raw = model_config.raw;
  QwenVLConfig c;
  c.model_type = model_config.model_type;
  const bool v25 = c.model_type == "qwen2_5_vl";

  // transformers 5 writes text_config; Hub checkpoints keep the LM keys at the top level.
  auto text_child = raw.child_optional("text_config");
  const ConfigObject text = text_child && text_child->has("hidden_size") ? *text_child : raw;
  auto& t = c.text;
  t.vocab_size = text.get<std::int64_t>("vocab_size");
  t.hidden_size = text.get<std::int64_t>("hidden_size");
  t.intermediate_size = text.get<std::int64_t>("intermediate_size");
  t.num_layers = text.get<std::int64_t>("num_hidden_layers");
  t.num_heads = text.get<std::int64_t>("num_attention_heads");
  t.num_kv_heads = text.get_or<std::int64_t>("num_key_value_heads", t.num_heads);
  t.rms_norm_eps = text.get_or<double>("rms_norm_eps", 1e-6);
  t.hidden_act = text.get_or<std::string>("hidden_act", "silu");
  t.qkv_bias = true;
  if (t.num_heads <= 0 || t.hidden_size % t.num_heads != 0 || t.num_kv_heads <= 0 || t.num_heads % t.num_kv_heads) {
    fail(ErrorCode::corrupt_data, text.describe("num_attention_heads") +
                                      ": hidden_size must be a multiple of num_attention_heads, and "
                                      "num_attention_heads a multiple of num_key_value_heads");
  }
  t.head_dim = t.hidden_size / t.num_heads;  // Qwen2-VL ignores any head_dim key
  if (text.get_or<bool>("use_sliding_window", false)) {
    fail(ErrorCode::unsupported, text.describe("use_sliding_window") +
                                     ": sliding-window attention is not supported (transformers' eager path "
                                     "ignores it as well); set it to false");
  }

  std::optional<ConfigObject> rope = text.child_optional("rope_parameters");
  if (!rope) rope = text.child_optional("rope_scaling");
  if (!rope && text_child) rope = raw.child_optional("rope_scaling");
  c.rope_theta = text.get_or<double>("rope_theta", raw.get_or<double>("rope_theta", 1e6));
  if (rope) {
    c.rope_theta = rope->get_or<double>("rope_theta", c.rope_theta);
    c.mrope_section = rope->get_or<std::vector<std::int64_t>>("mrope_section", c.mrope_section);
    const auto type = rope->get_or<std::string>("rope_type", rope->get_or<std::string>("type", "default"));
    if (type != "default" && type != "mrope") {
      fail(ErrorCode::unsupported, rope->describe("rope_type") + ": '" + type +
                                       "' is not supported for " + c.model_type + " (default / mrope)");
    }
  }
  const auto section_sum = std::accumulate(c.mrope_section.begin(), c.mrope_section.end(), std::int64_t{0});
  if (section_sum * 2 != t.head_dim) {
    fail(ErrorCode::corrupt_data, raw.file() + ": mrope_section sums to " + std::to_string(section_sum) +
                                      " but must be head_dim / 2 = " + std::to_string(t.head_dim / 2));
  }

  const ConfigObject vis = raw.child("vision_config");
  auto& v = c.vision;
  v.window_attention = v25;
  v.depth = vis.get_or<std::int64_t>("depth", 32);
  v.num_heads = vis.get_or<std::int64_t>("num_heads", 16);
  v.in_channels = vis.get_or<std::int64_t>("in_channels", vis.get_or<std::int64_t>("in_chans", 3));
  v.patch_size = vis.get_or<std::int64_t>("patch_size", 14);
  v.temporal_patch_size = vis.get_or<std::int64_t>("temporal_patch_size", 2);
  v.spatial_merge_size = vis.get_or<std::int64_t>("spatial_merge_size", 2);
  if (v25) {
    v.embed_dim = vis.get_or<std::int64_t>("hidden_size", 3584);
    v.out_hidden_size = vis.get_or<std::int64_t>("out_hidden_size", 3584);
    v.mlp_hidden = vis.get_or<std::int64_t>("intermediate_size", 3420);
    v.hidden_act = vis.get_or<std::string>("hidden_act", "silu");
    v.window_size = vis.get_or<std::int64_t>("window_size", 112);
    v.fullatt_block_indexes = vis.get_or<std::vector<std::int64_t>>("fullatt_block_indexes", {7, 15, 23, 31});
  } else {
    v.embed_dim = vis.get_or<std::int64_t>("embed_dim", 1280);
    v.out_hidden_size = vis.get_or<std::int64_t>("hidden_size", 3584);
    v.mlp_hidden = static_cast<std::int64_t>(static_cast<double>(v.embed_dim) * vis.get_or<double>("mlp_ratio", 4));
    v.hidden_act = vis.get_or<std::string>("hidden_act", "quick_gelu");
  }
  if (auto vrope = vis.child_optional("rope_parameters")) v.rope_theta = vrope->get_or<double>("rope_theta", 10000.0);
  if (v.num_heads <= 0 || v.embed_dim % v.num_heads != 0 || (v.embed_dim / v.num_heads) % 4 != 0) {
    fail(ErrorCode::corrupt_data, vis.describe("num_heads") +
                                      ": the vision head size (embed size / num_heads) must be a multiple of 4");
  }
  if (v.out_hidden_size != t.hidden_size) {
    fail(ErrorCode::corrupt_data, vis.describe(v25 ? "out_hidden_size" : "hidden_size") + " is " +
                                      std::to_string(v.out_hidden_size) + " but the language model's hidden_size is " +
                                      std::to_string(t.hidden_size));
  }

  c.image_token_id = raw.get_or<std::int64_t>("image_token_id", 151655);
  c.video_token_id = raw.get_or<std::int64_t>("video_token_id", 151656);
  c.vision_start_token_id = raw.get_or<std::int64_t>("vision_start_token_id", 151652);
  // The class default is False; pre-v5 saves may carry it inside text_config.
  c.tie_word_embeddings = raw.get_or<bool>("tie_word_embeddings", false) ||
                          (text_child && text_child->get_or<bool>("tie_word_embeddings", false));
  c.eos_token_ids = read_token_ids(text, "eos_token_id");
  if (c.eos_token_ids.empty()) c.eos_token_ids = read_token_ids(raw, "eos_token_id");
  c.bos_token_id = text.get_or<std::int64_t>("bos_token_id", raw.get_or<std::int64_t>("bos_token_id", -1));
  c.pad_token_id = text.get_or<std::int64_t>("pad_token_id", raw.get_or<std::int64_t>("pad_token_id", -1));
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Positions and windows

RopeIndex qwen_rope_index(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                          const torch::Tensor& image_grid_thw, std::int64_t image_token_id,
                          std::int64_t spatial_merge_size) {
  auto ids = input_ids.to(torch::kCPU, torch::kLong).contiguous();
  const auto batch = ids.size(0), len = ids.size(1);
  auto mask = attention_mask.defined() ? attention_mask.to(torch::kCPU, torch::kLong).contiguous()
                                       : torch::ones({batch, len}, torch::kLong);
  auto grids = image_grid_thw.defined() ? image_grid_thw.to(torch::kCPU, torch::kLong).contiguous()
                                        : torch::zeros({0, 3}, torch::kLong);
  const auto num_grids = grids.size(0);
  auto positions = torch::zeros({3, batch, len}, torch::kLong);
  auto deltas = torch::zeros({batch, 1}, torch::kLong);
  auto ida = ids.accessor<std::int64_t, 2>();
  auto ma = mask.accessor<std::int64_t, 2>();
  auto ga = grids.accessor<std::int64_t, 2>();
  auto pa = positions.accessor<std::int64_t, 3>();
  std::int64_t next_grid = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::vector<std::int64_t> real;  // columns of the non-padded tokens
    for (std::int64_t j = 0; j < len; ++j)
      if (ma[b][j] != 0) real.push_back(j);
    std::int64_t current = 0, max_pos = -1;
    auto put = [&](std::size_t k, std::int64_t t, std::int64_t h, std::int64_t w) {
      pa[0][b][real[k]] = t;
      pa[1][b][real[k]] = h;
      pa[2][b][real[k]] = w;
      max_pos = std::max({max_pos, t, h, w});
    };
    for (std::size_t k = 0; k < real.size();) {
      const bool image = ida[b][real[k]] == image_token_id;
      std::size_t end = k;
      while (end < real.size() && (ida[b][real[end]] == image_token_id) == image) ++end;
      const auto run = static_cast<std::int64_t>(end - k);
      if (!image) {
        for (std::int64_t i = 0; i < run; ++i) put(k + i, current + i, current + i, current + i);
        current += run;
      } else {
        if (next_grid >= num_grids) {
          fail(ErrorCode::invalid_argument, "input_ids row " + std::to_string(b) +
                                                " holds more image runs than image_grid_thw has rows (" +
                                                std::to_string(num_grids) + ")");
        }
        const auto gt = ga[next_grid][0], gh = ga[next_grid][1] / spatial_merge_size,
                   gw = ga[next_grid][2] / spatial_merge_size;
        if (gt * gh * gw != run) {
          fail(ErrorCode::invalid_argument,
               "input_ids row " + std::to_string(b) + ": an image run has " + std::to_string(run) +
                   " image tokens but image_grid_thw row " + std::to_string(next_grid) + " needs " +
                   std::to_string(gt * gh * gw) + "; build the prompt with the model's processor");
        }
        std::size_t i = k;
        for (std::int64_t ti = 0; ti < gt; ++ti)
          for (std::int64_t hi = 0; hi < gh; ++hi)
            for (std::int64_t wi = 0; wi < gw; ++wi) put(i++, ti + current, hi + current, wi + current);
        current += std::max(ga[next_grid][1], ga[next_grid][2]) / spatial_merge_size;
        ++next_grid;
      }
      k = end;
    }
    deltas[b][0] = max_pos + 1 - static_cast<std::int64_t>(real.size());
  }
  if (next_grid != num_grids) {
    fail(ErrorCode::invalid_argument, "image_grid_thw has " + std::to_string(num_grids) +
                                          " rows but input_ids holds " + std::to_string(next_grid) + " image runs");
  }
  return {positions.to(input_ids.device()), deltas.to(input_ids.device())};
}

WindowIndex qwen_window_index(const torch::Tensor& grid_thw, std::int64_t merge, std::int64_t window_size,
                              std::int64_t patch_size) {
  auto grids = grid_thw.to(torch::kCPU, torch::kLong).contiguous();
  const std::int64_t window = window_size / merge / patch_size;
  if (window <= 0) {
    fail(ErrorCode::corrupt_data, "vision_config.window_size " + std::to_string(window_size) +
                                      " is smaller than spatial_merge_size * patch_size");
  }
  const std::int64_t unit = merge * merge;
  std::vector<torch::Tensor> indices;
  std::vector<std::int64_t> cu{0};
  std::int64_t offset = 0;
  for (std::int64_t i = 0; i < grids.size(0); ++i) {
    const auto t = grids[i][0].item<std::int64_t>(), h = grids[i][1].item<std::int64_t>() / merge,
               w = grids[i][2].item<std::int64_t>() / merge;
    auto index = torch::arange(t * h * w, torch::kLong).reshape({t, h, w});
    const auto pad_h = window - h % window, pad_w = window - w % window;
    const auto nh = (h + pad_h) / window, nw = (w + pad_w) / window;
    auto padded = torch::constant_pad_nd(index, {0, pad_w, 0, pad_h}, -100);
    padded = padded.reshape({t, nh, window, nw, window}).permute({0, 1, 3, 2, 4}).reshape({t, nh * nw, window, window});
    auto seqlens = (padded != -100).sum({2, 3}).reshape({-1});
    auto flat = padded.reshape({-1});
    indices.push_back(flat.masked_select(flat != -100) + offset);
    auto cum = seqlens.cumsum(0) * unit + cu.back();
    for (std::int64_t k = 0; k < cum.size(0); ++k) cu.push_back(cum[k].item<std::int64_t>());
    offset += t * h * w;
  }
  std::vector<std::int64_t> unique{cu[0]};
  for (std::size_t k = 1; k < cu.size(); ++k)
    if (cu[k] != unique.back()) unique.push_back(cu[k]);
  return {torch::cat(indices), torch::tensor(unique, torch::kLong)};
}

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Vision tower

// Norm that is LayerNorm (Qwen2-VL) or RMSNorm (Qwen2.5-VL), registered under the caller's name.
struct VisionNorm {
  LayerNorm layer{nullptr};
  RMSNorm rms{nullptr};
  void create(torch::nn::Module& parent, const std::string& name, std::int64_t dim, bool use_rms) {
    if (use_rms) rms = parent.register_module(name, RMSNorm(dim, 1e-6));
    else layer = parent.register_module(name, LayerNorm(dim, 1e-6));
  }
  torch::Tensor operator()(const torch::Tensor& x) { return rms ? rms(x) : layer(x); }
};

struct VisionAttentionImpl : torch::nn::Module {
  Projection qkv{nullptr}, proj{nullptr};
  std::int64_t heads;
  explicit VisionAttentionImpl(const QwenVisionConfig& c) : heads(c.num_heads) {
    qkv = register_module("qkv", Projection(c.embed_dim, 3 * c.embed_dim, true));
    proj = register_module("proj", Projection(c.embed_dim, c.embed_dim, true));
  }
  torch::Tensor forward(const torch::Tensor& x, const std::vector<std::int64_t>& cu_seqlens, const CosSin& rope) {
    const auto n = x.size(0);
    auto qkv_out = qkv(x).reshape({n, 3, heads, -1}).permute({1, 0, 2, 3});  // [3, N, H, D]
    auto q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
    // Rotary in float32, cast back (apply_rotary_pos_emb_vision).
    auto cos = rope.cos.unsqueeze(-2), sin = rope.sin.unsqueeze(-2);
    auto qf = q.to(torch::kFloat), kf = k.to(torch::kFloat);
    q = (qf * cos + rotate_half(qf) * sin).to(x.scalar_type());
    k = (kf * cos + rotate_half(kf) * sin).to(x.scalar_type());
    q = q.transpose(0, 1).unsqueeze(0);  // [1, H, N, D]
    k = k.transpose(0, 1).unsqueeze(0);
    v = v.transpose(0, 1).unsqueeze(0);
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    std::vector<torch::Tensor> outputs;
    for (std::size_t i = 1; i < cu_seqlens.size(); ++i) {
      const auto start = cu_seqlens[i - 1], length = cu_seqlens[i] - cu_seqlens[i - 1];
      outputs.push_back(attention(q.narrow(2, start, length), k.narrow(2, start, length), v.narrow(2, start, length),
                                  torch::Tensor(), scale));
    }
    return proj(torch::cat(outputs, 1).reshape({n, -1}));
  }
};
TORCH_MODULE(VisionAttention);

struct VisionMlpImpl : torch::nn::Module {  // Qwen2-VL: fc2(act(fc1(x)))
  Projection fc1{nullptr}, fc2{nullptr};
  Activation act;
  VisionMlpImpl(std::int64_t dim, std::int64_t hidden, const std::string& act_name)
      : act(activation_by_name(act_name, "vision_config.hidden_act")) {
    fc1 = register_module("fc1", Projection(dim, hidden, true));
    fc2 = register_module("fc2", Projection(hidden, dim, true));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(act(fc1(x))); }
};
TORCH_MODULE(VisionMlp);

struct VisionBlockImpl : torch::nn::Module {
  VisionNorm norm1, norm2;
  VisionAttention attn{nullptr};
  VisionMlp mlp{nullptr};
  GatedMLP gated_mlp{nullptr};
  explicit VisionBlockImpl(const QwenVisionConfig& c) {
    norm1.create(*this, "norm1", c.embed_dim, c.window_attention);
    norm2.create(*this, "norm2", c.embed_dim, c.window_attention);
    attn = register_module("attn", VisionAttention(c));
    if (c.window_attention) gated_mlp = register_module("mlp", GatedMLP(c.embed_dim, c.mlp_hidden, true, c.hidden_act));
    else mlp = register_module("mlp", VisionMlp(c.embed_dim, c.mlp_hidden, c.hidden_act));
  }
  torch::Tensor forward(const torch::Tensor& x, const std::vector<std::int64_t>& cu_seqlens, const CosSin& rope) {
    auto h = x + attn(norm1(x), cu_seqlens, rope);
    auto normed = norm2(h);
    return h + (gated_mlp ? gated_mlp(normed) : mlp(normed));
  }
};
TORCH_MODULE(VisionBlock);

struct PatchEmbedImpl : torch::nn::Module {
  torch::Tensor weight;  // "proj.weight" [E, C, T, P, P]: the Conv3d, applied as one matmul per patch
  explicit PatchEmbedImpl(const QwenVisionConfig& c) {
    auto proj = register_module("proj", std::make_shared<torch::nn::Module>());
    weight = proj->register_parameter(
        "weight", torch::empty({c.embed_dim, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size}),
        false);
  }
};
TORCH_MODULE(PatchEmbed);

struct MergerImpl : torch::nn::Module {
  VisionNorm ln_q;
  Projection fc0{nullptr}, fc2{nullptr};
  std::int64_t merged_dim;
  explicit MergerImpl(const QwenVisionConfig& c) : merged_dim(c.embed_dim * c.spatial_merge_size * c.spatial_merge_size) {
    ln_q.create(*this, "ln_q", c.embed_dim, c.window_attention);
    auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    fc0 = mlp->register_module("0", Projection(merged_dim, merged_dim, true));
    fc2 = mlp->register_module("2", Projection(merged_dim, c.out_hidden_size, true));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(gelu(fc0(ln_q(x).view({-1, merged_dim})))); }
  Activation gelu = activation_by_name("gelu", "merger");
};
TORCH_MODULE(Merger);

std::vector<std::int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kLong).contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}

struct VisionTowerImpl : torch::nn::Module {
  QwenVisionConfig config;
  PatchEmbed patch_embed{nullptr};
  std::vector<VisionBlock> blocks;
  Merger merger{nullptr};

  explicit VisionTowerImpl(const QwenVisionConfig& c) : config(c) {
    patch_embed = register_module("patch_embed", PatchEmbed(c));
    auto list = register_module("blocks", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.depth; ++i) {
      blocks.push_back(VisionBlock(c));
      list->push_back(blocks.back());
    }
    merger = register_module("merger", Merger(c));
  }

  // pixel_values [num_patches, C*T*P*P], grid_thw [num_images, 3] -> merged features [num_patches / merge^2, D].
  torch::Tensor forward(const torch::Tensor& pixel_values, const torch::Tensor& grid_thw) {
    const auto& c = config;
    const auto patch_values = c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size;
    const auto unit = c.spatial_merge_size * c.spatial_merge_size;
    if (!grid_thw.defined() || grid_thw.dim() != 2 || grid_thw.size(1) != 3) {
      fail(ErrorCode::invalid_argument, "image_grid_thw must be [num_images, 3] (t, h, w) next to pixel_values");
    }
    auto grid = grid_thw.to(torch::kCPU, torch::kLong);
    std::vector<std::int64_t> cu{0};
    for (std::int64_t i = 0; i < grid.size(0); ++i) {
      const auto t = grid[i][0].item<std::int64_t>(), h = grid[i][1].item<std::int64_t>(),
                 w = grid[i][2].item<std::int64_t>();
      if (t <= 0 || h <= 0 || w <= 0 || h % c.spatial_merge_size || w % c.spatial_merge_size) {
        fail(ErrorCode::invalid_argument, "image_grid_thw row " + std::to_string(i) +
                                              " must be positive with h and w multiples of spatial_merge_size " +
                                              std::to_string(c.spatial_merge_size));
      }
      for (std::int64_t k = 0; k < t; ++k) cu.push_back(cu.back() + h * w);
    }
    const auto patches = cu.back();
    if (pixel_values.dim() != 2 || pixel_values.size(0) != patches || pixel_values.size(1) != patch_values) {
      fail(ErrorCode::invalid_argument, "pixel_values has shape " + c10::str(pixel_values.sizes()) + ", expected [" +
                                            std::to_string(patches) + ", " + std::to_string(patch_values) +
                                            "] for image_grid_thw (patches x C*T*P*P)");
    }
    auto weight = patch_embed->weight;
    auto x = precise_matmul(pixel_values.to(weight.device(), weight.scalar_type()), weight.view({weight.size(0), -1}).t());
    auto rope = vision_rotary_cos_sin(grid, c.embed_dim / c.num_heads, c.spatial_merge_size, c.rope_theta);
    rope.cos = rope.cos.to(x.device());
    rope.sin = rope.sin.to(x.device());

    std::vector<std::int64_t> cu_window;
    torch::Tensor window_index;
    auto permute = [&](const torch::Tensor& t) {
      return t.reshape({patches / unit, unit, -1}).index_select(0, window_index).reshape({patches, -1});
    };
    if (c.window_attention) {
      auto windows = qwen_window_index(grid, c.spatial_merge_size, c.window_size, c.patch_size);
      window_index = windows.window_index.to(x.device());
      cu_window = to_vector(windows.cu_window_seqlens);
      x = permute(x);
      rope.cos = permute(rope.cos);
      rope.sin = permute(rope.sin);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const bool full = !c.window_attention ||
                        std::find(c.fullatt_block_indexes.begin(), c.fullatt_block_indexes.end(),
                                  static_cast<std::int64_t>(i)) != c.fullatt_block_indexes.end();
      x = blocks[i](x, full ? cu : cu_window, rope);
    }
    auto merged = merger(x);
    if (c.window_attention) merged = merged.index_select(0, torch::argsort(window_index));
    return merged;
  }
};
TORCH_MODULE(VisionTower);

// ---------------------------------------------------------------------------------------------------------------
// The model

struct QwenVLState : InferenceState {
  KVCache cache;
  torch::Tensor rope_deltas;  // [B, 1], set at prefill
  explicit QwenVLState(std::int64_t layers) : cache(layers) {}
  std::int64_t length() const override { return cache.length(); }
  void reorder(const torch::Tensor& indices) override {
    cache.reorder(indices);
    if (rope_deltas.defined()) rope_deltas = rope_deltas.index_select(0, indices.to(rope_deltas.device(), torch::kLong));
  }
};

struct QwenVLRootImpl : torch::nn::Module {
  VisionTower visual{nullptr};
  Decoder language_model{nullptr};
  Projection lm_head{nullptr};
  explicit QwenVLRootImpl(const QwenVLConfig& c) {
    auto model = register_module("model", std::make_shared<torch::nn::Module>());
    visual = model->register_module("visual", VisionTower(c.vision));
    language_model = model->register_module("language_model", Decoder(c.text));
    lm_head = register_module("lm_head", Projection(c.text.hidden_size, c.text.vocab_size, false));
  }
};
TORCH_MODULE(QwenVLRoot);

// Hub checkpoints: visual.* and model.* (LM); transformers >= 4.52: model.visual.*, model.language_model.*.
std::string to_module_key(const std::string& key) {
  static const std::string kVisual = "visual.", kModel = "model.";
  if (key.compare(0, kVisual.size(), kVisual) == 0) return "model." + key;
  if (key.compare(0, kModel.size(), kModel) == 0) {
    const auto rest = key.substr(kModel.size());
    if (rest.rfind("language_model.", 0) != 0 && rest.rfind("visual.", 0) != 0) return "model.language_model." + rest;
  }
  return key;
}

class QwenVLModel : public VisionLanguageModel {
 public:
  QwenVLModel(QwenVLConfig config, const Checkpoint& checkpoint, const LoadOptions& options)
      : config_(std::move(config)), root_(config_), dtype_(options.dtype), device_(options.device) {
    root_->eval();
    WeightLoadPlan plan;
    plan.dtype = dtype_;
    plan.device = device_;
    plan.family = config_.model_type;
    plan.rename = to_module_key;
    if (config_.tie_word_embeddings) plan.tied["lm_head.weight"] = "model.language_model.embed_tokens.weight";
    load_weights(*root_, checkpoint, plan);
    set_projection_paths(*root_);
    inv_freq_ = rope_inv_freq(config_.text.head_dim, config_.rope_theta).to(device_);
    info_.family = config_.model_type;
    info_.vocab_size = config_.text.vocab_size;
    info_.num_layers = config_.text.num_layers;
    info_.image_token_id = config_.image_token_id;
    info_.eos_token_ids = config_.eos_token_ids;
    info_.pad_token_id = config_.pad_token_id;
    info_.bos_token_id = config_.bos_token_id;
    info_.language_model_prefix = "model.language_model.";
    info_.vision_tower_prefix = "model.visual.";
    info_.projector_prefix = "model.visual.merger.";
  }

  const ModelInfo& info() const override { return info_; }
  torch::Device device() const override { return device_; }
  torch::ScalarType dtype() const override { return dtype_; }
  std::unique_ptr<InferenceState> new_state(std::int64_t) override {
    return std::make_unique<QwenVLState>(config_.text.num_layers);
  }

  torch::nn::Module& module() override { return *root_; }
  std::string canonical_module_path(const std::string& path) const override { return to_module_key(path); }
  void set_gradient_checkpointing(bool enabled) override { root_->language_model->gradient_checkpointing = enabled; }

  torch::Tensor forward(const ForwardInputs& inputs, InferenceState* state_base) override {
    QwenVLState* state = state_cast<QwenVLState>(state_base);
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
    auto embeds = lm->embed(ids);

    const bool has_images = !inputs.vision.empty();
    if (has_images) {
      if (past > 0) fail(ErrorCode::invalid_argument, "forward: images can only be passed at prefill (empty state)");
      auto features = inputs.vision.features.defined() ? inputs.vision.features : encode_images(inputs.vision);
      auto image_mask = ids == config_.image_token_id;
      const auto tokens = image_mask.sum().item<std::int64_t>();
      if (tokens != features.size(0)) {
        fail(ErrorCode::invalid_argument,
             "forward: input_ids hold " + std::to_string(tokens) + " image tokens (id " +
                 std::to_string(config_.image_token_id) + ") but the images give " + std::to_string(features.size(0)) +
                 " features; each image needs t*h*w/" +
                 std::to_string(config_.vision.spatial_merge_size * config_.vision.spatial_merge_size) + " tokens");
      }
      embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), features.to(embeds.scalar_type()));
    }

    torch::Tensor positions;  // [3, B, L]
    if (past == 0) {
      torch::Tensor deltas;
      if (has_images) {
        auto index = qwen_rope_index(ids, inputs.attention_mask, inputs.vision.image_grid_thw, config_.image_token_id,
                                     config_.vision.spatial_merge_size);
        positions = index.position_ids.to(device_);
        deltas = index.rope_deltas.to(device_);
      } else {
        positions = text_positions(inputs.attention_mask, batch, len, 0, device_).unsqueeze(0).expand({3, batch, len});
        deltas = torch::zeros({batch, 1}, torch::TensorOptions().dtype(torch::kLong).device(device_));
      }
      if (state) state->rope_deltas = deltas;
    } else {
      auto base = text_positions(inputs.attention_mask, batch, len, past, device_);
      positions = (base + state->rope_deltas).unsqueeze(0).expand({3, batch, len});
    }
    auto rope = mrope_cos_sin(inv_freq_, positions, config_.mrope_section, dtype_);
    torch::Tensor mask;
    if (inputs.attention_mask.defined() || len > 1) mask = causal_mask(inputs.attention_mask, batch, len, past, dtype_, device_);
    auto hidden = lm(embeds, rope, mask, state ? &state->cache : nullptr);
    return root_->lm_head(rows_for_logits(hidden, inputs)).to(torch::kFloat);
  }

  torch::Tensor encode_images(const VisionInputs& vision) override {
    return root_->visual(vision.pixel_values, vision.image_grid_thw);
  }

 private:
  QwenVLConfig config_;
  QwenVLRoot root_;
  torch::ScalarType dtype_;
  torch::Device device_;
  torch::Tensor inv_freq_;
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<VisionLanguageModel> create_qwen2_vl(const ModelConfig& config, const Checkpoint& checkpoint,
                                                     const LoadOptions& options) {
  return std::make_unique<QwenVLModel>(QwenVLConfig::parse(config), checkpoint, options);
}

}  // namespace vlm
