// Unit tests: UTF-8 handling, regex semantics, errors, batch encoding, SentencePiece models.
#include <doctest/doctest.h>

#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <unistd.h>

#include "base/error.h"
#include "base/fs.h"
#include "fixture_reader.h"
#include "text/regex.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace {

using vlm::ErrorCode;
using vlm::Tokenizer;

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const vlm::Error& e) {
    return e.code();
  }
  return ErrorCode::internal;
}

std::string temp_dir(const std::string& name) {
  const std::string dir = "/tmp/vlm_test_text_" + std::to_string(::getpid()) + "_" + name;
  vlm::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("invalid UTF-8 is replaced like Python's decode(errors='replace')") {
  using vlm::text::to_valid_utf8;
  // Expected values printed by CPython 3.11: bytes.decode("utf-8", "replace").encode("utf-8").
  CHECK(to_valid_utf8("a\xff" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(to_valid_utf8("\xe2\x82") == "\xEF\xBF\xBD");
  CHECK(to_valid_utf8("\xe2\x82" "a") == "\xEF\xBF\xBD" "a");
  CHECK(to_valid_utf8("\xf0\x9f\x98") == "\xEF\xBF\xBD");
  CHECK(to_valid_utf8("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(to_valid_utf8("\xc0\xaf") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(to_valid_utf8("\xf4\x90\x80\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(to_valid_utf8("ok\xe2") == "ok\xEF\xBF\xBD");
  CHECK(to_valid_utf8("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");
  std::size_t bad = 0;
  CHECK_FALSE(vlm::text::is_valid_utf8("abc\x80", &bad));
  CHECK(bad == 3);
}

TEST_CASE("encode accepts invalid UTF-8 by replacement; encode_strict rejects it") {
  auto tok = Tokenizer::load(vlm::test::text_fixture("tiny_bytelevel/tokenizer.json"));
  const std::string broken = std::string("caf\xC3") + " ok \xFF\xFE";
  CHECK(tok->encode(broken) == tok->encode(vlm::text::to_valid_utf8(broken)));
  CHECK(code_of([&] { tok->encode_strict(broken); }) == ErrorCode::invalid_argument);
  CHECK(tok->encode_strict("fine") == tok->encode("fine"));
  // Every single byte and random byte strings go through without a crash.
  for (int b = 0; b < 256; ++b) CHECK_NOTHROW(tok->encode(std::string(1, static_cast<char>(b)) + "x"));
  std::uint32_t state = 12345;
  for (int n = 0; n < 300; ++n) {
    std::string s;
    for (int k = 0; k < 40; ++k) {
      state = state * 1664525u + 1013904223u;
      s += static_cast<char>(state >> 24);
    }
    const auto ids = tok->encode(s);
    CHECK(vlm::text::is_valid_utf8(tok->decode(ids)));
  }
}

TEST_CASE("regex find_all follows Oniguruma's iteration rules") {
  std::vector<std::pair<std::size_t, std::size_t>> m;
  vlm::text::Regex("a*").find_all("ab", m);
  CHECK(m == std::vector<std::pair<std::size_t, std::size_t>>{{0, 1}, {2, 2}});
  m.clear();
  vlm::text::Regex("\\s+(?!\\S)|\\s+").find_all("a   b", m);
  CHECK(m == std::vector<std::pair<std::size_t, std::size_t>>{{1, 3}, {3, 4}});
  m.clear();
  vlm::text::Regex("\\s").find_all("x\xC2\x85y", m);  // U+0085 is White_Space (Oniguruma), not in PCRE2's \s
  CHECK(m == std::vector<std::pair<std::size_t, std::size_t>>{{1, 3}});
  m.clear();
  vlm::text::Regex("\\p{L}+").find_all("\xEC\x95\x88\xEB\x85\x95 42", m);
  CHECK(m == std::vector<std::pair<std::size_t, std::size_t>>{{0, 6}});
  CHECK(code_of([] { vlm::text::Regex("(unclosed"); }) == ErrorCode::unsupported);
}

TEST_CASE("bad tokenizer files give clear errors") {
  CHECK(code_of([] { Tokenizer::load("/nonexistent/tokenizer.json"); }) == ErrorCode::not_found);
  const std::string empty = temp_dir("empty");
  CHECK(code_of([&] { Tokenizer::load(empty); }) == ErrorCode::not_found);
  ::rmdir(empty.c_str());
  CHECK(code_of([] { Tokenizer::from_json("{not json"); }) == ErrorCode::corrupt_data);
  CHECK(code_of([] { Tokenizer::from_json("{\"version\": \"1.0\"}"); }) == ErrorCode::corrupt_data);
  const std::string minimal_bpe =
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "normalizer": NORM})";
  auto with = [&](const std::string& norm) {
    std::string s = minimal_bpe;
    s.replace(s.find("NORM"), 4, norm);
    return s;
  };
  CHECK(Tokenizer::from_json(with("null"))->encode("abab") == std::vector<std::int32_t>{2, 2});
  try {
    Tokenizer::from_json(with(R"({"type": "NmtNormalizer"})"));
    FAIL("expected an error");
  } catch (const vlm::Error& e) {
    CHECK(e.code() == ErrorCode::unsupported);
    CHECK(std::string(e.what()).find("NmtNormalizer") != std::string::npos);
  }
  // A truncated or non-base64 SentencePiece charsmap is reported, not read out of bounds.
  CHECK(code_of([&] { Tokenizer::from_json(with(R"({"type": "Precompiled", "precompiled_charsmap": "AAA"})")); }) ==
        ErrorCode::corrupt_data);
  CHECK(code_of([&] { Tokenizer::from_json(with(R"({"type": "Precompiled", "precompiled_charsmap": "!!"})")); }) ==
        ErrorCode::corrupt_data);
  CHECK(code_of([&] {
          Tokenizer::from_json(with(R"({"type": "Precompiled", "precompiled_charsmap": "/////w=="})"));
        }) == ErrorCode::corrupt_data);
  CHECK(code_of([&] {
          Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})");
        }) == ErrorCode::corrupt_data);
  CHECK(code_of([&] {
          Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}})");
        }) == ErrorCode::unsupported);
  auto tok = Tokenizer::from_json(with("null"));
  CHECK(code_of([&] { tok->decode({0, -1}); }) == ErrorCode::invalid_argument);
  CHECK(tok->decode({0, 99, 1}) == "a b");  // unknown ids are skipped; no decoder joins with spaces
}

TEST_CASE("encode_batch equals encode, in order, with threads") {
  auto tok = Tokenizer::load(vlm::test::text_fixture("tiny_metaspace_bpe/tokenizer.json"));
  const auto rows = vlm::test::read_jsonl_gz(vlm::test::text_fixture("corpus.jsonl.gz"));
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < 600; ++i) texts.push_back(rows[i].get<std::string>());
  const auto batch = tok->encode_batch(texts, true, 2);
  REQUIRE(batch.size() == texts.size());
  std::size_t same = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) same += batch[i] == tok->encode(texts[i]);
  CHECK(same == texts.size());
}

