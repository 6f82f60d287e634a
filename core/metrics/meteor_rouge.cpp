// nltk 3.10.4 meteor_score (translate/meteor_score.py) and rouge_score 0.1.2 LCS scores (rouge_scorer.py).
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "metrics/metrics.h"
#include "metrics/porter.h"
#include "metrics/unicode.h"
#include "metrics/wordnet.h"

namespace vlm::metrics {
namespace {

struct Enum {
  int index;  // position in the original token list
  std::string word;
};
using Match = std::pair<int, int>;  // (hypothesis index, reference index)

// _match_enums: hypothesis words from last to first take the last still-unmatched equal reference word.
void remove_matched(std::vector<Enum>& items, const std::vector<char>& matched) {
  size_t k = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!matched[i]) {
      if (k != i) items[k] = std::move(items[i]);
      ++k;
    }
  }
  items.resize(k);
}

// The last unmatched reference position holding `word` (what popping ref_positions[word] yields), or -1.
long last_unmatched(const std::vector<Enum>& ref, const std::vector<char>& ref_matched, std::string_view word) {
  for (size_t j = ref.size(); j-- > 0;) {
    if (!ref_matched[j] && ref[j].word == word) return static_cast<long>(j);
  }
  return -1;
}

void match_enums(std::vector<Enum>& hyp, std::vector<Enum>& ref, std::vector<Match>& matches) {
  std::vector<char> hyp_matched(hyp.size(), 0), ref_matched(ref.size(), 0);
  if (hyp.size() * ref.size() <= 4096) {
    // Short texts: a backwards scan finds the same position as nltk's per-word position lists.
    for (size_t i = hyp.size(); i-- > 0;) {
      long j = last_unmatched(ref, ref_matched, hyp[i].word);
      if (j < 0) continue;
      hyp_matched[i] = 1;
      ref_matched[j] = 1;
      matches.emplace_back(hyp[i].index, ref[j].index);
    }
  } else {
    std::unordered_map<std::string_view, std::vector<size_t>> ref_positions;
    for (size_t j = 0; j < ref.size(); ++j) ref_positions[ref[j].word].push_back(j);
    for (size_t i = hyp.size(); i-- > 0;) {
      auto it = ref_positions.find(hyp[i].word);
      if (it == ref_positions.end() || it->second.empty()) continue;
      size_t j = it->second.back();
      it->second.pop_back();
      hyp_matched[i] = 1;
      ref_matched[j] = 1;
      matches.emplace_back(hyp[i].index, ref[j].index);
    }
  }
  remove_matched(hyp, hyp_matched);
  remove_matched(ref, ref_matched);
}

// _enum_wordnetsyn_match: a hypothesis word matches the last unmatched reference word among its WordNet lemma
// names (names with '_' skipped) or itself.
void wordnet_match(std::vector<Enum>& hyp, std::vector<Enum>& ref, const WordNet& wordnet,
                   std::vector<Match>& matches) {
  // Per-thread memo of each word's synonym list (lemma names without '_'), for the WordNet folder last used.
  thread_local std::string cached_dir;
  thread_local std::unordered_map<std::string, std::vector<std::string>> cache;
  if (cached_dir != wordnet.directory() || cache.size() >= 100000) {
    cache.clear();
    cached_dir = wordnet.directory();
  }
  std::vector<char> hyp_matched(hyp.size(), 0), ref_matched(ref.size(), 0);
  for (size_t i = hyp.size(); i-- > 0;) {
    auto found = cache.find(hyp[i].word);
    if (found == cache.end()) {
      std::vector<std::string> names;
      for (std::string& name : wordnet.lemma_names(hyp[i].word)) {
        if (name.find('_') == std::string::npos) names.push_back(std::move(name));
      }
      names.push_back(hyp[i].word);
      found = cache.emplace(hyp[i].word, std::move(names)).first;
    }
    // The candidate is the highest unmatched reference position whose word is a synonym (or the word itself).
    long best_j = -1;
    for (size_t j = ref.size(); j-- > 0 && best_j < 0;) {
      if (ref_matched[j]) continue;
      for (const std::string& syn : found->second) {
        if (syn == ref[j].word) {
          best_j = static_cast<long>(j);
          break;
        }
      }
    }
    if (best_j >= 0) {
      hyp_matched[i] = 1;
      ref_matched[best_j] = 1;
      matches.emplace_back(hyp[i].index, ref[best_j].index);
    }
  }
  remove_matched(hyp, hyp_matched);
  remove_matched(ref, ref_matched);
}

