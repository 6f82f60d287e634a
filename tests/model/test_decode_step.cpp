// The fused decode step (model/decode_step.cpp) against the op-by-op decoder layers it replaces: float32,
// bfloat16 and float16, GQA, biases, left padding, head dims below and above one vector, activations other than
// SiLU, the Projection fallbacks (adapters, more rows than the few-row kernel takes), and the KV cache it writes.
// The op-by-op path itself is pinned to transformers by test_model_parity.cpp.
#include <torch/torch.h>

#include <cmath>

#include "model/layers.h"
#include "model/matvec.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;

namespace {

DecoderConfig tiny_config(std::int64_t head_dim, const std::string& act) {
  DecoderConfig c;
  c.vocab_size = 64;
  c.num_heads = 6;
  c.num_kv_heads = 2;
  c.head_dim = head_dim;
  c.hidden_size = 48;
  c.intermediate_size = 80;
  c.num_layers = 3;
  c.rms_norm_eps = 1e-6;
  c.qkv_bias = true;
  c.hidden_act = act;
  return c;
}

Decoder random_decoder(const DecoderConfig& config, torch::ScalarType dtype, std::uint64_t seed) {
  torch::manual_seed(seed);
  Decoder decoder(config);
  torch::NoGradGuard no_grad;
  for (auto& item : decoder->named_parameters()) {
    auto& p = item.value();
    if (item.key().find("norm") != std::string::npos) p.normal_(1.0, 0.2);
    else p.uniform_(-0.35, 0.35);
  }
  decoder->to(dtype);
  return decoder;
}

// A fixed linear delta, standing in for LoRA: makes the Projection take its tensor path in the fused step.
struct LinearDelta : ProjectionAdapter {
  torch::Tensor matrix;  // [in, out] float32
  explicit LinearDelta(torch::Tensor m) : matrix(std::move(m)) {}
  torch::Tensor delta(const torch::Tensor& x, const torch::Tensor&) override {
    return x.to(torch::kFloat).matmul(matrix);
  }
};

struct Run {
  torch::Tensor outputs;  // [B, steps, hidden] float32, the decode steps' hidden states
  torch::Tensor keys;     // layer 0's cached keys after the run, float32
  bool fused_applied = true;
};

// Prefill `prefix` tokens of `embeds` [B, L, hidden], then decode the rest one at a time.
Run run_decoder(Decoder& decoder, const torch::Tensor& embeds, const torch::Tensor& attention_mask,
                std::int64_t prefix, bool fused) {
  torch::NoGradGuard no_grad;
  const auto& c = decoder->config();
  const auto batch = embeds.size(0), len = embeds.size(1);
  const auto dtype = embeds.scalar_type();
  decoder->fused_decode = fused;
  auto inv_freq = rope_inv_freq(c.head_dim, 10000.0);
  KVCache cache(c.num_layers);
  auto positions = text_positions(attention_mask, batch, len, 0, torch::kCPU);
  auto prefill_mask = attention_mask.narrow(1, 0, prefix);
  decoder->forward(embeds.narrow(1, 0, prefix),
                   rope_cos_sin(inv_freq, positions.narrow(1, 0, prefix), dtype),
                   causal_mask(prefill_mask, batch, prefix, 0, dtype, torch::kCPU), &cache);
  Run run;
  std::vector<torch::Tensor> outputs;
  for (std::int64_t j = prefix; j < len; ++j) {
    auto rope = rope_cos_sin(inv_freq, positions.narrow(1, j, 1), dtype);
    auto mask = causal_mask(attention_mask.narrow(1, 0, j + 1), batch, 1, j, dtype, torch::kCPU);
    auto x = embeds.narrow(1, j, 1);
    run.fused_applied = run.fused_applied && decoder->fused_decode_applies(x, rope, mask, &cache);
    outputs.push_back(decoder->forward(x, rope, mask, &cache).to(torch::kFloat));
  }
  CHECK(cache.length() == len);
  run.outputs = torch::cat(outputs, 1);
  // Layer 0's keys, through the public append of an empty step (a view of everything cached).
  auto none = torch::empty({batch, c.num_kv_heads, 0, c.head_dim}, torch::TensorOptions().dtype(dtype));
  run.keys = cache.append(0, none, none).first.to(torch::kFloat);
  return run;
}

struct Inputs {
  torch::Tensor embeds, attention_mask;
};

// Row 0 unpadded, row 1 (and every odd row) with three left pads.
Inputs random_inputs(std::int64_t batch, std::int64_t len, std::int64_t hidden, torch::ScalarType dtype) {
  torch::manual_seed(7);
  Inputs in;
  in.embeds = torch::randn({batch, len, hidden}).to(dtype);
  in.attention_mask = torch::ones({batch, len}, torch::kLong);
  for (std::int64_t b = 1; b < batch; b += 2) in.attention_mask[b].narrow(0, 0, 3).fill_(0);
  return in;
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// Compares the fused and op-by-op runs of `decoder` in `dtype`.
// - float32: equal up to summation order.
// - float16 and bfloat16: every op-by-op matmul accumulates in float32 and rounds once (oneDNN for bfloat16 on
//   AVX-512 CPUs, layers.cpp's precise_matmul elsewhere), as the fused step does, and both round to the dtype at the
//   same points; so they agree almost everywhere (bit for bit on an AVX2 CPU), and the fused step is as close to
//   the float32 run as the op-by-op one.
void check_fused_equals_ops(const DecoderConfig& config, torch::ScalarType dtype, std::int64_t batch,
                            const std::string& label, bool with_adapters = false, std::int64_t len = 12) {
  auto decoder = random_decoder(config, dtype, 3);
  auto reference = random_decoder(config, torch::kFloat, 3);
  if (with_adapters) {
    for (Decoder* d : {&decoder, &reference}) {
      torch::manual_seed(11);
      for (auto& [path, projection] : set_projection_paths(**d)) {
        if (path == "layers.0.self_attn.q_proj" || path == "layers.2.mlp.down_proj") {
          projection->add_adapter(std::make_shared<LinearDelta>(
              0.05 * torch::randn({projection->in_features(), projection->out_features()})));
        }
      }
    }
  }
  const std::int64_t prefix = 5;
  auto in = random_inputs(batch, len, config.hidden_size, dtype);
  auto fused = run_decoder(decoder, in.embeds, in.attention_mask, prefix, true);
  auto ops = run_decoder(decoder, in.embeds, in.attention_mask, prefix, false);
  CHECK(fused.fused_applied);
  CHECK_FALSE(ops.fused_applied);

  const double diff = max_abs(fused.outputs - ops.outputs);
  const double key_diff = max_abs(fused.keys - ops.keys);
  const double range = max_abs(ops.outputs);
  INFO(label << ": |fused - op-by-op| " << diff << " (keys " << key_diff << "), output range " << range);
  if (dtype == torch::kFloat) {
    CHECK(diff < 1e-5 * std::max(1.0, range));
    CHECK(key_diff < 1e-5);
    return;
  }
  CHECK(key_diff == 0);
  auto wide = run_decoder(reference, in.embeds.to(torch::kFloat), in.attention_mask, prefix, false);
  const double ops_gap = max_abs(ops.outputs - wide.outputs);
  const double fused_gap = max_abs(fused.outputs - wide.outputs);
  auto rms = [](const torch::Tensor& t) { return t.pow(2).mean().sqrt().item<double>(); };
  const double ops_rms = rms(ops.outputs - wide.outputs), fused_rms = rms(fused.outputs - wide.outputs);
  const double same = (fused.outputs == ops.outputs).to(torch::kFloat).mean().item<double>();
  MESSAGE(label << ": |fused - op-by-op| " << diff << " (" << same * 100 << "% equal); to float32: fused max "
                << fused_gap << " rms " << fused_rms << ", op-by-op max " << ops_gap << " rms " << ops_rms);
  CHECK(diff <= 0.25 * ops_gap);
  CHECK(same >= 0.9);
  CHECK(fused_rms <= 1.1 * ops_rms);
  CHECK(fused_gap <= 1.25 * ops_gap);
}

}  // namespace

TEST_CASE("fused decode step equals the op-by-op layers in float32, bfloat16 and float16") {
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    for (std::int64_t head_dim : {8, 24}) {  // below one 16-lane vector, and one and a half
      for (std::int64_t batch : {1, 2}) {
        const std::string label = std::string(c10::toString(dtype)) + " head_dim " + std::to_string(head_dim) +
                                  " batch " + std::to_string(batch);
        check_fused_equals_ops(tiny_config(head_dim, "silu"), dtype, batch, label);
      }
    }
  }
}

