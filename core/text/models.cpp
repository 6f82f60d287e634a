// Tokenization models of tokenizer.json: BPE (with byte fallback, subword prefix/suffix, ignore_merges and a
// word cache), Unigram (Viterbi over a byte trie), WordPiece and WordLevel. Behaviour follows Hugging Face
// `tokenizers`; see tests/text/ for the conformance checks.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "text/byte_trie.h"
#include "text/pipeline.h"
#include "text/unicode.h"

namespace vlm::text {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  fail(ErrorCode::corrupt_data, where + ": " + what);
}

// Maps token strings to ids; shared by the models.
class Vocab {
 public:
  void add(std::string token, std::int32_t id, const std::string& where) {
    if (id < 0) bad(where, "negative id for token \"" + token + "\"");
    if (static_cast<std::size_t>(id) >= tokens_.size()) tokens_.resize(id + 1), present_.resize(id + 1, false);
    tokens_[id] = token;
    present_[id] = true;
    ids_[std::move(token)] = id;
  }
  std::optional<std::int32_t> find(const std::string& token) const {
    auto it = ids_.find(token);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size() || !present_[id]) return nullptr;
    return &tokens_[id];
  }
  std::size_t size() const { return ids_.size(); }
  std::size_t capacity() const { return tokens_.size(); }  // one past the largest id

 private:
  std::vector<std::string> tokens_;
  std::vector<bool> present_;
  std::unordered_map<std::string, std::int32_t> ids_;
};