TEST_CASE("added token flags: lstrip, rstrip, single_word, normalized") {
  auto tok = Tokenizer::load(vlm::test::text_fixture("tiny_bytelevel/tokenizer.json"));
  const auto mask = tok->token_to_id("<mask>").value();
  const auto dear = tok->token_to_id("Dear").value();
  // lstrip: the spaces before <mask> belong to the token.
  const auto a = tok->encode("x   <mask>", false);
  REQUIRE(!a.empty());
  CHECK(a.back() == mask);
  CHECK(a.size() == tok->encode("x", false).size() + 1);
  // single_word: "Dear" inside a word is not the added token.
  const auto b = tok->encode("Dear friend", false);
  CHECK(b.front() == dear);
  const auto c = tok->encode("Deary", false);
  CHECK(std::find(c.begin(), c.end(), dear) == c.end());
  CHECK(tok->is_special(mask));
  CHECK_FALSE(tok->is_special(dear));
}

TEST_CASE("SentencePiece .model files load through the sentencepiece library") {
  const std::string dir = temp_dir("spm");
  const std::string corpus_path = dir + "/corpus.txt";
  {
    const auto rows = vlm::test::read_jsonl_gz(vlm::test::text_fixture("corpus.jsonl.gz"));
    std::string text;
    for (std::size_t i = 0; i < 3000; ++i) {
      std::string line = rows[i].get<std::string>();
      bool plain = true;  // keep the alphabet small: ASCII lines only
      for (unsigned char ch : line) plain &= ch < 0x80;
      if (!plain) continue;
      for (char& ch : line)
        if (ch == '\n' || ch == '\r') ch = ' ';
      text += line + "\n";
    }
    vlm::write_file_atomic(corpus_path, text);
  }
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + corpus_path + " --model_prefix=" + dir + "/tokenizer --vocab_size=600 --model_type=bpe "
      "--byte_fallback=true --num_threads=1 --minloglevel=2 --character_coverage=1.0");
  REQUIRE_MESSAGE(status.ok(), status.ToString());
  auto tok = Tokenizer::load(dir);  // finds tokenizer.model
  CHECK(tok->model_kind() == "SentencePiece");
  sentencepiece::SentencePieceProcessor spm;
  REQUIRE(spm.Load(dir + "/tokenizer.model").ok());
  for (const std::string text : {"Hello world", "안녕하세요 世界 🤷🏽‍♀️", "  two  spaces\tand tab"}) {
    std::vector<int> want;
    REQUIRE(spm.Encode(text, &want).ok());
    auto ids = tok->encode(text, false);
    CHECK(std::vector<int>(ids.begin(), ids.end()) == want);
    auto with_bos = tok->encode(text, true);
    REQUIRE(!with_bos.empty());
    CHECK(with_bos.front() == spm.bos_id());
    std::string decoded;
    REQUIRE(spm.Decode(want, &decoded).ok());
    CHECK(tok->decode(ids) == decoded);
    CHECK(tok->decode(with_bos, {true, std::nullopt}) == decoded);
  }
  CHECK(tok->vocab_size() == 600);
  CHECK(tok->bos_id() == std::optional<std::int32_t>(spm.bos_id()));
  CHECK(tok->id_to_token(spm.bos_id()).value() == "<s>");
  CHECK(tok->token_to_id("<s>") == std::optional<std::int32_t>(spm.bos_id()));
  CHECK_FALSE(tok->token_to_id("no-such-piece-xyz").has_value());
  for (const char* f : {"/corpus.txt", "/tokenizer.model", "/tokenizer.vocab"}) std::remove((dir + f).c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("decode: clean_up_tokenization_spaces as transformers applies it") {
  const std::string json_text = R"({"model": {"type": "WordLevel", "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "hello": 1, ",": 2, "world": 3, "!": 4, "do": 5, "n't": 6, "'s": 7, "it": 8}}})";
  auto tok = Tokenizer::from_json(json_text);
  const std::vector<std::int32_t> ids = {1, 2, 3, 4, 5, 6, 8, 7};
  CHECK(tok->decode(ids) == "hello , world ! do n't it 's");  // the config default (no config: false)
  CHECK(tok->decode(ids, {false, true}) == "hello, world! don't it's");
  // transformers 5.x skips the cleanup for BPE models unless the caller asks for it explicitly.
  auto bpe = Tokenizer::from_json(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, ".": 1}, "merges": []}})", R"({"clean_up_tokenization_spaces": true})");
  CHECK(bpe->config().clean_up_tokenization_spaces);
  CHECK(bpe->decode({0, 1}) == "a .");
  CHECK(bpe->decode({0, 1}, {false, true}) == "a.");
}

