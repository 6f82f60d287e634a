// nltk 3.10.4 PunktSentenceTokenizer (inference) with nltk's English punkt_tab parameters: the sentence splitter
// that nltk.word_tokenize runs before NLTKWordTokenizer (and so HF evaluate's METEOR).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vlm::metrics {

// PunktTokenizer("english").tokenize(text) (realign_boundaries=True). Text must be valid UTF-8.
std::vector<std::string> punkt_sentences(std::string_view text);

}  // namespace vlm::metrics