// ------------------------------------------------------------------------------------------------------ BPE

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel : public Model {
 public:
  BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
           const std::string& where)
      : vocab_(std::move(vocab)), opt_(std::move(options)) {
    const std::size_t prefix_len = opt_.continuing_subword_prefix.size();
    merges_.reserve(merges.size() * 2);
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      auto ia = vocab_.find(a), ib = vocab_.find(b);
      if (!ia || !ib)
        bad(where, "merge #" + std::to_string(rank) + " \"" + a + " " + b + "\" uses a token missing from the vocab");
      const std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : b);
      auto im = vocab_.find(merged);
      if (!im) bad(where, "merge #" + std::to_string(rank) + " produces \"" + merged + "\", missing from the vocab");
      merges_.emplace(pair_key(*ia, *ib), MergeTarget{static_cast<std::uint32_t>(rank), *im});
    }
    // Single characters below U+10000 (the whole byte-level alphabet, most SentencePiece pieces) get a direct
    // table instead of a hash lookup on every character of every new word.
    single_char_ids_.assign(0x10000, -1);
    for (std::int32_t id = 0; id < static_cast<std::int32_t>(vocab_.capacity()); ++id) {
      const std::string* t = vocab_.token(id);
      if (!t || t->empty() || lead_length(static_cast<unsigned char>((*t)[0])) != t->size() || t->size() > 3) continue;
      if (!is_valid_utf8(*t)) continue;
      std::size_t i = 0;
      const char32_t c = next_code_point(*t, i);
      if (c < 0x10000 && vocab_.find(*t) == std::optional<std::int32_t>(id)) single_char_ids_[c] = id;
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      auto id = vocab_.find(name);
      byte_ids_[b] = id ? *id : -1;
    }
  }

  void tokenize(std::string_view word, std::vector<std::int32_t>& out) const override {
    if (word.empty()) return;
    const std::string key(word);
    if (opt_.ignore_merges) {
      if (auto id = vocab_.find(key)) {
        out.push_back(*id);
        return;
      }
    }
    const bool cacheable = word.size() < kMaxCachedLength;
    if (cacheable) {
      std::shared_lock<std::shared_mutex> lock(cache_mutex_);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<std::int32_t> ids;
    merge_word(word, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
      std::unique_lock<std::shared_mutex> lock(cache_mutex_);
      if (cache_.size() < kCacheCapacity) cache_.emplace(key, std::move(ids));
    }
  }

  std::optional<std::int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(std::string(token));
  }
  const std::string* id_to_token(std::int32_t id) const override { return vocab_.token(id); }
  std::size_t vocab_size() const override { return vocab_.size(); }
  std::string kind() const override { return "BPE"; }

 private:
  static constexpr std::size_t kMaxCachedLength = 256;
  static constexpr std::size_t kCacheCapacity = 1 << 16;

  struct MergeTarget {
    std::uint32_t rank;
    std::int32_t id;
  };
  struct Symbol {
    std::int32_t id;
    std::int32_t prev, next;
    std::uint32_t len;  // 0 once merged into its left neighbour
  };
  struct Candidate {
    std::uint32_t rank;
    std::uint32_t pos;
    std::int32_t new_id;
    bool operator<(const Candidate& o) const {  // std::priority_queue pops the largest: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  const MergeTarget* find_merge(std::int32_t a, std::int32_t b) const {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  void merge_word(std::string_view w, std::vector<std::int32_t>& result) const {
    std::vector<Symbol> symbols;
    symbols.reserve(w.size());
    auto add = [&symbols](std::int32_t id, std::size_t len) {
      const std::int32_t index = static_cast<std::int32_t>(symbols.size());
      symbols.push_back({id, index - 1, -1, static_cast<std::uint32_t>(len)});
      if (index > 0) symbols[index - 1].next = index;
    };
    // Pending unknown run (id, byte length); unk_len == 0 means none.
    std::int32_t unk_id_pending = -1;
    std::size_t unk_len = 0;
    std::string s;
    std::size_t i = 0;
    while (i < w.size()) {
      const std::size_t start = i;
      i += lead_length(static_cast<unsigned char>(w[i]));
      if (i > w.size()) i = w.size();
      const std::size_t byte_len = i - start;
      const bool plain = (start == 0 || opt_.continuing_subword_prefix.empty()) &&
                         (i != w.size() || opt_.end_of_word_suffix.empty());
      if (plain && byte_len <= 3) {
        std::size_t k = start;
        const char32_t c = next_code_point(w, k);
        const std::int32_t id = single_char_ids_[c];
        if (id >= 0) {
          if (unk_len) {
            add(unk_id_pending, unk_len);
            unk_len = 0;
          }
          add(id, byte_len);
          continue;
        }
      }
      s.assign(w.substr(start, byte_len));
      if (start != 0 && !opt_.continuing_subword_prefix.empty()) s.insert(0, opt_.continuing_subword_prefix);
      if (i == w.size() && !opt_.end_of_word_suffix.empty()) s += opt_.end_of_word_suffix;
      if (auto id = vocab_.find(s)) {
        if (unk_len) {
          add(unk_id_pending, unk_len);
          unk_len = 0;
        }
        add(*id, byte_len);
        continue;
      }
      if (opt_.byte_fallback) {
        bool all = true;
        for (unsigned char b : s) all &= byte_ids_[b] >= 0;
        if (all) {
          for (unsigned char b : s) add(byte_ids_[b], 1);
          continue;
        }
      }
      if (opt_.unk_token) {
        auto unk_id = vocab_.find(*opt_.unk_token);
        if (!unk_id)
          fail(ErrorCode::corrupt_data, "tokenizer.json model.unk_token \"" + *opt_.unk_token + "\" is not in the vocab");
        if (unk_len && opt_.fuse_unk) {
          unk_len += byte_len;
        } else {
          if (unk_len) add(unk_id_pending, unk_len);
          unk_id_pending = *unk_id;
          unk_len = byte_len;
        }
      }
    }
    if (unk_len) add(unk_id_pending, unk_len);

    std::priority_queue<Candidate> queue;
    for (std::size_t k = 0; k + 1 < symbols.size(); ++k)
      if (const MergeTarget* m = find_merge(symbols[k].id, symbols[k + 1].id))
        queue.push({m->rank, static_cast<std::uint32_t>(k), m->id});
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& cur = symbols[top.pos];
      if (cur.len == 0 || cur.next < 0) continue;
      const std::int32_t next_pos = cur.next;
      const Symbol right = symbols[next_pos];
      const MergeTarget* m = find_merge(cur.id, right.id);
      if (!m || m->id != top.new_id) continue;  // stale entry
      cur.id = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      symbols[next_pos].len = 0;
      if (right.next >= 0) symbols[right.next].prev = static_cast<std::int32_t>(top.pos);
      if (cur.prev >= 0)
        if (const MergeTarget* pm = find_merge(symbols[cur.prev].id, cur.id))
          queue.push({pm->rank, static_cast<std::uint32_t>(cur.prev), pm->id});
      if (cur.next >= 0)
        if (const MergeTarget* nm = find_merge(cur.id, symbols[cur.next].id))
          queue.push({nm->rank, top.pos, nm->id});
    }
    for (const Symbol& sym : symbols)
      if (sym.len != 0) result.push_back(sym.id);
  }

  Vocab vocab_;
  BpeOptions opt_;
  std::unordered_map<std::uint64_t, MergeTarget> merges_;
  std::int32_t byte_ids_[256];
  std::vector<std::int32_t> single_char_ids_;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
};

