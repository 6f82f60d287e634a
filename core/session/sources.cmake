# Inference sessions: tokenizer + chat template + image processor + model + generation, together (torch).
add_library(vlm_session STATIC ${CMAKE_CURRENT_LIST_DIR}/session.cpp)
target_include_directories(vlm_session PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(vlm_session PUBLIC vlm_model vlm_generate vlm_text vlm_chat vlm_processor)
if(VLMRT_USE_PCH)
  target_precompile_headers(vlm_session REUSE_FROM vlm_torch)
endif()
