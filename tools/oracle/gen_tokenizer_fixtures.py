#!/usr/bin/env python3
"""Writes the tokenizer conformance fixtures under tests/fixtures/text/ (developers only; CI never runs this).

  tools/oracle/.venv/bin/python tools/oracle/gen_tokenizer_fixtures.py [--shared ../shared/data/tokenizers]

Outputs (all deterministic for the pinned versions in tools/oracle/requirements.txt):
  corpus.jsonl.gz          the >= 10,000 test strings (one JSON string per line)
  <name>.jsonl.gz          per tokenizer, one JSON object per corpus line:
                             ids      tokenizers.Tokenizer.encode(text, add_special_tokens=False).ids
                             sp       ... add_special_tokens=True   (omitted when equal to ids)
                             dec      Tokenizer.decode(ids, skip_special_tokens=False) (omitted when == text)
                             dsk      Tokenizer.decode(sp, skip_special_tokens=True)   (omitted when == dec)
                             auto     AutoTokenizer(text)["input_ids"]   (omitted when == sp; only with a folder)
                             adec     AutoTokenizer.decode(auto)         (omitted when == dec)
  tiny_*/tokenizer.json    small tokenizers trained here with the `tokenizers` trainers, so that every normalizer,
                           pre-tokenizer, model, post-processor and decoder kind is covered by a self-contained file
  meta.json                vocab sizes, special ids and versions
"""
import os

# One trainer thread, so that the trained tiny tokenizers are the same on every run.
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse
import gzip
import json
import random
import shutil
import sys
import tempfile

import tokenizers
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken, Regex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "text")

ENGLISH = ("the quick brown fox jumps over the lazy dog while I'm sure you've seen it's not what they'd "
           "call a DOG's LIFE we'll see HELLO World tokenization isn't hard or is it running runner ran "
           "Mr. Smith's e-mail address co-operate state-of-the-art naïve café résumé Zürich coöperate").split()
KOREAN = ["안녕하세요", "세계", "한국어", "토크나이저", "테스트입니다", "감사합니다", "서울특별시", "밥을 먹었어요"]
CHINESE = ["你好", "世界", "中文分词", "北京欢迎你", "机器学习", "自然语言处理", "今天天气很好", "謝謝"]
JAPANESE = ["こんにちは", "世界", "日本語", "東京都", "カタカナ", "ひらがな", "ありがとうございます", "ｶﾀｶﾅ半角"]
ARABIC = ["مرحبا", "بالعالم", "اللغة العربية", "شكرا جزيلا", "كتاب", "مَرْحَبًا"]
HINDI = ["नमस्ते", "दुनिया", "हिन्दी भाषा", "धन्यवाद", "क्षत्रिय", "प्रोग्रामिंग"]
OTHER = ["Привет мир", "Γειά σου Κόσμε", "שלום עולם", "สวัสดีชาวโลก", "Xin chào thế giới", "Ꭰ Ᏸ ꮿ",
         "ﬁﬂ ﬀ", "ǅungla", "İstanbul ıi", "ΣΑΣ σας ς", "Straße STRASSE", "Å Å Å", "ℌ ℍ ℕ ① ½ ²", "㍿ ㌀"]
EMOJI = ["😀", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇰🇷", "🇯🇵🇺🇸", "🤷🏽‍♀️", "❤️", "✌🏿", "🧑🏻‍🤝‍🧑🏿", "1️⃣", "🫠",
         "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]
COMBINING = ["e\u0301", "a\u0308\u0304", "\u1100\u1161\u11a8", "n\u0303o", "\u0915\u094d\u0937", "Z\u0351\u0313\u036b",
             "\u0041\u030a", "\u212b", "o\u0328\u0301", "\u0301leading", "\u0627\u064b", "\u00e9\u0301"]
WHITESPACE = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n ", "\u00a0", "\u3000", "\u2003",
              "\u0085", "\u2028", "\u200b", "\u000b", "\u000c", " " * 17, "\t \t", "\n" * 5, " \r", "\u1680", "\u202f"]
NUMBERS = ["0", "7", "42", "123456789", "3.14159", "1,000,000", "-17", "2026-11-25", "0x1F", "1e-9", "٣٤٥",
           "१२३", "１２３", "Ⅻ", "12:30:45", "99.9%", "$4.50", "10^6"]
