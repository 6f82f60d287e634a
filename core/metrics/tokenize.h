// The tokenizers the reference metrics run before scoring.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vlm::metrics {

// sacrebleu 2.6.0 Tokenizer13a (mteval-v13a): returns the tokenized line (tokens joined by single spaces).
std::string tokenize_13a(std::string_view line);

// nltk 3.10.4 NLTKWordTokenizer().tokenize(text), i.e. word_tokenize(text, preserve_line=True).
std::vector<std::string> nltk_word_tokenize(std::string_view text);

// nltk 3.10.4 word_tokenize(text): Punkt sentences (English punkt_tab parameters), then NLTKWordTokenizer on each.
// This is what HF evaluate's METEOR tokenizes with.
std::vector<std::string> nltk_word_tokenize_sentences(std::string_view text);

// rouge_score 0.1.2 tokenize.tokenize(text, stemmer): lower, non [a-z0-9] runs split, optional Porter stem of
// tokens longer than 3 characters.
std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer);

}  // namespace vlm::metrics
