# Evaluation metrics (exact match, BLEU, METEOR, ROUGE-L, token statistics) equal to the Python reference packages.
# No torch. Included by core/CMakeLists.txt.
add_library(vlm_metrics STATIC
  ${CMAKE_CURRENT_LIST_DIR}/unicode.cpp
  ${CMAKE_CURRENT_LIST_DIR}/regex.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tokenize.cpp
  ${CMAKE_CURRENT_LIST_DIR}/punkt.cpp
  ${CMAKE_CURRENT_LIST_DIR}/porter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wordnet.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bleu.cpp
  ${CMAKE_CURRENT_LIST_DIR}/meteor_rouge.cpp
  ${CMAKE_CURRENT_LIST_DIR}/metrics.cpp)
target_link_libraries(vlm_metrics PUBLIC vlm_base PRIVATE PkgConfig::PCRE2)
