// Token ids and decoded text identical to Hugging Face `tokenizers` 0.23.3 and transformers 5.23.0 over the
// 10,040-string corpus of tests/fixtures/text (see its README for what each field holds).
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "base/fs.h"
#include "fixture_reader.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace {

using vlm::Tokenizer;
using vlm::TokenizerOptions;
using json = nlohmann::json;

const std::vector<json>& corpus() {
  static const std::vector<json> rows = vlm::test::read_jsonl_gz(vlm::test::text_fixture("corpus.jsonl.gz"));
  return rows;
}

const json& meta() {
  static const json m = json::parse(vlm::read_file(vlm::test::text_fixture("meta.json")));
  return m;
}

std::string show(const std::vector<std::int32_t>& ids) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < ids.size(); ++i) s << (i ? "," : "") << ids[i];
  s << "]";
  return s.str();
}

struct Tally {
  std::size_t checked = 0, failed = 0;
  std::string first_failures;
  void check(bool ok, std::size_t line, const std::string& what) {
    ++checked;
    if (ok) return;
    if (++failed <= 5) first_failures += "  line " + std::to_string(line) + ": " + what + "\n";
  }
};

// Compares one tokenizer against its fixture. `raw` is loaded as tokenizers.Tokenizer.from_file, `autotok` (may be
// null) as transformers' AutoTokenizer.
void check_against_fixture(const std::string& name, const Tokenizer& raw, const Tokenizer* autotok) {
  const auto rows = vlm::test::read_jsonl_gz(vlm::test::text_fixture(name + ".jsonl.gz"));
  const auto& texts = corpus();
  REQUIRE(rows.size() <= texts.size());
  REQUIRE(rows.size() == meta()["tokenizer"][name]["lines"].get<std::size_t>());
  Tally ids_tally, sp_tally, dec_tally, dsk_tally, auto_tally, adec_tally;
  const vlm::DecodeOptions keep{false, false}, skip{true, false};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const json& row = rows[i];
    const auto want_ids = row["ids"].get<std::vector<std::int32_t>>();
    const auto want_sp = row.contains("sp") ? row["sp"].get<std::vector<std::int32_t>>() : want_ids;
    const auto ids = raw.encode(text, false);
    ids_tally.check(ids == want_ids, i, "ids " + show(ids) + " want " + show(want_ids));
    const auto sp = raw.encode(text, true);
    sp_tally.check(sp == want_sp, i, "with specials " + show(sp) + " want " + show(want_sp));
    const std::string want_dec = row.contains("dec") ? row["dec"].get<std::string>() : text;
    const std::string dec = raw.decode(want_ids, keep);
    dec_tally.check(dec == want_dec, i, "decode \"" + dec + "\" want \"" + want_dec + "\"");
    const std::string want_dsk = row.contains("dsk") ? row["dsk"].get<std::string>() : want_dec;
    const std::string dsk = raw.decode(want_sp, skip);
    dsk_tally.check(dsk == want_dsk, i, "decode(skip special) \"" + dsk + "\" want \"" + want_dsk + "\"");
    if (autotok) {
      const auto want_auto = row.contains("auto") ? row["auto"].get<std::vector<std::int32_t>>() : want_sp;
      const auto a = autotok->encode(text);
      auto_tally.check(a == want_auto, i, "AutoTokenizer ids " + show(a) + " want " + show(want_auto));
      const std::string want_adec = row.contains("adec") ? row["adec"].get<std::string>() : want_dec;
      const std::string adec = autotok->decode(want_auto);
      adec_tally.check(adec == want_adec, i, "AutoTokenizer decode \"" + adec + "\" want \"" + want_adec + "\"");
    }
  }
  INFO(name);
  CHECK_MESSAGE(ids_tally.failed == 0, ids_tally.failed, " of ", ids_tally.checked, " id lists differ:\n", ids_tally.first_failures);
  CHECK_MESSAGE(sp_tally.failed == 0, sp_tally.failed, " differ:\n", sp_tally.first_failures);
  CHECK_MESSAGE(dec_tally.failed == 0, dec_tally.failed, " differ:\n", dec_tally.first_failures);
  CHECK_MESSAGE(dsk_tally.failed == 0, dsk_tally.failed, " differ:\n", dsk_tally.first_failures);
  CHECK_MESSAGE(auto_tally.failed == 0, auto_tally.failed, " differ:\n", auto_tally.first_failures);
  CHECK_MESSAGE(adec_tally.failed == 0, adec_tally.failed, " differ:\n", adec_tally.first_failures);
  CHECK(ids_tally.checked == rows.size());
  CHECK(raw.vocab_size() == meta()["tokenizer"][name]["vocab_size"].get<std::size_t>());
  // The probes: token_to_id for special and ordinary strings.
  for (auto it = meta()["tokenizer"][name]["probe"].begin(); it != meta()["tokenizer"][name]["probe"].end(); ++it) {
    INFO("token_to_id(\"" << it.key() << "\")");
    const auto id = raw.token_to_id(it.key());
    if (it.value().is_null()) {
      CHECK_FALSE(id.has_value());
    } else {
      REQUIRE(id.has_value());
      CHECK(*id == it.value().get<std::int32_t>());
      // id_to_token gives the normalized form of a normalized added token, as tokenizers does.
      CHECK(raw.id_to_token(*id).value() ==
            meta()["tokenizer"][name]["probe_token"][std::to_string(*id)].get<std::string>());
    }
  }
}