CODE = ["def f(x):\n    return x**2", "int main() { return 0; }", "for (i = 0; i < n; ++i) {}",
        "if a != b and c >= d:", "x = [1, 2, 3]  # list", "SELECT * FROM t WHERE id = 'x';",
        "    indented\tcode", "#include <vector>", "std::vector<int> v{1,2};", "a&&b||!c", "λx.x ≠ ∀y",
        "console.log(`hi ${name}`);", "<div class=\"a\">text</div>", "{\"key\": [true, null]}"]
URLS = ["https://example.com/path?q=1&r=two#frag", "http://localhost:8080/", "www.test.org",
        "user@example.com", "ftp://files.example.net/a%20b.txt", "https://ko.wikipedia.org/wiki/한국어"]
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "<|vision_start|>",
            "<|image_pad|>", "<|im_sta", "im_end|>", "<<s>>", "< s>", "<pad>", "[CLS]", "<mask>", "<think>",
            "</think>", "<tool_call>", "<ADD>", "[sep]", "Dear"]
PUNCT = ["!", "?", "...", "—", "–", "«»", "„“", "¿¡", "、", "。", "！", "（）", "'", "\"", "'s", "'S", "'ll",
         "'LL", "n't", "'ve", "ſ", "''", "---", "***", "§", "@#$%^&*", "\\", "~", "•"]


def random_codepoint(rng):
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F),
              (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2100, 0x22FF), (0x3040, 0x30FF),
              (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x10000, 0x1007F),
              (0x20000, 0x2A6DF), (0xE000, 0xE0FF), (0x0, 0x1F), (0xFE00, 0xFE0F), (0x300, 0x36F)]
    lo, hi = rng.choice(blocks)
    while True:
        c = rng.randint(lo, hi)
        if not (0xD800 <= c <= 0xDFFF):
            return chr(c)


def fragment(rng):
    kind = rng.randrange(15)
    if kind == 0:
        words = [rng.choice(ENGLISH) for _ in range(rng.randint(1, 12))]
        s = " ".join(words)
        return s.capitalize() + rng.choice([".", "!", "?", ",", ""]) if rng.random() < 0.5 else s
    if kind == 1:
        return rng.choice([" ", ""]).join(rng.choice(KOREAN) for _ in range(rng.randint(1, 4)))
    if kind == 2:
        return "".join(rng.choice(CHINESE + JAPANESE) for _ in range(rng.randint(1, 4)))
    if kind == 3:
        return " ".join(rng.choice(ARABIC + HINDI + OTHER) for _ in range(rng.randint(1, 3)))
    if kind == 4:
        return "".join(rng.choice(EMOJI + [" ", "a", "\u200d"]) for _ in range(rng.randint(1, 5)))
    if kind == 5:
        return "".join(rng.choice(COMBINING + ["x", " "]) for _ in range(rng.randint(1, 4)))
    if kind == 6:
        return rng.choice(WHITESPACE) * rng.randint(1, 3)
    if kind == 7:
        return rng.choice(NUMBERS) + rng.choice(["", " ", "  "]) + rng.choice(NUMBERS)
    if kind == 8:
        return rng.choice(CODE)
    if kind == 9:
        return rng.choice(URLS)
    if kind == 10:
        return rng.choice(SPECIALS)
    if kind == 11:
        return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 3)))
    if kind == 12:
        return "".join(random_codepoint(rng) for _ in range(rng.randint(1, 8)))
    if kind == 13:
        return rng.choice(ENGLISH).upper() + rng.choice(PUNCT) + rng.choice(ENGLISH)
    return rng.choice(KOREAN + CHINESE + ENGLISH) + rng.choice(EMOJI) + rng.choice(NUMBERS)


