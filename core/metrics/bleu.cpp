// sacrebleu 2.6.0 BLEU (metrics/bleu.py): 13a tokens, n-gram orders 1-4, references merged by max count,
// closest reference length, 'exp' smoothing. Arithmetic follows compute_bleu step by step so the doubles agree.
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "base/error.h"
#include "metrics/metrics.h"
#include "metrics/tokenize.h"
#include "metrics/unicode.h"

namespace vlm::metrics {
namespace {

constexpr int kMaxOrder = 4;

// N-gram counts as a sorted array of (key, count). With a per-example vocabulary below 2^16 tokens, an n-gram is
// its token ids + 1 packed into 16-bit fields of a 64-bit key (the order is the number of non-zero fields);
// bigger vocabularies fall back to string keys.
struct Vocabulary {
  std::unordered_map<std::string_view, std::uint32_t> ids;
  std::vector<std::uint32_t> encode(const std::vector<std::string_view>& tokens) {
    std::vector<std::uint32_t> out;
    out.reserve(tokens.size());
    for (std::string_view t : tokens) {
      auto [it, inserted] = ids.emplace(t, static_cast<std::uint32_t>(ids.size()));
      out.push_back(it->second);
    }
    return out;
  }
};

template <class Key>
struct Counts {
  std::vector<std::pair<Key, std::int64_t>> items;  // sorted by key
};

std::vector<std::uint64_t> packed_ngrams(const std::vector<std::uint32_t>& ids) {
  std::vector<std::uint64_t> keys;
  keys.reserve(ids.size() * kMaxOrder);
  for (size_t i = 0; i < ids.size(); ++i) {
    std::uint64_t key = 0;
    for (int n = 0; n < kMaxOrder && i + n < ids.size(); ++n) {
      key |= static_cast<std::uint64_t>(ids[i + n] + 1) << (16 * n);
      keys.push_back(key);
    }
  }
  return keys;
}

std::vector<std::string> string_ngrams(const std::vector<std::uint32_t>& ids) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int n = 1; n <= kMaxOrder && i + n <= ids.size(); ++n) {
      keys.emplace_back(reinterpret_cast<const char*>(&ids[i]), n * sizeof(std::uint32_t));
    }
  }
  return keys;
}

template <class Key>
Counts<Key> count_sorted(std::vector<Key> keys) {
  std::sort(keys.begin(), keys.end());
  Counts<Key> c;
  for (size_t i = 0; i < keys.size();) {
    size_t j = i;
    while (j < keys.size() && keys[j] == keys[i]) ++j;
    c.items.emplace_back(std::move(keys[i]), static_cast<std::int64_t>(j - i));
    i = j;
  }
  return c;
}

int order_of(std::uint64_t key) {
  int n = 0;
  while (key) {
    ++n;
    key >>= 16;
  }
  return n;
}
int order_of(const std::string& key) { return static_cast<int>(key.size() / sizeof(std::uint32_t)); }

// Max-merges reference counts, then clips the hypothesis counts against them.
template <class Key>
void clip_counts(const std::vector<Counts<Key>>& refs, const Counts<Key>& hyp, BleuStatistics* st) {
  std::vector<std::pair<Key, std::int64_t>> merged;
  for (const auto& r : refs) merged.insert(merged.end(), r.items.begin(), r.items.end());
  std::sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t m = 0;
  for (const auto& [key, count] : hyp.items) {
    const int n = order_of(key) - 1;
    st->total[n] += count;
    while (m < merged.size() && merged[m].first < key) ++m;
    std::int64_t ref_max = 0;
    for (size_t k = m; k < merged.size() && merged[k].first == key; ++k) ref_max = std::max(ref_max, merged[k].second);
    st->correct[n] += std::min(count, ref_max);
  }
}

}  // namespace

namespace {
double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

}  // namespace

