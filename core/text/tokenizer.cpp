#include "text/tokenizer.h"

#include <algorithm>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "text/json_scan.h"
#include "text/byte_trie.h"
#include "text/pipeline.h"
#include "text/sentencepiece_model.h"
#include "text/unicode.h"

namespace vlm {
namespace {

using json = nlohmann::json;
using text::Piece;

struct AddedToken {
  std::string content;
  std::int32_t id = -1;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  std::string normalized_content;  // content after the normalizer (normalized tokens only); what decode shows
};

// Leftmost-longest matcher over the added tokens (what tokenizers builds with aho-corasick).
class TokenMatcher {
 public:
  void add(const std::string& pattern, std::size_t token_index) {
    if (pattern.empty()) return;
    trie_.insert(pattern, static_cast<std::int64_t>(token_index));
    first_byte_[static_cast<unsigned char>(pattern[0])] = true;
    empty_ = false;
  }
  bool empty() const { return empty_; }
  // The longest pattern starting at `pos`: (length, token index) or length 0.
  std::pair<std::size_t, std::size_t> longest_at(std::string_view s, std::size_t pos) const {
    if (!first_byte_[static_cast<unsigned char>(s[pos])]) return {0, 0};
    std::int32_t node = 0;
    std::pair<std::size_t, std::size_t> best{0, 0};
    for (std::size_t k = pos; k < s.size(); ++k) {
      node = trie_.child(node, static_cast<unsigned char>(s[k]));
      if (node < 0) break;
      if (trie_.value(node) >= 0) best = {k + 1 - pos, static_cast<std::size_t>(trie_.value(node))};
    }
    return best;
  }

 private:
  ByteTrie trie_;
  bool first_byte_[256] = {};
  bool empty_ = true;
};

// A stretch of text between added tokens, or an added token (id >= 0).
struct Segment {
  std::string text;
  std::int32_t id = -1;
  bool at_start = false;
};

// tokenizers tests these with the Rust regexes \w$ and ^\w.
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t start = s.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return text::is_word_char(text::next_code_point(s, start));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = 0;
  return text::is_word_char(text::next_code_point(s, i));
}

// Byte offset just after the last non-whitespace character of s (0 if all whitespace).
std::size_t space_leftmost_at_end(std::string_view s) {
  std::size_t i = 0, result = 0;
  while (i < s.size()) {
    const char32_t c = text::next_code_point(s, i);
    if (!text::is_whitespace(c)) result = i;
  }
  return result;
}

// Byte length of the whitespace run at the start of s.
std::size_t space_rightmost_at_start(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t at = i;
    if (!text::is_whitespace(text::next_code_point(s, i))) return at;
  }
  return s.size();
}

std::optional<std::string> token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return std::nullopt;
}

std::string clean_up_tokenization(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : kRules) {
    std::string out;
    std::size_t prev = 0, pos;
    const std::string_view f(from);
    while ((pos = s.find(f, prev)) != std::string::npos) {
      out.append(s, prev, pos - prev);
      out += to;
      prev = pos + f.size();
    }
    out.append(s, prev, std::string::npos);
    s.swap(out);
  }
  return s;
}

}  // namespace

struct Tokenizer::Impl {
  TokenizerOptions options;
  TokenizerSettings config;
  std::string source;  // for error messages

  // tokenizer.json pipeline
  std::unique_ptr<text::Normalizer> normalizer;
  std::unique_ptr<text::PreTokenizer> pre_tokenizer;
  std::unique_ptr<text::Model> model;
  std::unique_ptr<text::PostProcessor> post_processor;
  std::unique_ptr<text::Decoder> decoder;
  std::vector<AddedToken> added;
  std::unordered_map<std::int32_t, std::size_t> added_by_id;
  std::unordered_map<std::string, std::size_t> added_by_content;
  std::unordered_set<std::string> special_contents;
  TokenMatcher raw_matcher, normalized_matcher;

  // tokenizer.model
  std::unique_ptr<SentencePieceModel> spm;

  std::optional<std::int32_t> bos, eos, unk, pad;

  void add_token(AddedToken t) {
    auto it = added_by_content.find(t.content);
    if (it != added_by_content.end()) {
      added[it->second] = t;
      added_by_id[t.id] = it->second;
    } else {
      added_by_content[t.content] = added.size();
      added_by_id[t.id] = added.size();
      added.push_back(t);
    }
    if (t.special) special_contents.insert(t.content);
  }

  void build_matchers() {
    raw_matcher = TokenMatcher();
    normalized_matcher = TokenMatcher();
    for (std::size_t i = 0; i < added.size(); ++i) {
      const AddedToken& t = added[i];
      if (t.normalized) {
        std::string pattern = t.content;
        if (normalizer) normalizer->normalize(pattern);
        added[i].normalized_content = pattern;
        normalized_matcher.add(pattern, i);
      } else {
        raw_matcher.add(t.content, i);
      }
    }
  }