// -------------------------------------------------------------------------------------------------- Unigram

// tokenizers reads tokenizer.json with serde_json, whose default float parser is not correctly rounded: it
// converts the decimal significand to f64 first (rounding it when above 2^53) and then divides by a power of
// ten. Unigram scores decide ties in the Viterbi search, so they are reproduced bit for bit: the value is
// re-printed as the shortest decimal (what serde_json and Python write) and parsed the serde_json way.
double serde_json_f64(double correct) {
  if (!std::isfinite(correct) || correct == 0.0) return correct;
  static const std::vector<double> pow10 = [] {
    std::vector<double> p(309);
    for (int k = 0; k <= 308; ++k) p[k] = std::strtod(("1e" + std::to_string(k)).c_str(), nullptr);
    return p;
  }();
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), std::fabs(correct));
  const std::string_view text(buf, static_cast<std::size_t>(res.ptr - buf));
  std::uint64_t significand = 0;
  int exponent = 0;
  bool after_point = false;
  std::size_t i = 0;
  for (; i < text.size() && text[i] != 'e'; ++i) {
    if (text[i] == '.') {
      after_point = true;
      continue;
    }
    significand = significand * 10 + static_cast<std::uint64_t>(text[i] - '0');
    if (after_point) --exponent;
  }
  if (i < text.size()) exponent += std::atoi(std::string(text.substr(i + 1)).c_str());
  double f = static_cast<double>(significand);
  while (true) {
    const int magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude <= 308) {
      if (exponent >= 0) f *= pow10[magnitude];
      else f /= pow10[magnitude];
      break;
    }
    if (f == 0.0) break;
    f /= 1e308;
    exponent += 308;
  }
  return correct < 0 ? -f : f;
}

