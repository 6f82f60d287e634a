// Building blocks on hand-checked values: M-RoPE positions, the Qwen2.5-VL window index, masks, the KV cache,
// norms, activations and the projection choke point.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <vector>

#include "model/layers.h"
#include "model/qwen2_vl.h"
#include "test_util.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;

namespace {
std::vector<std::int64_t> values(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}
}  // namespace

TEST_CASE("qwen_rope_index: text, one image of grid (1, 4, 6), text; left padding keeps zeros") {
  const std::int64_t I = 9;  // image token
  // pad pad | t t S I I I I I I E t
  auto ids = torch::tensor(std::vector<std::int64_t>{0, 0, 5, 6, 7, I, I, I, I, I, I, 8, 5}).unsqueeze(0);
  auto mask = torch::tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, torch::kLong).unsqueeze(0);
  auto grid = torch::tensor({1, 4, 6}, torch::kLong).unsqueeze(0);
  auto index = qwen_rope_index(ids, mask, grid, I, 2);
  // Text 0,1,2; image at offset 3: t = 3, h = 3 + {0,1}, w = 3 + {0,1,2}; next text starts at 3 + max(4,6)/2 = 6.
  CHECK(values(index.position_ids[0][0]) == std::vector<std::int64_t>{0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7});
  CHECK(values(index.position_ids[1][0]) == std::vector<std::int64_t>{0, 0, 0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7});
  CHECK(values(index.position_ids[2][0]) == std::vector<std::int64_t>{0, 0, 0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7});
  // max 7 + 1 - 11 real tokens
  CHECK(index.rope_deltas[0][0].item<std::int64_t>() == -3);
}

TEST_CASE("qwen_rope_index: image token count and grid rows must agree") {
  const std::int64_t I = 9;
  auto ids = torch::tensor(std::vector<std::int64_t>{5, I, I, I, 8}).unsqueeze(0);
  auto grid = torch::tensor({1, 4, 4}, torch::kLong).unsqueeze(0);
  test::expect_error([&] { qwen_rope_index(ids, torch::Tensor(), grid, I, 2); }, ErrorCode::invalid_argument,
                     {"3 image tokens", "needs 4"});
  auto two_grids = torch::tensor({{1, 2, 2}, {1, 2, 2}}, torch::kLong);
  auto one_image = torch::tensor(std::vector<std::int64_t>{5, I, 8}).unsqueeze(0);
  test::expect_error([&] { qwen_rope_index(one_image, torch::Tensor(), two_grids, I, 2); },
                     ErrorCode::invalid_argument, {"2 rows", "1 image runs"});
}

TEST_CASE("qwen_window_index: grid (1, 4, 6), window of 2 merged units, padding and empty windows") {
  // merged grid 2x3: [[0,1,2],[3,4,5]]; windows 2x2: {0,1,3,4}, {2,5}, then two empty windows (h divides evenly).
  auto w = qwen_window_index(torch::tensor({1, 4, 6}, torch::kLong).unsqueeze(0), 2, 16, 4);
  CHECK(values(w.window_index) == std::vector<std::int64_t>{0, 1, 3, 4, 2, 5});
  CHECK(values(w.cu_window_seqlens) == std::vector<std::int64_t>{0, 16, 24});
  // Two images: the second one's indices continue after the first's 6 units.
  auto two = qwen_window_index(torch::tensor({{1, 4, 6}, {1, 4, 4}}, torch::kLong), 2, 16, 4);
  CHECK(values(two.window_index) == std::vector<std::int64_t>{0, 1, 3, 4, 2, 5, 6, 7, 8, 9});
  CHECK(values(two.cu_window_seqlens) == std::vector<std::int64_t>{0, 16, 24, 40});
}

