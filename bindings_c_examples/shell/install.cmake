# Installs the shell wrappers vlm-generate, vlm-evaluate and vlm-finetune (one script, dispatched on its name)
# into <prefix>/bin next to the programs they wrap. Included once, from wherever the build includes it.
include_guard(GLOBAL)
foreach(wrapper vlm-generate vlm-evaluate vlm-finetune)
  install(PROGRAMS ${CMAKE_CURRENT_LIST_DIR}/vlm-wrapper.sh DESTINATION ${CMAKE_INSTALL_BINDIR} RENAME ${wrapper})
endforeach()