std::shared_ptr<Tokenizer> load_raw(const std::string& path) {
  TokenizerOptions raw;
  raw.flavor = TokenizerOptions::Flavor::raw;
  return Tokenizer::load(path, raw);
}

}  // namespace

TEST_CASE("corpus fixture has the required size and variety") {
  CHECK(corpus().size() >= 10000);
  CHECK(meta()["corpus_size"].get<std::size_t>() == corpus().size());
  std::size_t korean = 0, emoji_zwj = 0, crlf = 0;
  for (const auto& row : corpus()) {
    const std::string s = row.get<std::string>();
    korean += s.find("\xEC\x95\x88") != std::string::npos;  // 안
    emoji_zwj += s.find("\xE2\x80\x8D") != std::string::npos;
    crlf += s.find("\r\n") != std::string::npos;
  }
  CHECK(korean > 100);
  CHECK(emoji_zwj > 100);
  CHECK(crlf > 50);
}

TEST_CASE("qwen3 tokenizer.json matches tokenizers and AutoTokenizer") {
  const std::string folder = vlm::test::shared_tokenizer("qwen3");
  REQUIRE_MESSAGE(vlm::is_directory(folder), folder, " is missing (the shared data folder sits beside the clone)");
  auto raw = load_raw(folder + "/tokenizer.json");
  auto autotok = Tokenizer::load(folder);
  check_against_fixture("qwen3", *raw, autotok.get());
  const json& a = meta()["tokenizer"]["qwen3"]["auto"];
  CHECK(autotok->config().model_max_length == a["model_max_length"].get<double>());
  CHECK(autotok->config().padding_side == a["padding_side"].get<std::string>());
  CHECK(autotok->eos_id() == std::optional<std::int32_t>(a["eos"].get<std::int32_t>()));
  CHECK(autotok->pad_id() == std::optional<std::int32_t>(a["pad"].get<std::int32_t>()));
  CHECK_FALSE(autotok->bos_id().has_value());
  CHECK(autotok->vocab_size() == a["len"].get<std::size_t>());
  CHECK(autotok->token_to_id("<|image_pad|>") == std::optional<std::int32_t>(151655));
  CHECK(autotok->is_special(151644));
  CHECK_FALSE(autotok->is_special(9707));
  CHECK_FALSE(autotok->config().chat_template.empty());
}

TEST_CASE("llama2 tokenizer.json matches tokenizers and AutoTokenizer") {
  const std::string folder = vlm::test::shared_tokenizer("llama2");
  REQUIRE_MESSAGE(vlm::is_directory(folder), folder, " is missing (the shared data folder sits beside the clone)");
  auto raw = load_raw(folder + "/tokenizer.json");
  auto autotok = Tokenizer::load(folder);
  check_against_fixture("llama2", *raw, autotok.get());
  const json& a = meta()["tokenizer"]["llama2"]["auto"];
  CHECK(autotok->bos_id() == std::optional<std::int32_t>(a["bos"].get<std::int32_t>()));
  CHECK(autotok->eos_id() == std::optional<std::int32_t>(a["eos"].get<std::int32_t>()));
  CHECK(autotok->unk_id() == std::optional<std::int32_t>(a["unk"].get<std::int32_t>()));
  CHECK_FALSE(autotok->pad_id().has_value());
  CHECK(autotok->config().padding_side == a["padding_side"].get<std::string>());
  CHECK(autotok->config().add_bos_token);
  // AutoTokenizer (Metaspace, prepend "always") and the raw file (Prepend normalizer) differ on a leading space.
  CHECK(autotok->encode(" Hello") == std::vector<std::int32_t>{1, 22557});
  CHECK(raw->encode(" Hello") == std::vector<std::int32_t>{1, 28705, 22557});
}

