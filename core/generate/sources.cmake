# The generation engine and continuation scoring, shared by every model family (torch).
add_library(vlm_generate STATIC ${CMAKE_CURRENT_LIST_DIR}/generate.cpp ${CMAKE_CURRENT_LIST_DIR}/greedy_pick.cpp)
target_include_directories(vlm_generate PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(vlm_generate PUBLIC vlm_torch)
if(VLMRT_USE_PCH)
  target_precompile_headers(vlm_generate REUSE_FROM vlm_torch)
endif()