int count_chunks(const std::vector<Match>& matches) {
  int chunks = 1;
  for (size_t i = 0; i + 1 < matches.size(); ++i) {
    if (!(matches[i + 1].first == matches[i].first + 1 && matches[i + 1].second == matches[i].second + 1)) ++chunks;
  }
  return chunks;
}

constexpr size_t kMaxLcsCells = size_t{1} << 28;  // 1 GiB of ints

// _lcs_table as one flat (rows+1) x (cols+1) array, reused per thread.
std::vector<int>& lcs_table(const std::vector<std::string>& ref, const std::vector<std::string>& can) {
  thread_local std::vector<int> t;
  const size_t cols = can.size() + 1;
  if ((ref.size() + 1) > kMaxLcsCells / cols) {
    fail(ErrorCode::limit_exceeded, "rougeLsum: a sentence pair of " + std::to_string(ref.size()) + " x " +
                                        std::to_string(can.size()) + " tokens needs a longer LCS table than the " +
                                        std::to_string(kMaxLcsCells) + "-cell limit; split the text into lines");
  }
  t.assign((ref.size() + 1) * cols, 0);
  for (size_t i = 1; i <= ref.size(); ++i) {
    for (size_t j = 1; j <= can.size(); ++j) {
      t[i * cols + j] = ref[i - 1] == can[j - 1] ? t[(i - 1) * cols + j - 1] + 1
                                                 : std::max(t[(i - 1) * cols + j], t[i * cols + j - 1]);
    }
  }
  return t;
}

// Length of the longest common subsequence (what _lcs_table's last cell holds), bit-parallel (Hyyro 2004):
// one bit per candidate position, 64 positions per machine word; O(|ref| * |can| / 64).
int lcs_length(const std::vector<std::string>& ref, const std::vector<std::string>& can) {
  if (ref.empty() || can.empty()) return 0;
  const size_t m = can.size();
  const size_t words = (m + 63) / 64;
  std::unordered_map<std::string_view, size_t> ids;
  std::vector<std::uint64_t> match;  // per distinct candidate token: the bit mask of its positions
  for (size_t j = 0; j < m; ++j) {
    auto [it, inserted] = ids.emplace(can[j], ids.size());
    if (inserted) match.resize(match.size() + words, 0);
    match[it->second * words + j / 64] |= std::uint64_t{1} << (j % 64);
  }
  std::vector<std::uint64_t> v(words, ~std::uint64_t{0});
  for (const std::string& token : ref) {
    auto it = ids.find(token);
    if (it == ids.end()) continue;  // no match bits: V stays as it is
    const std::uint64_t* pm = &match[it->second * words];
    unsigned carry = 0, borrow = 0;
    for (size_t k = 0; k < words; ++k) {
      const std::uint64_t x = v[k];
      const std::uint64_t u = x & pm[k];
      const std::uint64_t s1 = x + u;
      const std::uint64_t sum = s1 + carry;
      carry = (s1 < x) | (sum < s1);
      const std::uint64_t d1 = x - u;
      const std::uint64_t diff = d1 - borrow;
      borrow = (x < u) | (d1 < borrow);
      v[k] = sum | diff;
    }
  }
  size_t zeros = 0;
  for (size_t k = 0; k < words; ++k) {
    std::uint64_t bits = ~v[k];
    if (k == words - 1 && m % 64 != 0) bits &= (std::uint64_t{1} << (m % 64)) - 1;
    zeros += static_cast<size_t>(__builtin_popcountll(bits));
  }
  return static_cast<int>(zeros);
}

// lcs_ind: _backtrack_norec's reference indices of one LCS.
std::vector<size_t> lcs_indices(const std::vector<std::string>& ref, const std::vector<std::string>& can) {
  const std::vector<int>& t = lcs_table(ref, can);
  const size_t cols = can.size() + 1;
  std::vector<size_t> out;
  size_t i = ref.size(), j = can.size();
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      out.push_back(i - 1);
      --i;
      --j;
    } else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

