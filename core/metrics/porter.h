// nltk 3.10.4 PorterStemmer in its default mode NLTK_EXTENSIONS (the stemmer METEOR and rouge_score use).
#pragma once

#include <string>
#include <string_view>

namespace vlm::metrics {

// PorterStemmer().stem(word): lowercases with Python's str.lower() first. Works on code points like Python.
std::u32string porter_stem(std::u32string_view word);
// The same for UTF-8 text.
std::string porter_stem_utf8(std::string_view word);
// Faster path for ASCII words (rouge_score's tokens are [a-z0-9]+).
std::string porter_stem_ascii(std::string_view word);

}  // namespace vlm::metrics