TEST_CASE("causal_mask: causal, padding and cached prefix") {
  auto mask = torch::tensor({{0, 1, 1}}, torch::kLong);
  auto m = causal_mask(mask, 1, 3, 0, torch::kFloat, torch::kCPU);
  REQUIRE((m.sizes() == torch::IntArrayRef({1, 1, 3, 3})));
  const float lo = std::numeric_limits<float>::lowest();
  auto expected = torch::tensor({{lo, lo, lo}, {lo, 0.f, lo}, {lo, 0.f, 0.f}});
  CHECK(torch::equal(m[0][0], expected));
  // A decode step after 2 cached tokens sees all 3 keys except padding.
  auto step = causal_mask(mask, 1, 1, 2, torch::kFloat, torch::kCPU);
  CHECK(torch::equal(step[0][0][0], torch::tensor({lo, 0.f, 0.f})));
  test::expect_error([&] { causal_mask(mask, 1, 1, 0, torch::kFloat, torch::kCPU); }, ErrorCode::invalid_argument,
                     {"attention_mask has shape", "[1, 1]"});
}

TEST_CASE("KVCache grows past its first buffer and equals concatenation; reorder selects rows") {
  KVCache cache(2);
  torch::manual_seed(0);
  std::vector<torch::Tensor> ks, vs;
  for (int step = 0; step < 70; ++step) {
    const std::int64_t len = step == 0 ? 5 : 1;
    auto k = torch::randn({2, 1, len, 4}), v = torch::randn({2, 1, len, 4});
    ks.push_back(k);
    vs.push_back(v);
    auto [all_k, all_v] = cache.append(0, k, v);
    cache.append(1, k, v);
    CHECK(torch::equal(all_k, torch::cat(ks, 2)));
    CHECK(torch::equal(all_v, torch::cat(vs, 2)));
  }
  CHECK(cache.length() == 74);
  CHECK(cache.batch_size() == 2);
  cache.reorder(torch::tensor({1, 1, 0}, torch::kLong));
  CHECK(cache.batch_size() == 3);
  auto [k, v] = cache.append(0, torch::zeros({3, 1, 1, 4}), torch::zeros({3, 1, 1, 4}));
  auto full = torch::cat(ks, 2);
  CHECK(torch::equal(k.narrow(2, 0, 74)[0], full[1]));
  CHECK(torch::equal(k.narrow(2, 0, 74)[2], full[0]));
  cache.clear();
  CHECK(cache.length() == 0);
}

TEST_CASE("RMSNorm computes in float32 and multiplies by the weight in the input dtype") {
  RMSNorm norm(4, 1e-6);
  norm->weight.copy_(torch::tensor({1.f, 2.f, 0.5f, 1.f}));
  auto x = torch::tensor({{1.f, 2.f, 3.f, 4.f}});
  auto y = norm(x);
  const double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
  CHECK(y[0][1].item<double>() == doctest::Approx(2 * 2 / rms).epsilon(1e-6));
  CHECK(y[0][2].item<double>() == doctest::Approx(0.5 * 3 / rms).epsilon(1e-6));
}

TEST_CASE("activations by Hugging Face name") {
  auto x = torch::tensor({-1.0, 0.5, 2.0}, torch::kDouble);
  auto quick = activation_by_name("quick_gelu", "t")(x);
  CHECK(quick[2].item<double>() == doctest::Approx(2.0 / (1 + std::exp(-1.702 * 2.0))));
  auto gelu = activation_by_name("gelu", "t")(x);
  CHECK(gelu[1].item<double>() == doctest::Approx(0.5 * 0.5 * (1 + std::erf(0.5 / std::sqrt(2.0)))));
  auto tanh_gelu = activation_by_name("gelu_pytorch_tanh", "t")(x);
  const double inner = std::sqrt(2 / M_PI) * (2.0 + 0.044715 * 8.0);
  CHECK(tanh_gelu[2].item<double>() == doctest::Approx(0.5 * 2.0 * (1 + std::tanh(inner))));
  auto silu = activation_by_name("silu", "t")(x);
  CHECK(silu[0].item<double>() == doctest::Approx(-1.0 / (1 + std::exp(1.0))));
  test::expect_error([] { activation_by_name("swiglu9", "text_config.hidden_act"); }, ErrorCode::unsupported,
                     {"text_config.hidden_act", "swiglu9", "quick_gelu"});
}

