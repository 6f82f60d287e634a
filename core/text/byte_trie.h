// A trie over the bytes of UTF-8 strings, each node optionally holding a value. Shared by the added-token
// matcher (leftmost-longest matching) and the Unigram model (every vocabulary piece starting at a position).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace vlm {

class ByteTrie {
 public:
  static constexpr std::int32_t kRoot = 0;

  // Stores `value` at the node of `key` (creating the path) and returns that node; the last value wins.
  std::int32_t insert(std::string_view key, std::int64_t value) {
    std::int32_t node = kRoot;
    for (unsigned char b : key) {
      std::int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<std::int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(b, next);
        nodes_.emplace_back();
      }
      node = next;
    }
    if (node != kRoot) nodes_[node].value = value;
    return node;
  }
  // The child of `node` along byte `b`, or -1.
  std::int32_t child(std::int32_t node, unsigned char b) const {
    for (const auto& [byte, next] : nodes_[node].children)
      if (byte == b) return next;
    return -1;
  }
  // The value stored at `node`, or -1.
  std::int64_t value(std::int32_t node) const { return nodes_[node].value; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> children;
    std::int64_t value = -1;
  };
  std::vector<Node> nodes_{1};
};

}  // namespace vlm