double fmeasure(double precision, double recall) {
  if (precision + recall > 0) return 2 * precision * recall / (precision + recall);
  return 0.0;
}

}  // namespace

double single_meteor_score(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis,
                           const WordNet* wordnet, double alpha, double beta, double gamma) {
  std::vector<Enum> hyp, ref;
  hyp.reserve(hypothesis.size());
  ref.reserve(reference.size());
  for (size_t i = 0; i < hypothesis.size(); ++i) hyp.push_back({static_cast<int>(i), python_lower_utf8(hypothesis[i])});
  for (size_t j = 0; j < reference.size(); ++j) ref.push_back({static_cast<int>(j), python_lower_utf8(reference[j])});
  const size_t translation_length = hyp.size();
  const size_t reference_length = ref.size();

  std::vector<Match> matches;
  match_enums(hyp, ref, matches);
  // Stem stage: the unmatched words are replaced by their stems, and the WordNet stage sees the stems.
  for (Enum& e : hyp) e.word = porter_stem_utf8(e.word);
  for (Enum& e : ref) e.word = porter_stem_utf8(e.word);
  match_enums(hyp, ref, matches);
  if (wordnet) wordnet_match(hyp, ref, *wordnet, matches);
  std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) { return a.first < b.first; });

  const size_t matches_count = matches.size();
  if (translation_length == 0 || reference_length == 0 || matches_count == 0) return 0.0;
  const double precision = static_cast<double>(matches_count) / static_cast<double>(translation_length);
  const double recall = static_cast<double>(matches_count) / static_cast<double>(reference_length);
  const double denominator = alpha * precision + (1 - alpha) * recall;
  if (denominator == 0.0) return 0.0;
  const double fmean = (precision * recall) / denominator;
  const double chunk_count = static_cast<double>(count_chunks(matches));
  const double frag_frac = chunk_count / static_cast<double>(matches_count);
  const double penalty = gamma * std::pow(frag_frac, beta);
  return (1 - penalty) * fmean;
}

double rouge_lcs_f(const std::vector<std::string>& target, const std::vector<std::string>& prediction) {
  if (target.empty() || prediction.empty()) return 0.0;
  const int lcs = lcs_length(target, prediction);
  const double precision = static_cast<double>(lcs) / static_cast<double>(prediction.size());
  const double recall = static_cast<double>(lcs) / static_cast<double>(target.size());
  return fmeasure(precision, recall);
}

double rouge_summary_lcs_f(const std::vector<std::vector<std::string>>& ref_sent,
                           const std::vector<std::vector<std::string>>& can_sent) {
  if (ref_sent.empty() || can_sent.empty()) return 0.0;
  size_t m = 0, n = 0;
  for (const auto& s : ref_sent) m += s.size();
  for (const auto& s : can_sent) n += s.size();
  if (n == 0 || m == 0) return 0.0;
  std::unordered_map<std::string, long> cnt_r, cnt_c;
  for (const auto& s : ref_sent) {
    for (const auto& t : s) ++cnt_r[t];
  }
  for (const auto& s : can_sent) {
    for (const auto& t : s) ++cnt_c[t];
  }
  long hits = 0;
  for (const auto& r : ref_sent) {
    // _union_lcs: the sorted union of the LCS reference indices against every candidate sentence.
    std::vector<size_t> uni;
    for (const auto& c : can_sent) {
      auto ind = lcs_indices(r, c);
      uni.insert(uni.end(), ind.begin(), ind.end());
    }
    std::sort(uni.begin(), uni.end());
    uni.erase(std::unique(uni.begin(), uni.end()), uni.end());
    for (size_t idx : uni) {
      const std::string& t = r[idx];
      auto ic = cnt_c.find(t);
      auto ir = cnt_r.find(t);
      if (ic != cnt_c.end() && ir != cnt_r.end() && ic->second > 0 && ir->second > 0) {
        ++hits;
        --ic->second;
        --ir->second;
      }
    }
  }
  const double recall = static_cast<double>(hits) / static_cast<double>(m);
  const double precision = static_cast<double>(hits) / static_cast<double>(n);
  return fmeasure(precision, recall);
}

}  // namespace vlm::metrics