TEST_CASE("rotary: inv_freq, rotate_half and M-RoPE section selection") {
  auto inv = rope_inv_freq(8, 10000.0);
  REQUIRE(inv.size(0) == 4);
  CHECK(inv[1].item<double>() == doctest::Approx(1.0 / std::pow(10000.0, 2.0 / 8)).epsilon(1e-6));
  CHECK(torch::equal(rotate_half(torch::tensor({1.f, 2.f, 3.f, 4.f})), torch::tensor({-3.f, -4.f, 1.f, 2.f})));
  // Positions differ per axis: t = 1, h = 2, w = 3; section [1, 2, 1] picks freq 0 from t, 1-2 from h, 3 from w.
  auto pos = torch::tensor({1, 2, 3}, torch::kLong).view({3, 1, 1});
  auto cs = mrope_cos_sin(inv, pos, {1, 2, 1}, torch::kFloat);
  REQUIRE((cs.cos.sizes() == torch::IntArrayRef({1, 1, 8})));
  const double expected[] = {1 * inv[0].item<double>(), 2 * inv[1].item<double>(), 2 * inv[2].item<double>(),
                             3 * inv[3].item<double>()};
  for (int i = 0; i < 4; ++i) {
    CHECK(cs.cos[0][0][i].item<double>() == doctest::Approx(std::cos(expected[i])).epsilon(1e-6));
    CHECK(cs.sin[0][0][i + 4].item<double>() == doctest::Approx(std::sin(expected[i])).epsilon(1e-6));
  }
  test::expect_error([] { rope_inv_freq(8, 1e4, RopeScaling{"yarn"}); }, ErrorCode::unsupported, {"yarn"});
}

namespace {
struct AddOne : ProjectionAdapter {
  torch::Tensor delta(const torch::Tensor&, const torch::Tensor& y) override { return torch::ones_like(y); }
};
}  // namespace

TEST_CASE("Projection: linear, module paths for adapters, adapter hook") {
  DecoderConfig config;
  config.vocab_size = 10;
  config.hidden_size = 8;
  config.intermediate_size = 12;
  config.num_layers = 2;
  config.num_heads = 2;
  config.num_kv_heads = 1;
  config.head_dim = 4;
  Decoder decoder(config);
  auto projections = set_projection_paths(*decoder);
  REQUIRE(projections.size() == 14);  // 2 layers x (q, k, v, o, gate, up, down)
  CHECK(projections[0].first == "layers.0.self_attn.q_proj");
  CHECK(projections[0].second->path() == "layers.0.self_attn.q_proj");
  CHECK(projections[1].second->out_features() == 4);  // k_proj: 1 kv head x 4

  Projection p(3, 2, true);
  p->weight.copy_(torch::tensor({{1.f, 0.f, 0.f}, {0.f, 1.f, 1.f}}));
  p->bias.copy_(torch::tensor({0.5f, 0.f}));
  auto x = torch::tensor({{2.f, 3.f, 4.f}});
  CHECK(torch::equal(p(x), torch::tensor({{2.5f, 7.f}})));
  p->add_adapter(std::make_shared<AddOne>());
  CHECK(torch::equal(p(x), torch::tensor({{3.5f, 8.f}})));
  p->clear_adapters();
  CHECK(torch::equal(p(x), torch::tensor({{2.5f, 7.f}})));
}

namespace {
// CPU autocast to `dtype` for one scope, as the trainer's micro-batch forward.
struct CpuAutocast {
  explicit CpuAutocast(torch::ScalarType dtype)
      : was_enabled(at::autocast::is_cpu_enabled()), was_dtype(at::autocast::get_autocast_cpu_dtype()) {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  ~CpuAutocast() {
    at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(was_enabled);
    at::autocast::set_autocast_cpu_dtype(was_dtype);
  }
  bool was_enabled;
  torch::ScalarType was_dtype;
};

torch::Tensor bf16_values(const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat); }

// |a - b| within one bfloat16 rounding step of b (oneDNN may sum in another order before rounding), and most
// elements equal.
void check_bf16_close(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  auto af = a.to(torch::kFloat), bf = b.to(torch::kFloat);
  auto step = bf.abs() * std::ldexp(1.0, -7) + 1e-30;
  CHECK(((af - bf).abs() <= step).all().item<bool>());
  CHECK((af == bf).to(torch::kFloat).mean().item<double>() >= 0.9);
}
}  // namespace

