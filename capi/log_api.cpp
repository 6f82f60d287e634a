// C API: the log callback (include/vlmrt.h, VLM_LOG_API), the failure report every guard() ends in, and the
// test-only fault injection guard() runs first.
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "base/log.h"
#include "capi_internal.h"

namespace vlm::capi {

vlm_status report_failure(const char* function, vlm_status status, const char* prefix, const char* detail) noexcept {
  try {
    std::string message = prefix != nullptr ? std::string(prefix) + function + ": " + detail : std::string(detail);
    set_last_error(message);
    if (log_enabled(LogLevel::debug)) {
      log(LogLevel::debug, std::string(function) + " failed (" + vlm_status_name(status) + "): " + message);
    }
  } catch (...) {
    clear_last_error();  // out of memory while formatting: the status still tells what happened
  }
  return status;
}

void inject_fault(const char* function) {
  // Read on every call so that a test can switch faults on and off between calls; getenv is a short scan.
  const char* spec = std::getenv("VLMRT_FAULT_INJECT");
  if (spec == nullptr || *spec == '\0') return;
  const char* colon = std::strchr(spec, ':');
  const std::string target(spec, colon != nullptr ? static_cast<std::size_t>(colon - spec) : std::strlen(spec));
  if (target != "*" && target != function) return;
  const std::string kind = colon != nullptr ? colon + 1 : "std";
  const std::string what = std::string("fault injected by VLMRT_FAULT_INJECT into ") + function;
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "unknown") throw 42;  // not derived from std::exception
  if (kind == "error") fail(ErrorCode::internal, what);
  throw std::runtime_error(what);
}

}  // namespace vlm::capi

namespace {

bool known_level(int level) {
  return level == VLM_LOG_DEBUG || level == VLM_LOG_INFO || level == VLM_LOG_WARNING || level == VLM_LOG_ERROR ||
         level == VLM_LOG_OFF;
}

}  // namespace

extern "C" {

void vlm_set_log_callback(vlm_log_callback callback, void* user_data) {
  if (callback == nullptr) {
    vlm::set_log_sink(nullptr);
    return;
  }
  // The line is copied into a std::string only to NUL-terminate it for C.
  vlm::LogSink sink = [callback, user_data](vlm::LogLevel level, std::string_view line) {
    const std::string text(line);
    callback(static_cast<vlm_log_level>(level), text.c_str(), user_data);
  };
  try {
    vlm::set_log_sink(std::move(sink));
  } catch (...) {
    // std::function may allocate; this function has no status to report through, so leave logging off.
    vlm::set_log_sink(nullptr);
  }
}

vlm_status vlm_set_log_level(vlm_log_level level) {
  return vlm::capi::guard([&] {
    if (!known_level(static_cast<int>(level))) {
      vlm::fail(vlm::ErrorCode::invalid_argument,
                "log level " + std::to_string(static_cast<int>(level)) +
                    " is not one of VLM_LOG_DEBUG (10), VLM_LOG_INFO (20), VLM_LOG_WARNING (30), VLM_LOG_ERROR (40), "
                    "VLM_LOG_OFF (100)");
    }
    vlm::set_log_threshold(static_cast<vlm::LogLevel>(level));
  });
}

vlm_log_level vlm_get_log_level(void) { return static_cast<vlm_log_level>(vlm::log_threshold()); }

const char* vlm_log_level_name(vlm_log_level level) {
  if (!known_level(static_cast<int>(level))) return "unknown";
  return vlm::log_level_name(static_cast<vlm::LogLevel>(level));
}

}  // extern "C"