  // tokenizers' AddedVocabulary::find_matches on one segment.
  void split_added(const Segment& seg, const TokenMatcher& matcher, std::vector<Segment>& out) const {
    const std::string& s = seg.text;
    if (matcher.empty() || s.empty()) {
      if (!s.empty()) out.push_back(seg);
      return;
    }
    std::size_t start_offset = 0;
    std::size_t pos = 0;
    auto emit = [&](std::size_t a, std::size_t b, std::int32_t id) {
      if (b <= a) return;
      out.push_back({s.substr(a, b - a), id, seg.at_start && a == 0});
    };
    while (pos < s.size()) {
      auto [len, index] = matcher.longest_at(s, pos);
      if (len == 0) {
        ++pos;
        continue;
      }
      std::size_t start = pos, stop = pos + len;
      pos = stop;  // non-overlapping scan continues after this match, whether it is kept or not
      const AddedToken& t = added[index];
      if (t.single_word) {
        const bool start_space = start == 0 || !ends_with_word(std::string_view(s).substr(0, start));
        const bool stop_space = stop == s.size() || !starts_with_word(std::string_view(s).substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (t.lstrip) start = std::max(space_leftmost_at_end(std::string_view(s).substr(0, start)), start_offset);
      if (t.rstrip) stop += space_rightmost_at_start(std::string_view(s).substr(stop));
      if (start_offset < start) emit(start_offset, start, -1);
      out.push_back({s.substr(start, stop - start), t.id, seg.at_start && start == 0});
      start_offset = stop;
    }
    if (start_offset < s.size()) emit(start_offset, s.size(), -1);
  }

  void encode_valid(std::string_view input, bool add_special, std::vector<std::int32_t>& ids) const {
    if (spm) {
      const std::vector<int> pieces = spm->encode(input);
      if (add_special && config.add_bos_token && bos) ids.push_back(*bos);
      ids.insert(ids.end(), pieces.begin(), pieces.end());
      if (add_special && config.add_eos_token && eos) ids.push_back(*eos);
      return;
    }
    std::vector<Segment> segments;
    split_added({std::string(input), -1, true}, raw_matcher, segments);
    std::vector<Segment> normalized_segments;
    normalized_segments.reserve(segments.size());
    for (Segment& seg : segments) {
      if (seg.id >= 0) {
        normalized_segments.push_back(std::move(seg));
        continue;
      }
      if (normalizer) normalizer->normalize(seg.text);
      split_added(seg, normalized_matcher, normalized_segments);
    }
    std::vector<Piece> pieces;
    for (Segment& seg : normalized_segments) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      pieces.clear();
      pieces.push_back({std::move(seg.text), seg.at_start});
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
      for (const Piece& p : pieces) model->tokenize(p.text, ids);
    }
    if (add_special && post_processor) post_processor->process(ids);
  }

  std::optional<std::int32_t> token_to_id(std::string_view token) const {
    if (spm) {
      const int id = spm->piece_to_id(token);
      if (id == spm->unk_id() && token != spm->id_to_piece(id)) return std::nullopt;
      return id;
    }
    auto it = added_by_content.find(std::string(token));
    if (it != added_by_content.end()) return added[it->second].id;
    return model->token_to_id(token);
  }

  const std::string* id_to_token(std::int32_t id) const {
    auto it = added_by_id.find(id);
    if (it != added_by_id.end()) {
      // tokenizers returns the normalized form of a normalized added token, so the decoder can invert it.
      const AddedToken& t = added[it->second];
      return t.normalized && !t.normalized_content.empty() ? &t.normalized_content : &t.content;
    }
    return model->id_to_token(id);
  }

  void resolve_specials() {
    auto find = [&](const std::optional<std::string>& t) -> std::optional<std::int32_t> {
      if (!t) return std::nullopt;
      return token_to_id(*t);
    };
    bos = find(config.bos_token);
    eos = find(config.eos_token);
    unk = find(config.unk_token);
    pad = find(config.pad_token);
  }
};

namespace {

// Special tokens a transformers 5.x tokenizer class uses when the config does not name them.
std::vector<std::pair<std::string, std::string>> class_default_specials(const std::string& cls) {
  if (cls == "GemmaTokenizer" || cls == "GemmaTokenizerFast")
    return {{"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"},
            {"mask_token", "<mask>"}};
  if (cls == "LlamaTokenizer" || cls == "LlamaTokenizerFast")
    return {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
  if (cls == "T5Tokenizer" || cls == "T5TokenizerFast")
    return {{"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}};
  return {};
}

void read_config(Tokenizer::Impl& impl, const std::string& config_text, const std::string& where) {
  if (config_text.empty()) return;
  json c;
  try {
    c = json::parse(config_text);
  } catch (const json::exception& e) {
    fail(ErrorCode::corrupt_data, where + ": not valid JSON: " + e.what());
  }
  if (!c.is_object()) fail(ErrorCode::corrupt_data, where + ": expected a JSON object");
  TokenizerSettings& cfg = impl.config;
  cfg.tokenizer_class = c.value("tokenizer_class", "");
  if (impl.options.flavor == TokenizerOptions::Flavor::transformers && !impl.spm)
    for (const auto& [key, value] : class_default_specials(cfg.tokenizer_class))
      if (!c.contains(key)) c[key] = value;
  if (c.contains("bos_token")) cfg.bos_token = token_content(c["bos_token"]);
  if (c.contains("eos_token")) cfg.eos_token = token_content(c["eos_token"]);
  if (c.contains("unk_token")) cfg.unk_token = token_content(c["unk_token"]);
  if (c.contains("pad_token")) cfg.pad_token = token_content(c["pad_token"]);
  auto flag = [&](const char* key, bool fallback) {
    auto it = c.find(key);
    return it != c.end() && it->is_boolean() ? it->get<bool>() : fallback;
  };
  cfg.add_bos_token = flag("add_bos_token", cfg.add_bos_token);
  cfg.add_eos_token = flag("add_eos_token", cfg.add_eos_token);
  cfg.clean_up_tokenization_spaces = flag("clean_up_tokenization_spaces", false);
  if (c.contains("model_max_length") && c["model_max_length"].is_number())
    cfg.model_max_length = c["model_max_length"].get<double>();
  cfg.padding_side = c.value("padding_side", cfg.padding_side);
  // transformers' LlamaTokenizer class declares padding_side = "left" when the config does not say.
  // (The config here already carries the class's default special tokens, added above.)
  if (!c.contains("padding_side") && impl.options.flavor == TokenizerOptions::Flavor::transformers &&
      (cfg.tokenizer_class == "LlamaTokenizer" || cfg.tokenizer_class == "LlamaTokenizerFast"))
    cfg.padding_side = "left";
  if (c.contains("chat_template")) {
    const json& t = c["chat_template"];
    if (t.is_string()) {
      cfg.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // a list of named templates: take "default"
      for (const json& item : t)
        if (item.value("name", "") == "default") cfg.chat_template = item.value("template", "");
    }
  }
  // Tokens declared only in the config are added as transformers does.
  bool changed = false;
  if (c.contains("added_tokens_decoder") && c["added_tokens_decoder"].is_object() && !impl.spm) {
    for (auto it = c["added_tokens_decoder"].begin(); it != c["added_tokens_decoder"].end(); ++it) {
      const json& t = it.value();
      AddedToken a;
      try {
        a.id = std::stoi(it.key());
      } catch (const std::exception&) {
        fail(ErrorCode::corrupt_data, where + ": added_tokens_decoder key \"" + it.key() + "\" is not an id");
      }
      a.content = t.value("content", "");
      if (a.content.empty() || impl.added_by_id.count(a.id)) continue;
      a.special = t.value("special", false);
      a.normalized = t.value("normalized", !a.special);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.single_word = t.value("single_word", false);
      impl.add_token(a);
      changed = true;
    }
  }
  // Special tokens named by the config (T5's <extra_id_N> among them) that the vocabulary lacks are appended
  // after it, in order, as transformers' add_special_tokens does.
  if (impl.options.flavor == TokenizerOptions::Flavor::transformers && !impl.spm && impl.model) {
    std::vector<json> wanted;
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
      if (c.contains(key) && !c[key].is_null()) wanted.push_back(c[key]);
    if (c.contains("additional_special_tokens") && c["additional_special_tokens"].is_array())
      for (const json& t : c["additional_special_tokens"]) wanted.push_back(t);
    if (c.contains("extra_ids") && c["extra_ids"].is_number_integer() &&
        !(c.contains("additional_special_tokens") && c["additional_special_tokens"].is_array() &&
          !c["additional_special_tokens"].empty()))
      for (int k = 0; k < c["extra_ids"].get<int>(); ++k) wanted.push_back("<extra_id_" + std::to_string(k) + ">");
    for (const json& t : wanted) {
      const auto content = token_content(t);
      if (!content || content->empty() || impl.added_by_content.count(*content)) continue;
      AddedToken a;
      a.content = *content;
      a.special = true;
      a.normalized = t.is_object() ? t.value("normalized", false) : false;
      a.lstrip = t.is_object() && t.value("lstrip", false);
      a.rstrip = t.is_object() && t.value("rstrip", false);
      a.single_word = t.is_object() && t.value("single_word", false);
      if (auto id = impl.model->token_to_id(a.content)) {
        a.id = *id;
      } else {
        std::int32_t next = static_cast<std::int32_t>(impl.model->vocab_size());
        for (const AddedToken& existing : impl.added) next = std::max(next, existing.id + 1);
        a.id = next;
      }
      impl.add_token(a);
      changed = true;
    }
  }
  if (changed) impl.build_matchers();
}

// transformers 5.x T5Tokenizer keeps only the vocab and the SentencePiece charsmap of tokenizer.json.
void apply_t5_rules(json& tj) {
  json precompiled;
  const json& n = tj.contains("normalizer") ? tj["normalizer"] : json();
  if (n.is_object() && n.value("type", "") == "Precompiled") precompiled = n;
  if (n.is_object() && n.value("type", "") == "Sequence" && n.contains("normalizers"))
    for (const json& step : n["normalizers"])
      if (step.is_object() && step.value("type", "") == "Precompiled" && precompiled.is_null()) precompiled = step;
  tj["normalizer"] = precompiled;
  const json metaspace = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"},
                          {"split", true}};
  tj["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({{{"type", "WhitespaceSplit"}}, metaspace})}};
  tj["decoder"] = metaspace;
  tj["model"]["unk_id"] = 2;
  tj["model"]["byte_fallback"] = false;
}

// transformers 5.x LlamaTokenizer rebuilds the pipeline around the file's vocab and merges.
void apply_transformers_class_rules(json& tj, const std::string& config_text) {
  if (config_text.empty()) return;
  json c = json::parse(config_text, nullptr, false);
  if (!c.is_object()) return;
  const std::string cls = c.value("tokenizer_class", "");
  if ((cls == "T5Tokenizer" || cls == "T5TokenizerFast") && tj.contains("model") &&
      tj["model"].value("type", "") == "Unigram") {
    apply_t5_rules(tj);
    return;
  }
  if ((cls == "GemmaTokenizer" || cls == "GemmaTokenizerFast") && tj.contains("model") &&
      tj["model"].value("type", "BPE") == "BPE") {
    tj["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
    tj["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"},
                           {"invert", false}};
    tj["decoder"] = {{"type", "Sequence"},
                     {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                               {{"type", "ByteFallback"}},
                                               {{"type", "Fuse"}}})}};
    json& m = tj["model"];
    m["fuse_unk"] = true;
    m["byte_fallback"] = true;
    m["dropout"] = nullptr;
    m["unk_token"] = token_content(c.contains("unk_token") ? c["unk_token"] : json("<unk>")).value_or("<unk>");
    return;
  }
  if (cls != "LlamaTokenizer" && cls != "LlamaTokenizerFast") return;
  if (!tj.contains("model") || tj["model"].value("type", "BPE") != "BPE") return;
  const bool add_prefix_space = c.contains("add_prefix_space") && c["add_prefix_space"].is_boolean()
                                    ? c["add_prefix_space"].get<bool>()
                                    : true;
  const bool legacy = c.contains("legacy") && c["legacy"].is_boolean() ? c["legacy"].get<bool>() : false;
  const std::string scheme = add_prefix_space ? (legacy ? "always" : "first") : "never";
  tj["normalizer"] = nullptr;
  tj["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", scheme},
                         {"split", false}};
  json decoders = json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                               {{"type", "ByteFallback"}},
                               {{"type", "Fuse"}}});
  if (add_prefix_space) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  tj["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  tj["model"]["unk_token"] = nullptr;
}

std::unique_ptr<Tokenizer::Impl> build_from_json(const std::string& tokenizer_json, const std::string& config_text,
                                                 const TokenizerOptions& options, const std::string& where) {
  // The model's vocab and merges go through the fast scanner; every other section through nlohmann_json.
  json tj = json::object();
  text::ModelTables tables;
  text::JsonScanner in(tokenizer_json, where);
  auto parse_value = [&](const std::string& key) {
    const std::string_view raw = in.value_text();
    try {
      return json::parse(raw.begin(), raw.end());
    } catch (const json::exception& e) {
      fail(ErrorCode::corrupt_data, where + ": the value of \"" + key + "\" is not valid JSON: " + e.what());
    }
  };
  if (in.peek() != '{') fail(ErrorCode::corrupt_data, where + ": not valid JSON: expected an object");
  in.expect('{');
  if (!in.consume('}')) {
    do {
      const std::string key = in.parse_string();
      in.expect(':');
      if (key == "model" && in.peek() == '{') {
        json model = json::object();
        in.expect('{');
        if (!in.consume('}')) {
          do {
            const std::string k = in.parse_string();
            in.expect(':');
            if (k == "vocab" && in.peek() == '{') {
              tables.vocab = text::scan_vocab_object(in);
              tables.has_vocab = true;
              model[k] = json::object();
            } else if (k == "merges" && in.peek() == '[') {
              tables.merges = text::scan_merges(in);
              tables.has_merges = true;
              model[k] = json::array();
            } else {
              model[k] = parse_value("model." + k);
            }
          } while (in.consume(','));
        }
        in.expect('}');
        tj[key] = std::move(model);
      } else {
        tj[key] = parse_value(key);
      }
    } while (in.consume(','));
  }
  in.expect('}');
  if (in.peek() != '\0') fail(ErrorCode::corrupt_data, where + ": unexpected text after the JSON object");
  if (!tj.contains("model"))
    fail(ErrorCode::corrupt_data, where + ": not a tokenizer.json (no \"model\" section)");
  if (options.flavor == TokenizerOptions::Flavor::transformers) apply_transformers_class_rules(tj, config_text);
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->options = options;
  impl->source = where;
  auto section = [&](const char* key) -> const json& {
    static const json null_json;
    auto it = tj.find(key);
    return it == tj.end() ? null_json : *it;
  };
  try {
    impl->normalizer = text::make_normalizer(section("normalizer"), "normalizer");
    impl->pre_tokenizer = text::make_pre_tokenizer(section("pre_tokenizer"), "pre_tokenizer");
    impl->model = text::make_model(tj["model"], "model", &tables);
    impl->post_processor = text::make_post_processor(section("post_processor"), "post_processor");
    impl->decoder = text::make_decoder(section("decoder"), "decoder");
    const json& added = section("added_tokens");
    for (std::size_t i = 0; added.is_array() && i < added.size(); ++i) {
      const json& t = added[i];
      AddedToken a;
      a.id = t.at("id").get<std::int32_t>();
      a.content = t.at("content").get<std::string>();
      a.special = t.value("special", false);
      a.normalized = t.value("normalized", !a.special);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.single_word = t.value("single_word", false);
      impl->add_token(a);
    }
  } catch (const json::exception& e) {
    fail(ErrorCode::corrupt_data, where + ": malformed section: " + e.what());
  } catch (const Error& e) {
    throw Error(e.code(), where + ": " + e.what());
  }
  impl->build_matchers();
  read_config(*impl, config_text, where + " (tokenizer_config.json)");
  impl->resolve_specials();
  return impl;
}

std::string read_optional(const std::string& path) { return path_exists(path) ? read_file(path) : std::string(); }

std::string parent_dir(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// A vocab.json + merges.txt pair. Without a tokenizer_config.json (or with the raw flavor) this is
// GPT2TokenizerFast's pipeline with "<|endoftext|>" as the special token. With a config and the transformers
// flavor it is what transformers 5.x GPT2Tokenizer builds: the config's special tokens (bos, eos, unk, sep, pad,
// cls, mask, additional; default "<|endoftext|>" for bos/eos/unk) become added tokens, appended after the vocab
// when missing from it, and add_bos_token / add_eos_token become a TemplateProcessing post-processor.
std::unique_ptr<Tokenizer::Impl> build_gpt2_pair(const std::string& vocab, const std::string& merges,
                                                 const std::string& config_text, const TokenizerOptions& options) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->options = options;
  impl->source = vocab;
  impl->model = text::make_bpe_from_files(vocab, merges);
  const std::string config_path = parent_dir(vocab) + "/tokenizer_config.json";
  json c = config_text.empty() ? json() : json::parse(config_text, nullptr, false);
  if (c.is_discarded()) fail(ErrorCode::corrupt_data, config_path + ": not valid JSON");
  const std::string cls = c.is_object() ? c.value("tokenizer_class", "") : "";
  const bool transformers_rules = options.flavor == TokenizerOptions::Flavor::transformers && c.is_object() &&
                                  (cls.empty() || cls == "GPT2Tokenizer" || cls == "GPT2TokenizerFast");
  const bool add_prefix_space =
      transformers_rules && c.contains("add_prefix_space") && c["add_prefix_space"].is_boolean() &&
      c["add_prefix_space"].get<bool>();
  impl->pre_tokenizer = text::make_pre_tokenizer(
      json{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"use_regex", true}}, "pre_tokenizer");
  impl->decoder = text::make_decoder(json{{"type", "ByteLevel"}}, "decoder");
  if (!transformers_rules) {
    impl->post_processor = text::make_post_processor(json{{"type", "ByteLevel"}}, "post_processor");
    if (auto id = impl->model->token_to_id("<|endoftext|>")) {
      AddedToken eot;
      eot.content = "<|endoftext|>";
      eot.id = *id;
      eot.special = true;
      eot.normalized = false;
      impl->add_token(eot);
      impl->config.bos_token = impl->config.eos_token = impl->config.unk_token = "<|endoftext|>";
    }
  } else {
    std::int32_t next_id = static_cast<std::int32_t>(impl->model->vocab_size());
    auto add_special = [&](const json& j) -> std::optional<std::string> {
      AddedToken t;
      if (j.is_string()) {
        t.content = j.get<std::string>();
        t.normalized = false;
      } else if (j.is_object() && j.contains("content")) {
        t.content = j["content"].get<std::string>();
        t.normalized = j.value("normalized", false);
        t.lstrip = j.value("lstrip", false);
        t.rstrip = j.value("rstrip", false);
        t.single_word = j.value("single_word", false);
      } else {
        return std::nullopt;
      }
      if (t.content.empty()) return std::nullopt;
      t.special = true;
      if (impl->added_by_content.count(t.content)) return t.content;
      auto id = impl->model->token_to_id(t.content);
      t.id = id ? *id : next_id++;
      impl->add_token(t);
      return t.content;
    };
    const json eot = "<|endoftext|>";
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
      const bool defaults_to_eot = std::string(key) == "bos_token" || std::string(key) == "eos_token" ||
                                   std::string(key) == "unk_token";
      const json& value = c.contains(key) ? c[key] : (defaults_to_eot ? eot : json());
      add_special(value);
    }
    if (c.contains("additional_special_tokens") && c["additional_special_tokens"].is_array())
      for (const json& t : c["additional_special_tokens"]) add_special(t);
    auto content_of = [&](const char* key, bool defaults_to_eot) -> std::optional<std::string> {
      if (c.contains(key)) return token_content(c[key]);
      if (defaults_to_eot) return std::string("<|endoftext|>");
      return std::nullopt;
    };
    json single = json::array();
    json specials = json::object();
    auto add_template_token = [&](const std::optional<std::string>& content) {
      if (!content) return;
      const std::int32_t id = impl->added[impl->added_by_content.at(*content)].id;
      single.push_back({{"SpecialToken", {{"id", *content}, {"type_id", 0}}}});
      specials[*content] = {{"id", *content}, {"ids", {id}}, {"tokens", {*content}}};
    };
    if (c.value("add_bos_token", false)) add_template_token(content_of("bos_token", true));
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (c.value("add_eos_token", false)) add_template_token(content_of("eos_token", true));
    impl->post_processor = text::make_post_processor(
        json{{"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}}, "post_processor");
    impl->config.bos_token = content_of("bos_token", true);
    impl->config.eos_token = content_of("eos_token", true);
    impl->config.unk_token = content_of("unk_token", true);
  }
  impl->build_matchers();
  read_config(*impl, config_text, config_path);
  impl->resolve_specials();
  return impl;
}

std::unique_ptr<Tokenizer::Impl> build_sentencepiece(const std::string& path, const std::string& config_text) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->source = path;
  impl->spm = SentencePieceModel::load(path);
  // Defaults of transformers' SentencePiece tokenizers: BOS added, EOS not.
  auto piece = [&](int id) -> std::optional<std::string> {
    if (id < 0) return std::nullopt;
    return impl->spm->id_to_piece(id);
  };
  impl->config.bos_token = piece(impl->spm->bos_id());
  impl->config.eos_token = piece(impl->spm->eos_id());
  impl->config.unk_token = piece(impl->spm->unk_id());
  impl->config.pad_token = piece(impl->spm->pad_id());
  impl->config.add_bos_token = impl->spm->bos_id() >= 0;
  read_config(*impl, config_text, parent_dir(path) + "/tokenizer_config.json");
  impl->resolve_specials();
  return impl;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

namespace {
// Malformed files surface as vlm::Error(corrupt_data) naming the file, whatever part of the reader notices.
template <typename F>
std::unique_ptr<Tokenizer::Impl> guarded(const std::string& where, F build) {
  try {
    return build();
  } catch (const Error&) {
    throw;
  } catch (const json::exception& e) {
    fail(ErrorCode::corrupt_data, where + ": unexpected JSON content: " + e.what());
  } catch (const std::invalid_argument& e) {
    fail(ErrorCode::corrupt_data, where + ": unexpected content: " + e.what());
  } catch (const std::out_of_range& e) {
    fail(ErrorCode::corrupt_data, where + ": value out of range: " + e.what());
  } catch (const std::length_error& e) {
    fail(ErrorCode::corrupt_data, where + ": size out of range: " + e.what());
  }
}
}  // namespace

std::shared_ptr<Tokenizer> Tokenizer::load(const std::string& folder_or_file, const TokenizerOptions& options) {
  return std::shared_ptr<Tokenizer>(new Tokenizer(guarded(folder_or_file, [&] { return load_impl(folder_or_file, options); })));
}

std::unique_ptr<Tokenizer::Impl> Tokenizer::load_impl(const std::string& folder_or_file, const TokenizerOptions& options) {
  std::unique_ptr<Impl> impl;
  if (is_directory(folder_or_file)) {
    const std::string& dir = folder_or_file;
    const std::string config_text = read_optional(join_path(dir, "tokenizer_config.json"));
    if (path_exists(join_path(dir, "tokenizer.json"))) {
      const std::string path = join_path(dir, "tokenizer.json");
      impl = build_from_json(read_file(path), config_text, options, path);
    } else if (path_exists(join_path(dir, "vocab.json")) && path_exists(join_path(dir, "merges.txt"))) {
      impl = build_gpt2_pair(join_path(dir, "vocab.json"), join_path(dir, "merges.txt"), config_text, options);
    } else if (path_exists(join_path(dir, "tokenizer.model"))) {
      impl = build_sentencepiece(join_path(dir, "tokenizer.model"), config_text);
    } else {
      fail(ErrorCode::not_found, dir + ": no tokenizer.json, vocab.json + merges.txt or tokenizer.model in this folder");
    }
  } else if (!path_exists(folder_or_file)) {
    fail(ErrorCode::not_found, folder_or_file + ": no such tokenizer file or folder");
  } else if (ends_with(folder_or_file, ".model")) {
    impl = build_sentencepiece(folder_or_file, "");
  } else if (ends_with(folder_or_file, "vocab.json")) {
    const std::string merges = join_path(parent_dir(folder_or_file), "merges.txt");
    if (!path_exists(merges)) fail(ErrorCode::not_found, merges + ": merges.txt must sit next to " + folder_or_file);
    impl = build_gpt2_pair(folder_or_file, merges, "", options);
  } else {
    impl = build_from_json(read_file(folder_or_file), "", options, folder_or_file);
  }
  impl->options = options;
  return impl;
}

std::shared_ptr<Tokenizer> Tokenizer::from_json(const std::string& tokenizer_json, const std::string& config_json,
                                                const TokenizerOptions& options) {
  const std::string where = "tokenizer.json (in memory)";
  return std::shared_ptr<Tokenizer>(
      new Tokenizer(guarded(where, [&] { return build_from_json(tokenizer_json, config_json, options, where); })));
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view input, bool add_special_tokens) const {
  std::vector<std::int32_t> ids;
  if (text::is_valid_utf8(input)) {
    impl_->encode_valid(input, add_special_tokens, ids);
  } else {
    const std::string fixed = text::to_valid_utf8(input);
    impl_->encode_valid(fixed, add_special_tokens, ids);
  }
  return ids;
}

std::vector<std::int32_t> Tokenizer::encode_strict(std::string_view input, bool add_special_tokens) const {
  std::size_t bad = 0;
  if (!text::is_valid_utf8(input, &bad))
    fail(ErrorCode::invalid_argument, "text to tokenize is not valid UTF-8 (first invalid byte at offset " +
                                          std::to_string(bad) + "); decode it as UTF-8 first or use encode()");
  std::vector<std::int32_t> ids;
  impl_->encode_valid(input, add_special_tokens, ids);
  return ids;
}

std::vector<std::vector<std::int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                               bool add_special_tokens, int num_threads) const {
  std::vector<std::vector<std::int32_t>> out(texts.size());
  std::size_t threads = num_threads > 0 ? static_cast<std::size_t>(num_threads)
                                        : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, texts.size());
  if (threads <= 1) {
    for (std::size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens);
    return out;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (std::size_t i = t; i < texts.size(); i += threads) out[i] = encode(texts[i], add_special_tokens);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, const DecodeOptions& options) const {
  for (std::int32_t id : ids)
    if (id < 0) fail(ErrorCode::invalid_argument, "decode: negative token id " + std::to_string(id));
  const Impl& m = *impl_;
  // The raw flavor is tokenizers' Tokenizer.from_file, whose decode never cleans up: the config's setting is
  // transformers' alone. An explicit DecodeOptions value applies to both flavors.
  const bool configured_cleanup =
      m.options.flavor == TokenizerOptions::Flavor::transformers && m.config.clean_up_tokenization_spaces;
  const bool cleanup = options.clean_up_tokenization_spaces.value_or(configured_cleanup);
  std::string text;
  if (m.spm) {
    std::vector<int> kept;
    for (std::int32_t id : ids) {
      if (id >= m.spm->piece_size()) continue;
      if (options.skip_special_tokens && (m.spm->is_control(id) || m.spm->is_unknown(id))) continue;
      kept.push_back(id);
    }
    text = m.spm->decode(kept);
  } else {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (std::int32_t id : ids) {
      const std::string* t = m.id_to_token(id);
      if (!t) continue;
      if (options.skip_special_tokens && m.special_contents.count(*t)) continue;
      tokens.push_back(*t);
    }
    if (m.decoder) {
      m.decoder->decode_chain(tokens);
      for (const auto& t : tokens) text += t;
    } else {
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (i) text += ' ';
        text += tokens[i];
      }
    }
  }
  // transformers 5.x ignores the cleanup for BPE models (it would corrupt their output).
  const bool skip_for_bpe = m.options.flavor == TokenizerOptions::Flavor::transformers && m.model &&
                            m.model->kind() == "BPE" && !options.clean_up_tokenization_spaces.has_value();
  if (cleanup && !skip_for_bpe) text = clean_up_tokenization(std::move(text));
  return text;
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const { return impl_->token_to_id(token); }

std::optional<std::string> Tokenizer::id_to_token(std::int32_t id) const {
  if (impl_->spm) {
    if (id < 0 || id >= impl_->spm->piece_size()) return std::nullopt;
    return impl_->spm->id_to_piece(id);
  }
  const std::string* t = impl_->id_to_token(id);
  if (!t) return std::nullopt;
  return *t;
}

std::size_t Tokenizer::vocab_size() const {
  if (impl_->spm) return static_cast<std::size_t>(impl_->spm->piece_size());
  std::size_t n = impl_->model->vocab_size();
  for (const AddedToken& t : impl_->added)
    if (!impl_->model->token_to_id(t.content)) ++n;
  return n;
}

bool Tokenizer::is_special(std::int32_t id) const {
  if (impl_->spm) return id >= 0 && id < impl_->spm->piece_size() && impl_->spm->is_control(id);
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

std::vector<std::int32_t> Tokenizer::special_ids() const {
  std::set<std::int32_t> ids;
  if (impl_->spm) {
    for (int i = 0; i < impl_->spm->piece_size(); ++i)
      if (impl_->spm->is_control(i)) ids.insert(i);
  }
  for (const AddedToken& t : impl_->added)
    if (t.special) ids.insert(t.id);
  return {ids.begin(), ids.end()};
}

std::optional<std::int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<std::int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<std::int32_t> Tokenizer::unk_id() const { return impl_->unk; }
std::optional<std::int32_t> Tokenizer::pad_id() const { return impl_->pad; }
const TokenizerSettings& Tokenizer::config() const { return impl_->config; }
std::string Tokenizer::model_kind() const { return impl_->spm ? "SentencePiece" : impl_->model->kind(); }

// ------------------------------------------------------------------------------------------ streaming decode

IncrementalDecoder::IncrementalDecoder(std::shared_ptr<const Tokenizer> tokenizer, DecodeOptions options)
    : tokenizer_(std::move(tokenizer)), options_(options) {
  if (!tokenizer_) fail(ErrorCode::invalid_argument, "IncrementalDecoder needs a tokenizer (got null)");
}

namespace {
bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

std::string IncrementalDecoder::push(std::int32_t id) {
  ids_.push_back(id);
  const std::vector<std::int32_t> prefix(ids_.begin() + prefix_offset_, ids_.begin() + read_offset_);
  const std::vector<std::int32_t> window(ids_.begin() + prefix_offset_, ids_.end());
  const std::string prefix_text = tokenizer_->decode(prefix, options_);
  const std::string new_text = tokenizer_->decode(window, options_);
  // Hold back while the newest tokens end inside a character (decoded as U+FFFD for now).
  if (new_text.size() <= prefix_text.size() || ends_with_replacement(new_text)) return std::string();
  std::size_t cut = prefix_text.size();
  while (cut < new_text.size() && (static_cast<unsigned char>(new_text[cut]) & 0xC0) == 0x80) ++cut;
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return new_text.substr(cut);
}

std::string IncrementalDecoder::flush() {
  std::string out;
  if (read_offset_ < ids_.size()) {
    const std::vector<std::int32_t> prefix(ids_.begin() + prefix_offset_, ids_.begin() + read_offset_);
    const std::vector<std::int32_t> window(ids_.begin() + prefix_offset_, ids_.end());
    const std::string prefix_text = tokenizer_->decode(prefix, options_);
    const std::string new_text = tokenizer_->decode(window, options_);
    std::size_t cut = std::min(prefix_text.size(), new_text.size());
    while (cut < new_text.size() && (static_cast<unsigned char>(new_text[cut]) & 0xC0) == 0x80) ++cut;
    out = new_text.substr(cut);
  }
  reset();
  return out;
}

void IncrementalDecoder::reset() {
  ids_.clear();
  prefix_offset_ = read_offset_ = 0;
}

}  // namespace vlm
