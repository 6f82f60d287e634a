# Chat templates: a built-in Jinja2 interpreter that renders Hugging Face chat templates like transformers'
# apply_chat_template. No torch. Included by core/CMakeLists.txt.
add_library(vlm_chat STATIC
  ${CMAKE_CURRENT_LIST_DIR}/jinja_value.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_lexer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_parser.cpp
  ${CMAKE_CURRENT_LIST_DIR}/jinja_eval.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chat_template.cpp)
target_link_libraries(vlm_chat PUBLIC vlm_base PRIVATE PkgConfig::UTF8PROC)