TEST_CASE("fused decode step on every instruction set the CPU has (portable, AVX2, AVX-512, AVX-512 BF16)") {
  const auto best = kernel_isa();
  for (auto isa : {KernelIsa::portable, KernelIsa::avx2, KernelIsa::avx512, KernelIsa::avx512_bf16}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    CHECK(limit_kernel_isa(isa) == isa);
    for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
      check_fused_equals_ops(tiny_config(24, "silu"), dtype, 2,
                             std::string(kernel_isa_name(isa)) + " " + c10::toString(dtype));
    }
  }
  limit_kernel_isa(best);
}

TEST_CASE("fused decode step of 8 rows with a wide MLP, the few-row kernel's most rows") {
  // 8 rows: on AVX-512 BF16 two passes of 4 over each weight row; a gate width past the last whole 16 and 64.
  auto config = tiny_config(16, "silu");
  config.intermediate_size = 1101;
  const auto best = kernel_isa();
  for (auto isa : {KernelIsa::avx2, KernelIsa::avx512, KernelIsa::avx512_bf16}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    limit_kernel_isa(isa);
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      check_fused_equals_ops(config, dtype, 8, std::string(kernel_isa_name(isa)) + " " + c10::toString(dtype));
    }
  }
  limit_kernel_isa(best);
}

