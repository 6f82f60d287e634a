// greedy_pick (generate/greedy_pick.h) against torch::argmax and torch::log_softmax: vocabulary sizes around the
// 16-lane blocks, ties, -inf entries (suppressed tokens), and the rows that take libtorch's path (NaN, no finite
// maximum), on every instruction set the CPU has.
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "generate/greedy_pick.h"
#include "model/matvec.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;

namespace {
void check_rows(const torch::Tensor& scores, const std::string& label) {
  CAPTURE(label);
  const auto pick = greedy_pick(scores);
  REQUIRE(pick.index.sizes() == torch::IntArrayRef({scores.size(0)}));
  REQUIRE(pick.log_prob.sizes() == torch::IntArrayRef({scores.size(0)}));
  const auto want_index = scores.argmax(-1);
  const auto want_log_prob = torch::log_softmax(scores, -1).gather(1, want_index.unsqueeze(1)).squeeze(1);
  const auto exact_log_prob =
      torch::log_softmax(scores.to(torch::kDouble), -1).gather(1, want_index.unsqueeze(1)).squeeze(1);
  for (std::int64_t r = 0; r < scores.size(0); ++r) {
    CAPTURE(r);
    CHECK(pick.index[r].item<std::int64_t>() == want_index[r].item<std::int64_t>());
    const double got = pick.log_prob[r].item<double>(), want = want_log_prob[r].item<double>();
    const double exact = exact_log_prob[r].item<double>();
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
    } else {
      // Within a float32 rounding of the float64 value, and as close to it as libtorch's float32 log_softmax.
      CHECK(std::abs(got - exact) <= std::max(2e-7 * std::abs(exact), std::abs(want - exact)));
    }
  }
}
}  // namespace

TEST_CASE("greedy_pick gives torch::argmax and log_softmax at it, on every instruction set") {
  const auto best = kernel_isa();
  for (auto isa : {KernelIsa::portable, KernelIsa::avx2, KernelIsa::avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    limit_kernel_isa(isa);
    const std::string name = kernel_isa_name(isa);
    torch::manual_seed(9);
    for (std::int64_t V : {1, 15, 16, 17, 33, 1000, 151936}) {
      check_rows(torch::randn({3, V}) * 4, name + " random, V " + std::to_string(V));
    }
    // Ties: the first of equal maxima, within one 16-lane block and across blocks.
    // Row 2: the later maximum in a lower lane (16 against 13); row 3: one in the tail past the last whole vector.
    auto ties = torch::zeros({4, 100});
    ties[0][37] = 2.f;
    ties[0][5] = 2.f;
    ties[0][21] = 2.f;
    ties[1].fill_(1.f);
    ties[2][16] = 3.f;
    ties[2][13] = 3.f;
    ties[3][99] = 4.f;
    ties[3][50] = 4.f;
    check_rows(ties, name + " ties");
    // Suppressed tokens (-inf), and a row that is -inf but for its tail.
    auto suppressed = torch::randn({2, 50});
    suppressed[0].narrow(0, 0, 30).fill_(-INFINITY);
    suppressed[1].narrow(0, 0, 49).fill_(-INFINITY);
    check_rows(suppressed, name + " -inf entries");
    // libtorch's path: a NaN (argmax takes it), all -inf, +inf.
    auto odd = torch::randn({3, 40});
    odd[0][12] = NAN;
    odd[1].fill_(-INFINITY);
    odd[2][3] = INFINITY;
    check_rows(odd, name + " NaN, all -inf, +inf");
  }
  limit_kernel_isa(best);
}

TEST_CASE("greedy_pick refuses scores that are not float32 [rows, V]") {
  CHECK_THROWS(greedy_pick(torch::randn({4})));
  CHECK_THROWS(greedy_pick(torch::randn({2, 4}).to(torch::kDouble)));
}
