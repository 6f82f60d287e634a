# Image processors (Pillow-exact resize, Qwen2-VL / CLIP / BLIP preprocessing). No torch.
# Included by core/CMakeLists.txt.
add_library(vlm_processor STATIC
  ${CMAKE_CURRENT_LIST_DIR}/resample.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_processor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/qwen2_vl_processor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/clip_processor.cpp)
target_link_libraries(vlm_processor PUBLIC vlm_image vlm_io Threads::Threads)
# Bit-exact parity with Pillow and numpy needs plain IEEE arithmetic: no fused multiply-add contraction.
# -O3 vectorises the integer resampling loops (exact, so the bytes do not change): about 2x on bicubic downscales.
target_compile_options(vlm_processor PRIVATE -ffp-contract=off $<$<NOT:$<CONFIG:Debug>>:-O3>)