BleuStatistics bleu_statistics(std::string_view hypothesis, const std::vector<std::string>& references) {
  if (references.empty()) {
    fail(ErrorCode::invalid_argument, "BLEU needs at least one reference per hypothesis");
  }
  // _preprocess_segment: rstrip() then tokenize (lowercase is off).
  std::vector<std::string> ref_lines;
  ref_lines.reserve(references.size());
  for (const std::string& r : references) ref_lines.push_back(tokenize_13a(python_rstrip(r)));
  const std::string hyp_line = tokenize_13a(python_rstrip(hypothesis));

  Vocabulary vocab;
  std::vector<std::int64_t> ref_lens;
  std::vector<std::vector<std::uint32_t>> ref_ids;
  for (const std::string& line : ref_lines) {
    auto toks = python_split(line);
    ref_lens.push_back(static_cast<std::int64_t>(toks.size()));
    ref_ids.push_back(vocab.encode(toks));
  }
  auto hyp_toks = python_split(hyp_line);
  const std::vector<std::uint32_t> hyp_ids = vocab.encode(hyp_toks);

  BleuStatistics st;
  st.sys_len = static_cast<std::int64_t>(hyp_toks.size());
  // _get_closest_ref_len: smallest |hyp - ref|, ties to the shorter reference.
  std::int64_t closest_diff = -1, closest_len = -1;
  for (std::int64_t len : ref_lens) {
    std::int64_t diff = std::llabs(st.sys_len - len);
    if (closest_diff == -1 || diff < closest_diff) {
      closest_diff = diff;
      closest_len = len;
    } else if (diff == closest_diff && len < closest_len) {
      closest_len = len;
    }
  }
  st.ref_len = closest_len;
  if (vocab.ids.size() < 0xFFFF) {
    std::vector<Counts<std::uint64_t>> refs;
    for (const auto& ids : ref_ids) refs.push_back(count_sorted(packed_ngrams(ids)));
    clip_counts(refs, count_sorted(packed_ngrams(hyp_ids)), &st);
  } else {
    std::vector<Counts<std::string>> refs;
    for (const auto& ids : ref_ids) refs.push_back(count_sorted(string_ngrams(ids)));
    clip_counts(refs, count_sorted(string_ngrams(hyp_ids)), &st);
  }
  return st;
}

BleuScore bleu_from_statistics(const BleuStatistics& stats, bool effective_order) {
  BleuScore out;
  out.stats = stats;
  const std::int64_t sys_len = stats.sys_len, ref_len = stats.ref_len;
  double bp = 1.0;
  if (sys_len < ref_len) {
    bp = sys_len > 0 ? std::exp(1.0 - static_cast<double>(ref_len) / static_cast<double>(sys_len)) : 0.0;
  }
  out.bp = bp;
  bool any_correct = false;
  for (int n = 0; n < kMaxOrder; ++n) any_correct = any_correct || stats.correct[n] != 0;
  if (!any_correct) {
    out.score = 0.0;
    return out;
  }
  double smooth_mteval = 1.0;
  int eff_order = kMaxOrder;
  for (int n = 1; n <= kMaxOrder; ++n) {
    if (stats.total[n - 1] == 0) break;
    if (effective_order) eff_order = n;
    if (stats.correct[n - 1] == 0) {
      smooth_mteval *= 2;
      out.precisions[n - 1] = 100.0 / (smooth_mteval * static_cast<double>(stats.total[n - 1]));
    } else {
      out.precisions[n - 1] = 100.0 * static_cast<double>(stats.correct[n - 1]) /
                              static_cast<double>(stats.total[n - 1]);
    }
  }
  double sum = 0.0;
  for (int n = 0; n < eff_order; ++n) sum += my_log(out.precisions[n]);
  out.score = bp * std::exp(sum / eff_order);
  return out;
}

double sentence_bleu(std::string_view hypothesis, const std::vector<std::string>& references) {
  return bleu_from_statistics(bleu_statistics(hypothesis, references), true).score;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references_per_hypothesis) {
  if (hypotheses.size() != references_per_hypothesis.size()) {
    fail(ErrorCode::invalid_argument, "corpus_bleu: " + std::to_string(hypotheses.size()) + " hypotheses but " +
                                          std::to_string(references_per_hypothesis.size()) + " reference lists");
  }
  BleuStatistics total;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    BleuStatistics s = bleu_statistics(hypotheses[i], references_per_hypothesis[i]);
    total.sys_len += s.sys_len;
    total.ref_len += s.ref_len;
    for (int n = 0; n < kMaxOrder; ++n) {
      total.correct[n] += s.correct[n];
      total.total[n] += s.total[n];
    }
  }
  return bleu_from_statistics(total, false);
}

}  // namespace vlm::metrics
