// Shared plumbing of the C API implementation: every entry point runs its body inside guard(), which turns
// any C++ exception into a status code and a per-thread message, so nothing C++ crosses the boundary.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <string>

#include "base/error.h"
#include "vlmrt.h"

namespace vlm::capi {

// Records the message returned by vlm_last_error() on this thread.
void set_last_error(const std::string& message);
void clear_last_error();
// A malloc'ed copy of `s`, released with vlm_string_free.
char* copy_string(const std::string& s);

vlm_status status_of(ErrorCode code);

// Runs body() (which returns void), catching everything. Returns VLM_OK or the error's status.
template <class F>
vlm_status guard(F&& body) noexcept {
  try {
    clear_last_error();
    body();
    return VLM_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return status_of(e.code());
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return VLM_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(std::string("internal error: ") + e.what());
    return VLM_ERR_INTERNAL;
  } catch (...) {
    set_last_error("internal error: unknown exception");
    return VLM_ERR_INTERNAL;
  }
}

// Throws invalid_argument unless `pointer` is non-NULL.
void require(const void* pointer, const char* what);

// Validates an options struct: non-NULL, and its leading struct_size equal to `expected` (the size this
// library was built with). When a struct grows, accept older sizes here and default the missing fields.
void check_struct_size(const void* options, std::size_t expected, const char* name);

}  // namespace vlm::capi
