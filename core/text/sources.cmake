# Tokenizers (Hugging Face tokenizer.json, GPT-2 vocab/merges, SentencePiece). No torch.
# Included by core/CMakeLists.txt; paths are relative to core/.
add_library(vlm_text STATIC
  ${CMAKE_CURRENT_LIST_DIR}/unicode.cpp
  ${CMAKE_CURRENT_LIST_DIR}/regex.cpp
  ${CMAKE_CURRENT_LIST_DIR}/json_scan.cpp
  ${CMAKE_CURRENT_LIST_DIR}/components.cpp
  ${CMAKE_CURRENT_LIST_DIR}/models.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sentencepiece_model.cpp)
target_link_libraries(vlm_text
  PUBLIC vlm_base
  PRIVATE PkgConfig::PCRE2 PkgConfig::UTF8PROC ${CMAKE_DL_LIBS})

# SentencePiece runs in a plugin loaded on demand, never linked into the process (see
# text/sentencepiece_plugin_api.h): Debian's libsentencepiece and libtorch's libprotobuf clash when linked together.
add_library(vlmrt_sentencepiece MODULE ${CMAKE_CURRENT_LIST_DIR}/sentencepiece_plugin.cpp)
target_include_directories(vlmrt_sentencepiece PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(vlmrt_sentencepiece PRIVATE PkgConfig::SENTENCEPIECE)
set_target_properties(vlmrt_sentencepiece PROPERTIES PREFIX "lib" CXX_VISIBILITY_PRESET hidden)
install(TARGETS vlmrt_sentencepiece LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/vlmrt)
target_compile_definitions(vlm_text PRIVATE
  VLM_SPM_PLUGIN_BUILD_PATH="$<TARGET_FILE:vlmrt_sentencepiece>"
  VLM_SPM_PLUGIN_INSTALL_PATH="${CMAKE_INSTALL_FULL_LIBDIR}/vlmrt/libvlmrt_sentencepiece.so")
add_dependencies(vlm_text vlmrt_sentencepiece)