TEST_CASE("precise_linear under CPU autocast to bfloat16: float32-accumulated forward and backward, rounded once") {
  // 5 x 11 x 37 multiply-adds is below libtorch's oneDNN threshold (its scalar loop would round running sums);
  // 24 x 40 x 64 is above it (oneDNN where the CPU has it).
  for (auto [rows, out, in] : {std::array<std::int64_t, 3>{5, 11, 37}, std::array<std::int64_t, 3>{24, 40, 64}}) {
    CAPTURE(rows * out * in);
    torch::manual_seed(3);
    auto x = torch::randn({rows, in}).requires_grad_(true);
    auto w = torch::randn({out, in}).requires_grad_(true);
    auto b = torch::randn({out});
    auto upstream = torch::randn({rows, out}).to(torch::kBFloat16);
    torch::Tensor y;
    {
      CpuAutocast autocast(torch::kBFloat16);
      y = precise_linear(x, w, b);
    }
    // Autocast's result type, a value summed in float32 from the bfloat16-rounded operands and rounded once.
    CHECK((y.scalar_type() == torch::kBFloat16));
    auto expected =
        torch::linear(bf16_values(x.detach()), bf16_values(w.detach()), bf16_values(b)).to(torch::kBFloat16);
    check_bf16_close(y, expected);
    // The backward pass outside the autocast scope, as the trainer runs it: each gradient is a float32 product of
    // the bfloat16 values, rounded to bfloat16 once (a bfloat16 matmul's backward), in the parameter's own dtype.
    y.backward(upstream);
    REQUIRE(x.grad().defined());
    CHECK((x.grad().scalar_type() == torch::kFloat));
    check_bf16_close(x.grad(), bf16_values(torch::matmul(upstream.to(torch::kFloat), bf16_values(w.detach()))));
    check_bf16_close(w.grad(), bf16_values(torch::matmul(upstream.to(torch::kFloat).t(), bf16_values(x.detach()))));

    // Without autocast, bfloat16 operands give the same rounding of a float32-accumulated product.
    auto xb = x.detach().to(torch::kBFloat16), wb = w.detach().to(torch::kBFloat16);
    auto plain = precise_linear(xb, wb);
    CHECK((plain.scalar_type() == torch::kBFloat16));
    check_bf16_close(plain, torch::linear(bf16_values(xb), bf16_values(wb)).to(torch::kBFloat16));
    // Float32 operands outside autocast are torch::linear itself.
    CHECK(torch::equal(precise_linear(x.detach(), w.detach(), b), torch::linear(x.detach(), w.detach(), b)));
  }
}

TEST_CASE("precise_matmul rounds bfloat16 and float16 products once, batched and broadcast, small and large") {
  // Attention-shaped products on both sides of libtorch's oneDNN threshold (16 x 16 x 16 multiply-adds in all):
  // one query against a few keys, and against many.
  const std::vector<std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>> shapes = {
      {{4, 1, 32}, {4, 32, 9}},          // 1152: below
      {{1, 2, 1, 32}, {1, 2, 32, 64}},   // 4096: below (the threshold itself)
      {{1, 2, 1, 32}, {1, 2, 32, 65}},   // 4160: above
      {{2, 3, 5, 16}, {16, 40}},         // broadcast b: 9600
      {{3, 40}, {40, 34}},               // 4080: below
      {{2, 14, 3, 64}, {2, 14, 64, 30}}, // 161280: above
  };
  for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
    for (const auto& [a_shape, b_shape] : shapes) {
      CAPTURE(c10::str(a_shape, " x ", b_shape, " ", dtype));
      torch::manual_seed(11);
      auto a = torch::randn(a_shape).to(dtype), b = torch::randn(b_shape).to(dtype);
      auto got = precise_matmul(a, b);
      CHECK((got.scalar_type() == dtype));
      auto once = torch::matmul(a.to(torch::kFloat), b.to(torch::kFloat)).to(dtype);
      check_bf16_close(got, once);
    }
  }
}