TEST_CASE("llama2 tokenizer.json with legacy=false matches AutoTokenizer (Metaspace prepend_scheme first)") {
  const std::string folder = vlm::test::shared_tokenizer("llama2");
  REQUIRE_MESSAGE(vlm::is_directory(folder), folder, " is missing (the shared data folder sits beside the clone)");
  const std::string dir = "/tmp/vlm_test_text_llama_nonlegacy_" + std::to_string(::getpid());
  vlm::create_directories(dir);
  vlm::write_file_atomic(dir + "/tokenizer.json", vlm::read_file(folder + "/tokenizer.json"));
  vlm::write_file_atomic(dir + "/tokenizer_config.json",
                         vlm::read_file(vlm::test::text_fixture("llama_nonlegacy_tokenizer_config.json")));
  auto tok = Tokenizer::load(dir);
  check_against_fixture("llama_nonlegacy", *tok, nullptr);
  // add_eos_token in the config does not change tokenizer.json's post-processor (transformers 5.x behaviour).
  CHECK(tok->config().add_eos_token);
  CHECK(tok->encode("Hello world") == std::vector<std::int32_t>{1, 22557, 1526});
  std::remove((dir + "/tokenizer.json").c_str());
  std::remove((dir + "/tokenizer_config.json").c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("gpt2 vocab.json + merges.txt matches tokenizers' BPE.from_file with the GPT-2 pipeline") {
  const std::string folder = vlm::test::shared_tokenizer("gpt2");
  REQUIRE_MESSAGE(vlm::is_directory(folder), folder, " is missing (the shared data folder sits beside the clone)");
  auto tok = Tokenizer::load(folder);
  check_against_fixture("gpt2", *tok, nullptr);
  CHECK(tok->eos_id() == std::optional<std::int32_t>(50256));
  auto by_file = Tokenizer::load(folder + "/vocab.json");
  CHECK(by_file->encode("Hello world") == std::vector<std::int32_t>{15496, 995});
}

TEST_CASE("OPT-style vocab.json + merges.txt + tokenizer_config.json matches AutoTokenizer (GPT2Tokenizer)") {
  const std::string gpt2 = vlm::test::shared_tokenizer("gpt2");
  REQUIRE_MESSAGE(vlm::is_directory(gpt2), gpt2, " is missing (the shared data folder sits beside the clone)");
  const std::string dir = "/tmp/vlm_test_text_opt_like_" + std::to_string(::getpid());
  vlm::create_directories(dir);
  vlm::write_file_atomic(dir + "/vocab.json", vlm::read_file(gpt2 + "/vocab.json"));
  vlm::write_file_atomic(dir + "/merges.txt", vlm::read_file(gpt2 + "/merges.txt"));
  vlm::write_file_atomic(dir + "/tokenizer_config.json",
                         vlm::read_file(vlm::test::text_fixture("opt_like_tokenizer_config.json")));
  auto tok = Tokenizer::load(dir);
  check_against_fixture("opt_like", *tok, nullptr);
  const json& a = meta()["tokenizer"]["opt_like"]["auto"];
  CHECK(tok->bos_id() == std::optional<std::int32_t>(a["bos"].get<std::int32_t>()));
  CHECK(tok->eos_id() == std::optional<std::int32_t>(a["eos"].get<std::int32_t>()));
  CHECK(tok->pad_id() == std::optional<std::int32_t>(a["pad"].get<std::int32_t>()));
  CHECK(tok->unk_id() == std::optional<std::int32_t>(a["unk"].get<std::int32_t>()));
  CHECK(tok->vocab_size() == a["len"].get<std::size_t>());
  std::remove((dir + "/vocab.json").c_str());
  std::remove((dir + "/merges.txt").c_str());
  std::remove((dir + "/tokenizer_config.json").c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("T5-style tokenizer.json + T5Tokenizer config matches AutoTokenizer (extra ids, rebuilt pipeline)") {
  const std::string dir = "/tmp/vlm_test_text_t5_like_" + std::to_string(::getpid());
  vlm::create_directories(dir);
  vlm::write_file_atomic(dir + "/tokenizer.json",
                         vlm::read_file(vlm::test::text_fixture("tiny_t5_precompiled/tokenizer.json")));
  vlm::write_file_atomic(dir + "/tokenizer_config.json",
                         vlm::read_file(vlm::test::text_fixture("t5_like_tokenizer_config.json")));
  auto tok = Tokenizer::load(dir);
  check_against_fixture("t5_like", *tok, nullptr);
  const json& a = meta()["tokenizer"]["t5_like"]["auto"];
  CHECK(tok->vocab_size() == a["len"].get<std::size_t>());
  CHECK(tok->eos_id() == std::optional<std::int32_t>(a["eos"].get<std::int32_t>()));
  CHECK(tok->pad_id() == std::optional<std::int32_t>(a["pad"].get<std::int32_t>()));
  CHECK(tok->unk_id() == std::optional<std::int32_t>(a["unk"].get<std::int32_t>()));
  CHECK(tok->token_to_id("<extra_id_0>") == std::optional<std::int32_t>(a["extra_id_0"].get<std::int32_t>()));
  CHECK(tok->config().model_max_length == a["model_max_length"].get<double>());
  std::remove((dir + "/tokenizer.json").c_str());
  std::remove((dir + "/tokenizer_config.json").c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("Gemma-style tokenizer.json + GemmaTokenizer config matches AutoTokenizer (rebuilt pipeline, class specials)") {
  const std::string dir = "/tmp/vlm_test_text_gemma_like_" + std::to_string(::getpid());
  vlm::create_directories(dir);
  vlm::write_file_atomic(dir + "/tokenizer.json",
                         vlm::read_file(vlm::test::text_fixture("tiny_metaspace_bpe/tokenizer.json")));
  vlm::write_file_atomic(dir + "/tokenizer_config.json",
                         vlm::read_file(vlm::test::text_fixture("gemma_like_tokenizer_config.json")));
  auto tok = Tokenizer::load(dir);
  check_against_fixture("gemma_like", *tok, nullptr);
  const json& a = meta()["tokenizer"]["gemma_like"]["auto"];
  CHECK(tok->vocab_size() == a["len"].get<std::size_t>());
  CHECK(tok->bos_id() == std::optional<std::int32_t>(a["bos"].get<std::int32_t>()));
  CHECK(tok->eos_id() == std::optional<std::int32_t>(a["eos"].get<std::int32_t>()));
  CHECK(tok->pad_id() == std::optional<std::int32_t>(a["pad"].get<std::int32_t>()));
  CHECK(tok->unk_id() == std::optional<std::int32_t>(a["unk"].get<std::int32_t>()));
  CHECK(tok->config().padding_side == a["padding_side"].get<std::string>());
  std::remove((dir + "/tokenizer.json").c_str());
  std::remove((dir + "/tokenizer_config.json").c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("tokenizers trained by the harness (every component kind) match tokenizers") {
  for (const char* name :
       {"tiny_bytelevel", "tiny_split_removed", "tiny_split_removed_invert", "tiny_split_isolated",
        "tiny_split_isolated_invert", "tiny_split_mergedwithprevious", "tiny_split_mergedwithprevious_invert",
        "tiny_split_mergedwithnext", "tiny_split_mergedwithnext_invert", "tiny_split_contiguous",
        "tiny_split_contiguous_invert", "tiny_digits_punct", "tiny_whitespace_nfkd", "tiny_metaspace_bpe",
        "tiny_suffix_bpe", "tiny_unigram", "tiny_unigram_bytes", "tiny_t5_precompiled", "tiny_wordpiece", "tiny_bert", "tiny_bert_cased",
        "tiny_wordlevel"}) {
    SUBCASE(name) {
      auto tok = load_raw(vlm::test::text_fixture(std::string(name) + "/tokenizer.json"));
      check_against_fixture(name, *tok, nullptr);
    }
  }
}

TEST_CASE("streaming decode reproduces decode() and never splits a character") {
  struct Case {
    std::string path;
    std::size_t lines;
  };
  const std::vector<Case> cases = {{vlm::test::shared_tokenizer("llama2"), 3000},
                                   {vlm::test::shared_tokenizer("qwen3"), 3000},
                                   {vlm::test::text_fixture("tiny_unigram/tokenizer.json"), 1500},
                                   {vlm::test::text_fixture("tiny_metaspace_bpe/tokenizer.json"), 1500}};
  for (const Case& c : cases) {
    auto tok = Tokenizer::load(c.path);
    std::shared_ptr<const Tokenizer> shared = tok;
    vlm::IncrementalDecoder stream(shared);
    std::size_t mismatches = 0, invalid = 0;
    for (std::size_t i = 0; i < c.lines; ++i) {
      const auto ids = tok->encode(corpus()[i].get<std::string>());
      std::string streamed;
      for (std::int32_t id : ids) {
        const std::string piece = stream.push(id);
        invalid += !vlm::text::is_valid_utf8(piece);
        streamed += piece;
      }
      streamed += stream.flush();
      mismatches += streamed != tok->decode(ids, {true, std::nullopt});
    }
    INFO(c.path);
    CHECK(mismatches == 0);
    CHECK(invalid == 0);
  }
}
