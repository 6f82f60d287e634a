# Tokenizers (Hugging Face tokenizer.json, GPT-2 vocab/merges, SentencePiece). No torch.
# Included by core/CMakeLists.txt; paths are relative to core/.
add_library(vlm_text STATIC
  ${CMAKE_CURRENT_LIST_DIR}/unicode.cpp
  ${CMAKE_CURRENT_LIST_DIR}/regex.cpp
  ${CMAKE_CURRENT_LIST_DIR}/components.cpp
  ${CMAKE_CURRENT_LIST_DIR}/models.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cpp)
target_link_libraries(vlm_text
  PUBLIC vlm_base
  PRIVATE PkgConfig::PCRE2 PkgConfig::UTF8PROC PkgConfig::SENTENCEPIECE)
