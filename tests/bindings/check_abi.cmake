cmake_policy(VERSION 3.18)
# The ABI check: abidiff between the committed baseline (abi/vlmrt.abi, written by scripts/update_abi_baseline.sh)
# and the libvlmrt of this build, restricted to the types of include/vlmrt.h. Added functions pass; a removed or
# changed function or variable, or a removed symbol, fails. The same rule is first checked on two tiny libraries
# built here (one adds a function, one changes a struct, one removes a function) so the test cannot pass by
# classifying everything as harmless.
#
#   -DLIBRARY=<libvlmrt.so> -DBASELINE=<abi/vlmrt.abi> -DHEADERS=<include> -DCC=<C compiler> -DWORK=<dir>

# Writes the ABI of `library` (restricted to the types of the headers in `headers`) to `out`, with the same
# abidw flags as scripts/update_abi_baseline.sh. Comparing two such XML files is what abidiff can do reliably:
# reading XML with --drop-private-types asserts in libabigail 2.2, and without dropping them every change of a
# C++ class behind an opaque handle (vlm_session holds the core's Session) would look like an ABI change.
function(dump library headers out)
  execute_process(COMMAND abidw --no-corpus-path --no-comp-dir-path --no-show-locs --exported-interfaces-only
                          --headers-dir ${headers} --drop-private-types ${library} --out-file ${out}
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "abidw failed on ${library} (${rc}): ${err}")
  endif()
endfunction()

# Returns in ${out} "" for a compatible difference between two dump() outputs, else the reason.
function(classify old new out)
  execute_process(COMMAND abidiff --no-added-syms ${old} ${new}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE report ERROR_VARIABLE err)
  if(NOT rc MATCHES "^[0-9]+$")
    set(${out} "abidiff did not run: ${rc} ${err}" PARENT_SCOPE)
    return()
  endif()
  math(EXPR tool_error "${rc} & 3")
  math(EXPR incompatible "${rc} & 8")
  set(reason "")
  if(tool_error)
    set(reason "abidiff failed (exit ${rc}): ${err}")
  elseif(incompatible)
    set(reason "incompatible change (abidiff exit ${rc})")
  elseif(report MATCHES "Functions changes summary: ([0-9]+) Removed, ([0-9]+) Changed")
    if(NOT CMAKE_MATCH_1 EQUAL 0 OR NOT CMAKE_MATCH_2 EQUAL 0)
      set(reason "${CMAKE_MATCH_1} function(s) removed, ${CMAKE_MATCH_2} changed")
    endif()
  endif()
  if(reason STREQUAL "" AND report MATCHES "Variables changes summary: ([0-9]+) Removed, ([0-9]+) Changed")
    if(NOT CMAKE_MATCH_1 EQUAL 0 OR NOT CMAKE_MATCH_2 EQUAL 0)
      set(reason "${CMAKE_MATCH_1} variable(s) removed, ${CMAKE_MATCH_2} changed")
    endif()
  endif()
  if(reason STREQUAL "" AND report MATCHES "Function symbols changes summary: ([1-9][0-9]*) Removed")
    set(reason "${CMAKE_MATCH_1} function symbol(s) removed")
  endif()
  if(NOT reason STREQUAL "")
    set(reason "${reason}\n${report}")
  endif()
  set(${out} "${reason}" PARENT_SCOPE)
endfunction()

# 1. The rule on tiny libraries.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/include)
file(WRITE ${WORK}/include/tiny.h "
typedef struct tiny_options { unsigned long struct_size; int a;
#ifdef CHANGED
  int b;
#endif
} tiny_options;
int tiny_run(const tiny_options *o);
#ifndef REMOVED
int tiny_keep(void);
#endif
#ifdef ADDED
int tiny_new(void);
#endif
")
file(WRITE ${WORK}/tiny.c "#include \"tiny.h\"
int tiny_run(const tiny_options *o) { return o->a; }
#ifndef REMOVED
int tiny_keep(void) { return 1; }
#endif
#ifdef ADDED
int tiny_new(void) { return 2; }
#endif
")
foreach(variant BASE ADDED CHANGED REMOVED)
  execute_process(COMMAND ${CC} -g -O0 -shared -fPIC -D${variant} -I${WORK}/include ${WORK}/tiny.c
                          -o ${WORK}/libtiny_${variant}.so RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "could not build the tiny ${variant} library: ${err}")
  endif()
endforeach()
foreach(variant BASE ADDED CHANGED REMOVED)
  dump(${WORK}/libtiny_${variant}.so ${WORK}/include ${WORK}/tiny_${variant}.abi)
endforeach()
classify(${WORK}/tiny_BASE.abi ${WORK}/tiny_ADDED.abi reason)
if(NOT reason STREQUAL "")
  message(FATAL_ERROR "self-check: an added function was classified as a break: ${reason}")
endif()
foreach(variant CHANGED REMOVED)
  classify(${WORK}/tiny_BASE.abi ${WORK}/tiny_${variant}.abi reason)
  if(reason STREQUAL "")
    message(FATAL_ERROR "self-check: a ${variant} function was not detected")
  endif()
endforeach()

# 2. libvlmrt against the baseline.
if(NOT EXISTS ${BASELINE})
  message(FATAL_ERROR "no ABI baseline at ${BASELINE}: run scripts/update_abi_baseline.sh <build dir> and commit it")
endif()
dump(${LIBRARY} ${HEADERS} ${WORK}/current.abi)
classify(${BASELINE} ${WORK}/current.abi reason)
if(NOT reason STREQUAL "")
  message(FATAL_ERROR "libvlmrt breaks the ABI of ${BASELINE}: ${reason}\n"
          "If the change is intended: bump VLMRT_ABI_VERSION (CMakeLists.txt and include/vlmrt.h) and run "
          "scripts/update_abi_baseline.sh to commit the new baseline.")
endif()
message(STATUS "libvlmrt is ABI-compatible with ${BASELINE} (additions only)")