TEST_CASE("fused decode step over a longer past: attention scores in blocks of 16 keys and a tail") {
  // Decode steps from 6 to 43 cached positions: none, one and two whole blocks of 16, with and without a tail.
  // float16 is left out: its op-by-op and fused runs drift apart step by step (equal at 12 positions, in 50-100 %
  // of the outputs at 43 by head size, on AVX2 as on AVX-512; differences of 1-2 float16 steps), while both stay
  // equally close to float32. float16 keeps 3 more bits than bfloat16, so the two paths' float32 summation
  // orders flip its rounding more often, and each step's difference feeds the next through the cache.
  const auto best = kernel_isa();
  for (auto isa : {KernelIsa::avx2, KernelIsa::avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    limit_kernel_isa(isa);
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      for (std::int64_t head_dim : {8, 24, 64}) {
        check_fused_equals_ops(tiny_config(head_dim, "silu"), dtype, 2,
                               std::string(kernel_isa_name(isa)) + " " + c10::toString(dtype) + " head_dim " +
                                   std::to_string(head_dim) + ", 43 positions",
                               false, 43);
      }
    }
  }
  limit_kernel_isa(best);
}

TEST_CASE("fused decode step: other activations, MHA, no biases") {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (const char* act : {"gelu_pytorch_tanh", "gelu"}) {
      auto config = tiny_config(16, act);
      config.num_kv_heads = config.num_heads;
      config.qkv_bias = false;
      check_fused_equals_ops(config, dtype, 2, std::string(c10::toString(dtype)) + " " + act + " MHA");
    }
  }
}

TEST_CASE("fused decode step: Projection fallbacks (adapters; more rows than the few-row kernel takes)") {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    check_fused_equals_ops(tiny_config(16, "silu"), dtype, 2, std::string(c10::toString(dtype)) + " adapters",
                           /*with_adapters=*/true);
    const auto rows = few_row_linear_max_rows(dtype) + 1;
    check_fused_equals_ops(tiny_config(16, "silu"), dtype, rows,
                           std::string(c10::toString(dtype)) + " " + std::to_string(rows) + " rows");
  }
}

TEST_CASE("fused decode step applies only to inference decode steps on the CPU") {
  auto config = tiny_config(8, "silu");
  auto decoder = random_decoder(config, torch::kFloat, 5);
  KVCache cache(config.num_layers);
  auto inv_freq = rope_inv_freq(config.head_dim, 10000.0);
  auto rope = rope_cos_sin(inv_freq, torch::zeros({1, 1}, torch::kLong), torch::kFloat);
  auto x = torch::randn({1, 1, config.hidden_size});
  {
    torch::NoGradGuard no_grad;
    CHECK(decoder->fused_decode_applies(x, rope, torch::Tensor(), &cache));
    CHECK_FALSE(decoder->fused_decode_applies(x, rope, torch::Tensor(), nullptr));  // no cache: training, scoring
    auto two = torch::randn({1, 2, config.hidden_size});
    CHECK_FALSE(decoder->fused_decode_applies(two, rope_cos_sin(inv_freq, torch::zeros({1, 2}, torch::kLong),
                                                                 torch::kFloat),
                                              torch::Tensor(), &cache));  // a prefill
    CHECK_FALSE(decoder->fused_decode_applies(x.to(torch::kDouble), rope, torch::Tensor(), &cache));
    CHECK_FALSE(decoder->fused_decode_applies(x, rope, torch::zeros({1, 1, 1, 5}), &cache));  // mask != cache + 1
    decoder->fused_decode = false;
    CHECK_FALSE(decoder->fused_decode_applies(x, rope, torch::Tensor(), &cache));
  }
  decoder->fused_decode = true;
  CHECK_FALSE(decoder->fused_decode_applies(x, rope, torch::Tensor(), &cache));  // grad mode on
}