class UnigramModel : public Model {
 public:
  UnigramModel(const json& j, const std::string& where) {
    const json& vocab = j.at("vocab");
    if (!vocab.is_array() || vocab.empty()) bad(where, "\"vocab\" must be a non-empty list of [piece, score]");
    scores_.reserve(vocab.size());
    min_score_ = std::numeric_limits<double>::infinity();
    for (std::size_t id = 0; id < vocab.size(); ++id) {
      const json& entry = vocab[id];
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string())
        bad(where, "vocab[" + std::to_string(id) + "] must be [piece, score]");
      const std::string piece = entry[0].get<std::string>();
      const double score = serde_json_f64(entry[1].get<double>());
      vocab_.add(piece, static_cast<std::int32_t>(id), where);
      scores_.push_back(score);
      min_score_ = std::min(min_score_, score);
      trie_.insert(piece, static_cast<std::int64_t>(id));  // a duplicated piece resolves to its last id, as token_to_ids does
    }
    if (j.contains("unk_id") && !j["unk_id"].is_null()) {
      unk_id_ = j["unk_id"].get<std::int32_t>();
      if (*unk_id_ < 0 || static_cast<std::size_t>(*unk_id_) >= vocab.size())
        bad(where, "unk_id " + std::to_string(*unk_id_) + " is outside the vocab");
    }
    byte_fallback_ = j.value("byte_fallback", false);
  }

  void tokenize(std::string_view sentence, std::vector<std::int32_t>& out) const override {
    if (sentence.empty()) return;
    struct Node {
      std::int32_t id = -1;
      double score = 0;
      std::int64_t starts_at = -1;
    };
    const std::size_t size = sentence.size();
    const double unk_score = min_score_ - 10.0;
    std::vector<Node> best(size + 1);
    std::size_t starts_at = 0;
    while (starts_at < size) {
      const double till_here = best[starts_at].score;
      const std::size_t mblen = std::min(lead_length(static_cast<unsigned char>(sentence[starts_at])), size - starts_at);
      bool has_single_node = false;
      std::int32_t node = 0;
      for (std::size_t k = starts_at; k < size; ++k) {
        node = trie_.child(node, static_cast<unsigned char>(sentence[k]));
        if (node < 0) break;
        const auto id = static_cast<std::int32_t>(trie_.value(node));
        if (id < 0) continue;
        const std::size_t key_pos = k + 1;
        const double candidate = scores_[id] + till_here;
        Node& target = best[key_pos];
        if (target.starts_at < 0 || candidate > target.score) {
          target.score = candidate;
          target.starts_at = static_cast<std::int64_t>(starts_at);
          target.id = id;
        }
        if (key_pos - starts_at == mblen) has_single_node = true;
      }
      if (!has_single_node) {
        if (!unk_id_) fail(ErrorCode::corrupt_data, "tokenizer.json model: Unigram model has no unk_id but the text "
                                                    "contains a character missing from its vocab");
        Node& target = best[starts_at + mblen];
        const double candidate = unk_score + till_here;
        if (target.starts_at < 0 || candidate > target.score) {
          target.score = candidate;
          target.starts_at = static_cast<std::int64_t>(starts_at);
          target.id = *unk_id_;
        }
      }
      starts_at += mblen;
    }
    // Walk back; consecutive unknown pieces are fused into one string.
    std::vector<std::string_view> pieces;
    std::size_t ends_at = size;
    std::size_t unk_end = 0;
    bool in_unk = false;
    while (ends_at > 0) {
      const Node& n = best[ends_at];
      const std::size_t start = static_cast<std::size_t>(n.starts_at);
      if (unk_id_ && n.id == *unk_id_) {
        if (!in_unk) unk_end = ends_at;
        in_unk = true;
      } else {
        if (in_unk) pieces.push_back(sentence.substr(ends_at, unk_end - ends_at));
        in_unk = false;
        pieces.push_back(sentence.substr(start, ends_at - start));
      }
      ends_at = start;
    }
    if (in_unk) pieces.push_back(sentence.substr(0, unk_end));
    std::reverse(pieces.begin(), pieces.end());
    for (std::string_view piece : pieces) {
      if (auto id = vocab_.find(std::string(piece))) {
        out.push_back(*id);
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        std::vector<std::int32_t> bytes;
        for (unsigned char b : piece) {
          char name[8];
          std::snprintf(name, sizeof(name), "<0x%02X>", b);
          auto id = vocab_.find(name);
          if (!id) { all = false; break; }
          bytes.push_back(*id);
        }
        if (all) {
          out.insert(out.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      if (!unk_id_) fail(ErrorCode::corrupt_data, "tokenizer.json model: Unigram model has no unk_id");
      out.push_back(*unk_id_);
    }
  }

  std::optional<std::int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(std::string(token));
  }
  const std::string* id_to_token(std::int32_t id) const override { return vocab_.token(id); }
  std::size_t vocab_size() const override { return scores_.size(); }  // duplicates count, as in tokenizers
  std::string kind() const override { return "Unigram"; }

 private:
  Vocab vocab_;
  std::vector<double> scores_;
  ByteTrie trie_;
  double min_score_;
  std::optional<std::int32_t> unk_id_;
  bool byte_fallback_ = false;
};

// ------------------------------------------------------------------------------------ WordPiece, WordLevel

class WordPieceModel : public Model {
 public:
  WordPieceModel(Vocab vocab, std::string unk, std::string prefix, std::size_t max_chars)
      : vocab_(std::move(vocab)), unk_(std::move(unk)), prefix_(std::move(prefix)), max_chars_(max_chars) {}

  void tokenize(std::string_view word, std::vector<std::int32_t>& out) const override {
    if (count_code_points(word) > max_chars_) {
      out.push_back(unk_id());
      return;
    }
    std::vector<std::int32_t> sub;
    std::size_t start = 0;
    std::string candidate;
    while (start < word.size()) {
      std::size_t end = word.size();
      std::optional<std::int32_t> found;
      while (start < end) {
        candidate.assign(start > 0 ? prefix_ : std::string());
        candidate.append(word.substr(start, end - start));
        if ((found = vocab_.find(candidate))) break;
        --end;  // back up one character
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
      }
      if (!found) {
        out.push_back(unk_id());
        return;
      }
      sub.push_back(*found);
      start = end;
    }
    out.insert(out.end(), sub.begin(), sub.end());
  }

  std::optional<std::int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(std::string(token));
  }
  const std::string* id_to_token(std::int32_t id) const override { return vocab_.token(id); }
  std::size_t vocab_size() const override { return vocab_.size(); }
  std::string kind() const override { return "WordPiece"; }

 private:
  std::int32_t unk_id() const {
    auto id = vocab_.find(unk_);
    if (!id) fail(ErrorCode::corrupt_data, "tokenizer.json model: WordPiece unk_token \"" + unk_ + "\" is not in the vocab");
    return *id;
  }
  Vocab vocab_;
  std::string unk_, prefix_;
  std::size_t max_chars_;
};

