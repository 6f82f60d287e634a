cmake_policy(VERSION 3.18)
# Runs `cargo test` on bindings_c_examples/rust against the libvlmrt of this build. The crate is copied into the
# build tree first so that Cargo.lock and target/ never land in the source tree. Offline: the crate has no
# dependencies.
file(REMOVE_RECURSE ${WORK}/crate)
file(COPY ${CRATE}/ DESTINATION ${WORK}/crate PATTERN target EXCLUDE PATTERN Cargo.lock EXCLUDE)
set(ENV{PKG_CONFIG_PATH} ${PKG_CONFIG_DIR})
set(ENV{CARGO_TARGET_DIR} ${WORK}/target)
set(ENV{VLMRT_FIXTURES_DIR} ${FIXTURES})
set(ENV{CARGO_TERM_COLOR} never)
execute_process(COMMAND ${CARGO} test --offline -- --test-threads=2 WORKING_DIRECTORY ${WORK}/crate RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cargo test failed (${rc})")
endif()
