# vlm_score_predictions: scores a predictions file (JSONL or CSV) through the public C API. Included by
# cli/CMakeLists.txt.
add_executable(vlm_score_predictions ${CMAKE_CURRENT_LIST_DIR}/vlm_score_predictions.cpp)
target_link_libraries(vlm_score_predictions PRIVATE vlmrt nlohmann_json::nlohmann_json CLI11::CLI11)
target_include_directories(vlm_score_predictions PRIVATE ${PROJECT_SOURCE_DIR}/include)
install(TARGETS vlm_score_predictions RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