class WordLevelModel : public Model {
 public:
  WordLevelModel(Vocab vocab, std::string unk) : vocab_(std::move(vocab)), unk_(std::move(unk)) {}
  void tokenize(std::string_view word, std::vector<std::int32_t>& out) const override {
    if (auto id = vocab_.find(std::string(word))) {
      out.push_back(*id);
      return;
    }
    auto unk = vocab_.find(unk_);
    if (!unk)
      fail(ErrorCode::invalid_argument, "WordLevel tokenizer: \"" + std::string(word) +
                                            "\" is not in the vocab and the unk_token \"" + unk_ + "\" is missing");
    out.push_back(*unk);
  }
  std::optional<std::int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(std::string(token));
  }
  const std::string* id_to_token(std::int32_t id) const override { return vocab_.token(id); }
  std::size_t vocab_size() const override { return vocab_.size(); }
  std::string kind() const override { return "WordLevel"; }

 private:
  Vocab vocab_;
  std::string unk_;
};

Vocab vocab_from_object(const json& v, const std::string& where) {
  if (!v.is_object()) bad(where, "\"vocab\" must be an object {token: id}");
  Vocab vocab;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number_integer()) bad(where, "vocab entry \"" + it.key() + "\" must map to an integer id");
    vocab.add(it.key(), it.value().get<std::int32_t>(), where);
  }
  return vocab;
}

Vocab vocab_from(const json& j, ModelTables* tables, const std::string& where) {
  if (tables && tables->has_vocab) {
    Vocab vocab;
    for (auto& [token, id] : tables->vocab) vocab.add(std::move(token), id, where);
    tables->vocab.clear();
    return vocab;
  }
  return vocab_from_object(j.at("vocab"), where);
}

