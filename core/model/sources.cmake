# Models: shared building blocks (layers, KV cache, weight loading), the Qwen2-VL / Qwen2.5-VL family, text-only
# Qwen2/Llama decoders, and the model_type registry. Included by core/CMakeLists.txt; paths relative to core/.
add_library(vlm_model STATIC
  ${CMAKE_CURRENT_LIST_DIR}/layers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/matvec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/decode_step.cpp
  ${CMAKE_CURRENT_LIST_DIR}/weights.cpp
  ${CMAKE_CURRENT_LIST_DIR}/qwen2_vl.cpp
  ${CMAKE_CURRENT_LIST_DIR}/causal_lm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/llava.cpp
  ${CMAKE_CURRENT_LIST_DIR}/lora.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_feature_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/registry.cpp)
target_link_libraries(vlm_model PUBLIC vlm_torch)
# at::parallel_for is an inline OpenMP region in libtorch's headers: without -fopenmp it runs on one thread.
find_package(OpenMP REQUIRED COMPONENTS CXX)
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/matvec.cpp ${CMAKE_CURRENT_LIST_DIR}/decode_step.cpp
                            PROPERTIES COMPILE_OPTIONS "${OpenMP_CXX_FLAGS}" SKIP_PRECOMPILE_HEADERS ON)
# Link-only for the other files: their flags stay without -fopenmp (which would defeat the shared precompiled header).
target_link_libraries(vlm_model PRIVATE ${OpenMP_CXX_LIBRARIES})
if(VLMRT_USE_PCH)
  target_precompile_headers(vlm_model REUSE_FROM vlm_torch)
endif()
