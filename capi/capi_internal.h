// Shared plumbing of the C API implementation: every entry point runs its body inside guard(), which turns
// any C++ exception into a status code and a per-thread message, so nothing C++ crosses the boundary.
#pragma once

#include <cstddef>
#include <cstring>
#include <initializer_list>
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

// Test-only fault injection (VLMRT_FAULT_INJECT, documented in include/vlmrt.h): throws the configured
// exception when `function` matches, so the tests can prove that guard() turns each kind into a status.
void inject_fault(const char* function);

// Records this thread's last error and logs it at VLM_LOG_DEBUG naming `function`; returns `status`. The message
// is `prefix` + `function` + ": " + `detail` when prefix is non-NULL, else `detail`. Builds strings inside a
// try block: under memory exhaustion the message may be lost, the status never is.
vlm_status report_failure(const char* function, vlm_status status, const char* prefix, const char* detail) noexcept;

// Runs body() (which returns void), catching everything. Returns VLM_OK or the error's status. `function`
// defaults to the name of the calling entry point (GCC and Clang fill __builtin_FUNCTION() at the call site).
template <class F>
vlm_status guard(F&& body, const char* function = __builtin_FUNCTION()) noexcept {
  try {
    clear_last_error();
    inject_fault(function);
    body();
    return VLM_OK;
  } catch (const Error& e) {
    return report_failure(function, status_of(e.code()), nullptr, e.what());
  } catch (const std::bad_alloc&) {
    return report_failure(function, VLM_ERR_OUT_OF_MEMORY, "out of memory in ", "std::bad_alloc");
  } catch (const std::exception& e) {
    return report_failure(function, VLM_ERR_INTERNAL, "internal error in ", e.what());
  } catch (...) {
    return report_failure(function, VLM_ERR_INTERNAL, "internal error in ", "unknown exception");
  }
}

// Throws invalid_argument unless `pointer` is non-NULL.
void require(const void* pointer, const char* what);

// Validates an options struct: non-NULL, and its leading struct_size equal to `expected` (the size this
// library was built with) or to one of `older` (the sizes of the struct in earlier headers, before fields were
// added at its end). Returns the caller's struct_size.
std::size_t check_struct_size(const void* options, std::size_t expected, const char* name,
                              std::initializer_list<std::size_t> older = {});

// A copy of the caller's options struct in this library's layout: the fields its struct_size covers, and
// `defaults`' values for the fields added since (see check_struct_size).
template <typename Options>
Options versioned_options(const Options* options, const Options& defaults, const char* name,
                          std::initializer_list<std::size_t> older) {
  const std::size_t size = check_struct_size(options, sizeof(Options), name, older);
  Options copy = defaults;
  std::memcpy(static_cast<void*>(&copy), options, size);
  copy.struct_size = sizeof(Options);
  return copy;
}

}  // namespace vlm::capi
