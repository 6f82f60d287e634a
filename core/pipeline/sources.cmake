# The experiment pipeline: configuration and (later) the run driver. Config parsing needs no torch.
add_library(vlm_pipeline STATIC ${CMAKE_CURRENT_LIST_DIR}/config.cpp)
target_include_directories(vlm_pipeline PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(vlm_pipeline PUBLIC vlm_base PRIVATE yaml-cpp)