def build_corpus(count):
    rng = random.Random(20261125)
    corpus = ["", " ", "a", "  ", "\n", "\r\n", "\t", " " * 40, "\n" * 20, "Hello world", " Hello", "hello  ",
              "<s>", "</s>", "<s><s>", " <s> ", "a</s>b", "<|im_start|>user\nhi<|im_end|>\n", "\u0085x\u0085",
              "e\u0301", "\u00e9", "🤷🏽‍♀️", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\U0010FFFD", "\ufeffBOM", "\x00\x01\x7f"]
    while len(corpus) < count:
        parts = [fragment(rng) for _ in range(rng.randint(1, 6))]
        seps = [rng.choice([" ", "", "", "\n", "  ", "\t", ", "]) for _ in parts]
        s = "".join(p + q for p, q in zip(parts, seps))
        if rng.random() < 0.3:
            s = s.strip()
        corpus.append(s)
    # A few long lines (paragraphs, long whitespace runs) to exercise the regex and BPE on longer inputs.
    for i in range(40):
        corpus.append(" ".join(fragment(rng) for _ in range(60)) + " " * (i * 7) + "end")
    return corpus


def write_jsonl_gz(path, rows):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            for row in rows:
                f.write((json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))


def run_tokenizer(tok, corpus, auto=None):
    ids_all = [e.ids for e in tok.encode_batch(corpus, add_special_tokens=False)]
    sp_all = [e.ids for e in tok.encode_batch(corpus, add_special_tokens=True)]
    rows = []
    for i, text in enumerate(corpus):
        ids, sp = ids_all[i], sp_all[i]
        row = {"ids": ids}
        if sp != ids:
            row["sp"] = sp
        dec = tok.decode(ids, skip_special_tokens=False)
        if dec != text:
            row["dec"] = dec
        dsk = tok.decode(sp, skip_special_tokens=True)
        if dsk != dec:
            row["dsk"] = dsk
        if auto is not None:
            a = auto(text)["input_ids"]
            if a != sp:
                row["auto"] = a
            adec = auto.decode(a)
            if adec != dec:
                row["adec"] = adec
        rows.append(row)
    return rows


def train_tiny(corpus):
    """Small tokenizers covering the component kinds the real files do not use."""
    train_text = corpus[:4000]
    out = {}

    # Byte-level BPE, RoBERTa-style post-processor, added tokens with every flag.
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.NFKC()
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(train_text, trainers.BpeTrainer(vocab_size=800, min_frequency=2, show_progress=False,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                          special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    t.post_processor = processors.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>")))
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True), AddedToken("[sep]", rstrip=True, special=True)])
    t.add_tokens([AddedToken("Dear", single_word=True), AddedToken("<think>", normalized=False),
                  AddedToken("ｶﾀｶﾅ", normalized=True), AddedToken("</think>", lstrip=True, rstrip=True, normalized=False)])
    out["tiny_bytelevel"] = t

    # Same vocabulary, other pipelines: every Split behaviour, invert, Digits, Punctuation, ignore_merges.
    base = json.loads(t.to_str())
    def variant(pre, normalizer=None, post=None, model_patch=None, decoder=None):
        j = json.loads(json.dumps(base))
        j["pre_tokenizer"] = pre
        j["normalizer"] = normalizer
        j["post_processor"] = post
        if decoder is not None:
            j["decoder"] = decoder
        if model_patch:
            j["model"].update(model_patch)
        return Tokenizer.from_str(json.dumps(j))
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    for behavior in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
        for invert in [False, True]:
            name = f"tiny_split_{behavior.lower()}{'_invert' if invert else ''}"
            pre = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": r"\s+|\p{P}"}, "behavior": behavior, "invert": invert},
                {"type": "Split", "pattern": {"String": "ab"}, "behavior": behavior, "invert": invert}, bl]}
            out[name] = variant(pre)
    out["tiny_digits_punct"] = variant(
        {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": True},
                                               {"type": "Punctuation", "behavior": "Isolated"}, bl]},
        normalizer={"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]},
        post={"type": "TemplateProcessing",
              "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "</s>", "type_id": 0}}],
              "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
              "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                                 "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}})
    out["tiny_whitespace_nfkd"] = variant(
        {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "Digits", "individual_digits": False}, bl]},
        normalizer={"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "Strip", "strip_left": True, "strip_right": True},
                                                        {"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"}]},
        model_patch={"ignore_merges": True},
        post={"type": "Sequence", "processors": [{"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                                                  {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                                                   "trim_offsets": True, "add_prefix_space": True}]})

    # SentencePiece-style BPE with byte fallback and Metaspace (prepend_scheme first, split), Llama-like decoder.
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace("\t", "    ")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    t.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True),
                                   decoders.ByteFallback(), decoders.Fuse()])
    bytes_tokens = [f"<0x{b:02X}>" for b in range(256)]
    t.train_from_iterator(train_text, trainers.BpeTrainer(vocab_size=1200, min_frequency=2, show_progress=False,
                                                          special_tokens=["<unk>", "<s>", "</s>"] + bytes_tokens,
                                                          limit_alphabet=200))
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    out["tiny_metaspace_bpe"] = t

    # Classic BPE with continuing_subword_prefix / end_of_word_suffix and an unk token.
    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    t.decoder = decoders.Sequence([decoders.Replace("##", ""), decoders.Replace("</w>", " "), decoders.Strip(" ", 0, 1)])
    t.train_from_iterator(train_text, trainers.BpeTrainer(vocab_size=900, min_frequency=2, show_progress=False,
                                                          special_tokens=["[UNK]", "[CLS]", "[SEP]"], limit_alphabet=150,
                                                          continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    t.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    out["tiny_suffix_bpe"] = t

    # T5-style Unigram: NFKC, whitespace collapsing, Metaspace, "</s>" appended.
    t = Tokenizer(models.Unigram())
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "),
                                         normalizers.Strip(left=False, right=True)])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    # Unigram training needs every character in the vocabulary: train on lines without the random code points.
    common = [s for s in train_text if all(ord(c) < 0x250 or 0xAC00 <= ord(c) <= 0xD7A3 for c in s)]
    t.train_from_iterator(common, trainers.UnigramTrainer(vocab_size=1500, show_progress=False, unk_token="<unk>",
                                                              special_tokens=["<pad>", "</s>", "<unk>"]))
    t.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    out["tiny_unigram"] = t

    # Unigram with byte fallback and Metaspace never.
    t2 = Tokenizer.from_str(t.to_str())
    j = json.loads(t2.to_str())
    j["model"]["byte_fallback"] = True
    j["model"]["vocab"] += [[f"<0x{b:02X}>", 0.0] for b in range(256)]
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": False}
    j["decoder"] = {"type": "Sequence", "decoders": [{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": False},
                                                     {"type": "ByteFallback"}, {"type": "Fuse"}]}
    j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Prepend", "prepend": "▁"}]}
    out["tiny_unigram_bytes"] = Tokenizer.from_str(json.dumps(j))

    # WordPiece (BERT-like pipeline without BertNormalizer) and WordLevel.
    t = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=20))
    t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    t.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    t.train_from_iterator(train_text, trainers.WordPieceTrainer(vocab_size=900, show_progress=False, limit_alphabet=300,
                                                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    t.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    out["tiny_wordpiece"] = t

    # BERT (BLIP's text tokenizer): BertNormalizer + BertPreTokenizer on the WordPiece model above.
    j = json.loads(t.to_str())
    j["normalizer"] = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True}
    j["pre_tokenizer"] = {"type": "BertPreTokenizer"}
    out["tiny_bert"] = Tokenizer.from_str(json.dumps(j))
    j["normalizer"] = {"type": "BertNormalizer", "clean_text": False, "handle_chinese_chars": False,
                       "strip_accents": True, "lowercase": False}
    out["tiny_bert_cased"] = Tokenizer.from_str(json.dumps(j))

    t = Tokenizer(models.WordLevel(unk_token="<unk>"))
    t.normalizer = normalizers.Lowercase()
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.train_from_iterator(train_text, trainers.WordLevelTrainer(vocab_size=500, show_progress=False,
                                                                special_tokens=["<unk>", "<s>"]))
    out["tiny_wordlevel"] = t
    return out


def read_proto(buf):
    """Minimal protobuf wire-format reader: {field: [values]} (bytes for length-delimited fields)."""
    fields, i = {}, 0
    def varint():
        nonlocal i
        shift = result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result
    while i < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 1:
            value = buf[i:i + 8]
            i += 8
        elif wire == 2:
            n = varint()
            value = buf[i:i + n]
            i += n
        elif wire == 5:
            value = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(field, []).append(value)
    return fields


def t5_style_from_spm(corpus, workdir):
    """A T5-style tokenizer.json (Precompiled normalizer from a real SentencePiece charsmap, WhitespaceSplit +
    Metaspace, Unigram) built from a Unigram model trained with spm_train (Debian package sentencepiece)."""
    import base64
    import struct
    import subprocess
    text_path = os.path.join(workdir, "spm_corpus.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        for s in corpus[:4000]:
            f.write(s.replace("\r", " ").replace("\n", " ") + "\n")
    prefix = os.path.join(workdir, "t5")
    subprocess.run(["spm_train", f"--input={text_path}", f"--model_prefix={prefix}", "--vocab_size=2000",
                    "--model_type=unigram", "--num_threads=1", "--minloglevel=2", "--character_coverage=0.98",
                    "--pad_id=0", "--eos_id=1", "--unk_id=2", "--bos_id=-1", "--normalization_rule_name=nmt_nfkc"],
                   check=True, capture_output=True)
    model = read_proto(open(prefix + ".model", "rb").read())
    vocab, unk_id = [], None
    for i, raw in enumerate(model[1]):
        piece = read_proto(raw)
        score = struct.unpack("<f", piece[2][0])[0] if 2 in piece else 0.0
        kind = piece.get(3, [1])[0]
        if kind == 2:
            unk_id = i
        vocab.append([piece[1][0].decode("utf-8"), score])
    charsmap = read_proto(model[3][0])[2][0]
    j = {"version": "1.0", "truncation": None, "padding": None,
         "added_tokens": [{"id": 0, "content": "<pad>", "single_word": False, "lstrip": False, "rstrip": False,
                           "normalized": False, "special": True},
                          {"id": 1, "content": "</s>", "single_word": False, "lstrip": False, "rstrip": False,
                           "normalized": False, "special": True},
                          {"id": 2, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False,
                           "normalized": False, "special": True}],
         "normalizer": {"type": "Sequence", "normalizers": [
             {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")},
             {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
         "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
             {"type": "WhitespaceSplit"},
             {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}]},
         "post_processor": {"type": "TemplateProcessing",
                            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                            "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
         "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
         "model": {"type": "Unigram", "unk_id": unk_id, "vocab": vocab, "byte_fallback": False}}
    return Tokenizer.from_str(json.dumps(j, ensure_ascii=False))


def gpt2_reference(folder):
    """What vlmrt builds from a vocab.json + merges.txt pair: GPT-2's byte-level pipeline."""
    t = Tokenizer(models.BPE.from_file(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    if t.token_to_id("<|endoftext|>") is not None:
        t.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "data", "tokenizers"))
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--only", default="", help="comma-separated fixture names to regenerate (others are kept)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    os.makedirs(OUT, exist_ok=True)
    corpus = build_corpus(args.count)
    write_jsonl_gz(os.path.join(OUT, "corpus.jsonl.gz"), corpus)
    meta = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
            "python": sys.version.split()[0], "corpus_size": len(corpus), "tokenizer": {}}
    if only:
        with open(os.path.join(OUT, "meta.json"), encoding="utf-8") as f:
            meta["tokenizer"] = json.load(f)["tokenizer"]

    def record(name, tok, auto=None, subset=None):
        if only and name not in only:
            return
        texts = corpus if subset is None else corpus[:subset]
        rows = run_tokenizer(tok, texts, auto)
        write_jsonl_gz(os.path.join(OUT, name + ".jsonl.gz"), rows)
        info = {"vocab_size": tok.get_vocab_size(with_added_tokens=True),
                "model_vocab_size": tok.get_vocab_size(with_added_tokens=False), "lines": len(rows),
                "probe": {s: tok.token_to_id(s) for s in SPECIALS + ["Hello", "Ġthe", "▁the", "the"]}}
        info["probe_token"] = {str(i): tok.id_to_token(i) for i in info["probe"].values() if i is not None}
        if auto is not None:
            info["auto"] = {"len": len(auto), "bos": auto.bos_token_id, "eos": auto.eos_token_id,
                            "pad": auto.pad_token_id, "unk": auto.unk_token_id,
                            "model_max_length": auto.model_max_length, "padding_side": auto.padding_side}
        meta["tokenizer"][name] = info
        print(name, len(rows), "lines", file=sys.stderr)

    from transformers import AutoTokenizer
    for name in ["qwen3", "llama2"]:
        folder = os.path.join(args.shared, name)
        record(name, Tokenizer.from_file(os.path.join(folder, "tokenizer.json")), AutoTokenizer.from_pretrained(folder))
    record("gpt2", gpt2_reference(os.path.join(args.shared, "gpt2")))

    # An OPT-style folder (BLIP-2 OPT): GPT-2's vocab.json + merges.txt with a tokenizer_config.json that makes
    # "</s>" the BOS/EOS/UNK and "<pad>" the PAD and sets add_bos_token. The reference is AutoTokenizer's backend
    # (transformers 5.x GPT2Tokenizer); the test assembles the same folder in a temporary directory.
    with tempfile.TemporaryDirectory() as tmp:
        for f in ("vocab.json", "merges.txt"):
            shutil.copy(os.path.join(args.shared, "gpt2", f), tmp)
        shutil.copy(os.path.join(OUT, "opt_like_tokenizer_config.json"), os.path.join(tmp, "tokenizer_config.json"))
        auto = AutoTokenizer.from_pretrained(tmp)
        record("opt_like", auto.backend_tokenizer, subset=2000)
        meta["tokenizer"]["opt_like"]["auto"] = {"len": len(auto), "bos": auto.bos_token_id, "eos": auto.eos_token_id,
                                                 "pad": auto.pad_token_id, "unk": auto.unk_token_id}

    tiny = train_tiny(corpus)
    with tempfile.TemporaryDirectory() as tmp:
        tiny["tiny_t5_precompiled"] = t5_style_from_spm(corpus, tmp)
    for name, tok in tiny.items():
        if only and name not in only:
            continue
        os.makedirs(os.path.join(OUT, name), exist_ok=True)
        tok.save(os.path.join(OUT, name, "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(OUT, name, "tokenizer.json"))
        record(name, tok, subset=None if name in ("tiny_bytelevel", "tiny_unigram", "tiny_metaspace_bpe",
                                                   "tiny_t5_precompiled") else 2500)

    # A T5-style folder (Flan-T5 / BLIP-2 Flan-T5): the committed tiny_t5_precompiled tokenizer.json with a
    # T5Tokenizer config (extra_ids). transformers 5.x rebuilds the pipeline (Precompiled alone as normalizer,
    # unk_id 2) and appends the 100 <extra_id_N> specials; the test assembles the same folder.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(OUT, "tiny_t5_precompiled", "tokenizer.json"), tmp)
        shutil.copy(os.path.join(OUT, "t5_like_tokenizer_config.json"), os.path.join(tmp, "tokenizer_config.json"))
        auto = AutoTokenizer.from_pretrained(tmp)
        record("t5_like", auto.backend_tokenizer, subset=2000)
        if "t5_like" in meta["tokenizer"]:
            meta["tokenizer"]["t5_like"]["auto"] = {"len": len(auto), "eos": auto.eos_token_id, "pad": auto.pad_token_id,
                                                    "unk": auto.unk_token_id, "extra_id_0": auto.convert_tokens_to_ids("<extra_id_0>"),
                                                    "model_max_length": auto.model_max_length}

    # Llama-2's tokenizer.json with legacy=false and add_eos_token=true in the config: transformers 5.x uses
    # Metaspace prepend_scheme "first" then.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(args.shared, "llama2", "tokenizer.json"), tmp)
        shutil.copy(os.path.join(OUT, "llama_nonlegacy_tokenizer_config.json"), os.path.join(tmp, "tokenizer_config.json"))
        auto = AutoTokenizer.from_pretrained(tmp)
        record("llama_nonlegacy", auto.backend_tokenizer, subset=2000)

    # A Gemma-style folder (llava-gemma): the committed tiny_metaspace_bpe tokenizer.json (byte-fallback BPE) with a
    # GemmaTokenizer config. transformers 5.x rebuilds the pipeline (Replace " " -> "▁" normalizer, Split " "
    # pre-tokenizer, Replace/ByteFallback/Fuse decoder) and appends the config's missing "<pad>".
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(OUT, "tiny_metaspace_bpe", "tokenizer.json"), tmp)
        shutil.copy(os.path.join(OUT, "gemma_like_tokenizer_config.json"), os.path.join(tmp, "tokenizer_config.json"))
        auto = AutoTokenizer.from_pretrained(tmp)
        record("gemma_like", auto.backend_tokenizer, subset=2000)
        if "gemma_like" in meta["tokenizer"]:
            meta["tokenizer"]["gemma_like"]["auto"] = {"len": len(auto), "bos": auto.bos_token_id, "eos": auto.eos_token_id,
                                                       "pad": auto.pad_token_id, "unk": auto.unk_token_id,
                                                       "padding_side": auto.padding_side}

    with open(os.path.join(OUT, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