TEST_CASE("decode: the raw flavor never applies the config's clean_up_tokenization_spaces") {
  // tokenizers' Tokenizer.from_file has no cleanup step; only transformers reads the config's flag.
  const std::string json_text = R"({"model": {"type": "WordLevel", "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "hello": 1, ",": 2, "world": 3, "!": 4}}})";
  const std::string config = R"({"clean_up_tokenization_spaces": true})";
  const std::vector<std::int32_t> ids = {1, 2, 3, 4};
  auto transformers = Tokenizer::from_json(json_text, config);
  CHECK(transformers->decode(ids) == "hello, world!");
  vlm::TokenizerOptions raw_options;
  raw_options.flavor = vlm::TokenizerOptions::Flavor::raw;
  auto raw = Tokenizer::from_json(json_text, config, raw_options);
  CHECK(raw->decode(ids) == "hello , world !");
  CHECK(raw->decode(ids, {false, true}) == "hello, world!");  // an explicit request still applies
  // The same through a folder, where the config comes from tokenizer_config.json next to tokenizer.json.
  const std::string folder = temp_dir("raw_cleanup");
  vlm::write_file_atomic(folder + "/tokenizer.json", json_text);
  vlm::write_file_atomic(folder + "/tokenizer_config.json", config);
  CHECK(Tokenizer::load(folder, raw_options)->decode(ids) == "hello , world !");
  CHECK(Tokenizer::load(folder)->decode(ids) == "hello, world!");
  for (const char* f : {"/tokenizer.json", "/tokenizer_config.json"}) std::remove((folder + f).c_str());
}

TEST_CASE("long inputs: no crash, and byte-level BPE round-trips") {
  const std::string folder = vlm::test::shared_tokenizer("qwen3");
  REQUIRE_MESSAGE(vlm::is_directory(folder), folder, " is missing (the shared data folder sits beside the clone)");
  auto tok = Tokenizer::load(folder);
  const std::vector<std::string> inputs = {
      std::string(200000, 'a'), std::string(200000, ' '), std::string(100000, '\n') + "x",
      [] {
        std::string s;
        for (int i = 0; i < 20000; ++i) s += "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB 12345 ";  // 👩‍💻
        return s;
      }()};
  for (const std::string& text : inputs) {
    const auto ids = tok->encode(text, false);
    CHECK(!ids.empty());
    CHECK(tok->decode(ids) == text);
  }
}

TEST_CASE("corrupted tokenizer files fail with vlm::Error, never a crash") {
  for (const char* name : {"tiny_wordlevel", "tiny_unigram", "tiny_bytelevel"}) {
    const std::string original = vlm::read_file(vlm::test::text_fixture(std::string(name) + "/tokenizer.json"));
    std::uint32_t state = 2024;
    auto next = [&state] {
      state = state * 1664525u + 1013904223u;
      return state >> 8;
    };
    std::size_t loaded = 0, rejected = 0;
    for (int round = 0; round < 120; ++round) {
      std::string mutated = original;
      if (round % 3 == 0) {
        mutated.resize(next() % mutated.size());  // truncated file
      } else {
        for (int k = 0; k < 1 + round % 4; ++k) mutated[next() % mutated.size()] = static_cast<char>(next());
      }
      try {
        auto tok = Tokenizer::from_json(mutated);
        const auto ids = tok->encode("Hello world, 안녕 <s> 123");
        tok->decode(ids);
        ++loaded;
      } catch (const vlm::Error&) {
        ++rejected;
      }
    }
    INFO(name);
    CHECK(loaded + rejected == 120);
    CHECK(rejected > 0);
  }
}
