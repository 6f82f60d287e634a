# The pipeline's torch parts: evaluation on a CSV (evaluate.cpp) and the run driver. Included by core/CMakeLists.txt
# after the session and train components.
add_library(vlm_run STATIC ${CMAKE_CURRENT_LIST_DIR}/evaluate.cpp)
target_include_directories(vlm_run PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(vlm_run PUBLIC vlm_session vlm_metrics vlm_pipeline)
if(VLMRT_USE_PCH)
  target_precompile_headers(vlm_run REUSE_FROM vlm_torch)
endif()

# The ablation runner (pipeline-runner): progress display, the runner and its backend (trainer + sessions).
target_sources(vlm_run PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/progress.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runner.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runner_backend.cpp)
target_link_libraries(vlm_run PUBLIC vlm_train)
