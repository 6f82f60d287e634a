# The experiment pipeline's torch-free parts: configuration, CSV data files and images named by data rows (local
# paths or URLs fetched with libcurl). The run driver and evaluation (torch) are in run.cmake.
find_package(CURL REQUIRED)
add_library(vlm_pipeline STATIC
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/csv.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_source.cpp)
target_include_directories(vlm_pipeline PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(vlm_pipeline PUBLIC vlm_base vlm_image PRIVATE yaml-cpp CURL::libcurl)