std::optional<std::string> optional_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

std::unique_ptr<Model> make_model(const json& j, const std::string& where, ModelTables* tables) {
  if (!j.is_object()) bad("tokenizer.json " + where, "expected an object");
  std::string type = j.value("type", "");
  const std::string w = "tokenizer.json " + where;
  if (type.empty()) {  // older files omit the type: infer it from the fields
    if (j.contains("merges")) type = "BPE";
    else if (j.contains("vocab") && j["vocab"].is_array()) type = "Unigram";
    else if (j.contains("continuing_subword_prefix")) type = "WordPiece";
    else type = "WordLevel";
  }
  try {
    if (type == "BPE") {
      if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() > 0.0)
        fail(ErrorCode::unsupported, w + ": BPE dropout is a training-time option; set \"dropout\" to null");
      BpeOptions opt;
      opt.unk_token = optional_string(j, "unk_token");
      opt.continuing_subword_prefix = optional_string(j, "continuing_subword_prefix").value_or("");
      opt.end_of_word_suffix = optional_string(j, "end_of_word_suffix").value_or("");
      opt.fuse_unk = j.value("fuse_unk", false);
      opt.byte_fallback = j.value("byte_fallback", false);
      opt.ignore_merges = j.value("ignore_merges", false);
      std::vector<std::pair<std::string, std::string>> merges;
      if (tables && tables->has_merges) merges.swap(tables->merges);
      const json& list = j.at("merges");
      merges.reserve(merges.size() + list.size());
      for (std::size_t i = 0; i < list.size(); ++i) {
        const json& m = list[i];
        if (m.is_string()) {
          const std::string s = m.get<std::string>();
          const std::size_t space = s.find(' ');
          if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
            bad(w, "merges[" + std::to_string(i) + "] \"" + s + "\" must be two tokens separated by one space");
          merges.emplace_back(s.substr(0, space), s.substr(space + 1));
        } else if (m.is_array() && m.size() == 2) {
          merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
        } else {
          bad(w, "merges[" + std::to_string(i) + "] must be \"a b\" or [\"a\", \"b\"]");
        }
      }
      return std::make_unique<BpeModel>(vocab_from(j, tables, w), merges, std::move(opt), w);
    }
    if (type == "Unigram") return std::make_unique<UnigramModel>(j, w);
    if (type == "WordPiece")
      return std::make_unique<WordPieceModel>(vocab_from(j, tables, w), j.value("unk_token", "[UNK]"),
                                              j.value("continuing_subword_prefix", "##"),
                                              j.value("max_input_chars_per_word", std::size_t{100}));
    if (type == "WordLevel")
      return std::make_unique<WordLevelModel>(vocab_from(j, tables, w), j.value("unk_token", "<unk>"));
  } catch (const nlohmann::json::exception& e) {
    bad(w, std::string("malformed model section: ") + e.what());
  }
  fail(ErrorCode::unsupported, w + ": model type \"" + type + "\" is not supported (BPE, Unigram, WordPiece, WordLevel)");
}

std::unique_ptr<Model> make_bpe_from_files(const std::string& vocab_json_path, const std::string& merges_path) {
  json vocab_json;
  try {
    vocab_json = json::parse(read_file(vocab_json_path));
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::corrupt_data, vocab_json_path + ": not valid JSON: " + e.what());
  }
  const std::string text = read_file(merges_path);
  std::vector<std::pair<std::string, std::string>> merges;
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      fail(ErrorCode::corrupt_data, merges_path + " line " + std::to_string(line_no) + ": expected two tokens "
                                    "separated by one space, got \"" + line + "\"");
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  BpeOptions opt;
  return std::make_unique<BpeModel>(vocab_from_object(vocab_json, vocab_json_path), merges, std::move(opt),
                                    merges_path);
}

}  // namespace vlm::text
