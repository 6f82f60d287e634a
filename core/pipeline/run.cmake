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
# The backend calls the trainer only once its implementation is in the tree, so that a partial checkout still
# links (the runner then reports training as not built).
set(VLM_RUN_HAVE_TRAINER 0)
if(TARGET vlm_train)
  target_link_libraries(vlm_run PUBLIC vlm_train)
  file(GLOB _vlm_train_sources ${CMAKE_CURRENT_LIST_DIR}/../train/*.cpp)
  foreach(_source ${_vlm_train_sources})
    file(STRINGS ${_source} _defines_run_training REGEX "^TrainingSummary run_training\\(")
    if(_defines_run_training)
      set(VLM_RUN_HAVE_TRAINER 1)
    endif()
  endforeach()
endif()
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/runner_backend.cpp PROPERTIES COMPILE_DEFINITIONS
  "VLM_RUN_HAVE_EVALUATION=1;VLM_RUN_HAVE_TRAINER=${VLM_RUN_HAVE_TRAINER}")
