// Greedy decoding's choice from a step's scores: one pass over the vocabulary for the maximum and its index, one
// for the sum of exponentials. libtorch's argmax and log_softmax take about 100 us each on a 151936-wide row,
// both single-threaded: 1 % of a bfloat16 decode step of a 0.5B model on a 2-core CPU.
#pragma once

#include <torch/types.h>

namespace vlm {

struct GreedyPick {
  torch::Tensor index;     // int64 [rows], on the CPU
  torch::Tensor log_prob;  // float32 [rows], on the CPU
};

// For each row of `scores` [rows, V] (float32): the index of its largest value, the first of equal ones and a NaN
// counting as largest (torch::argmax), and log_softmax of the row at that index. Computed in AVX-512 or AVX2 lanes
// where the CPU has them; rows with a NaN or without a finite maximum, other CPUs and other devices go through
// torch::argmax and torch::log_softmax.
GreedyPick greedy_pick(const torch::Tensor& scores);

}  // namespace vlm
