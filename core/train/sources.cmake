# LoRA fine-tuning: training data, AdamW and schedules, the trainer (torch). Paths relative to core/.
add_library(vlm_train STATIC
  ${CMAKE_CURRENT_LIST_DIR}/data.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_features.cpp
  ${CMAKE_CURRENT_LIST_DIR}/optimizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/step_trainer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/trainer.cpp)
target_include_directories(vlm_train PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(vlm_train PUBLIC vlm_session vlm_pipeline vlm_model)
if(VLMRT_USE_PCH)
  target_precompile_headers(vlm_train REUSE_FROM vlm_torch)
endif()
