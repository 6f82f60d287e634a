// Diagnostics from the core: vlm::log(level, message) hands whole lines to one process-wide sink.
//
// By default there is no sink and nothing is printed (a library must not write to the host's stderr); the
// C API installs a sink when the host calls vlm_set_log_callback, and the CLIs install one that prints to
// stderr. Header-only so that every static library of the core (and every test) can log without a link
// dependency; libvlmrt holds the one instance of the state.
//
// Rules: a message is split at '\n' and each line (without its newline; a trailing '\r' is dropped too) is
// delivered separately, so a sink never sees a partial or multi-line string. Sink calls are serialised by a
// mutex, so a sink need not be thread-safe; it must not log or change the sink itself (that would deadlock).
// When set_log_sink returns, the previous sink has returned from its last call and is never called again.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace vlm {

// Same values as vlm_log_level in include/vlmrt.h.
enum class LogLevel : int { debug = 10, info = 20, warning = 30, error = 40, off = 100 };

using LogSink = std::function<void(LogLevel level, std::string_view line)>;

namespace detail {
struct LogState {
  std::mutex mutex;  // serialises sink calls and sink changes
  LogSink sink;
  std::atomic<int> threshold{static_cast<int>(LogLevel::info)};
  std::atomic<bool> has_sink{false};
};
inline LogState& log_state() {
  static LogState state;  // never destroyed before its last use: function-local static
  return state;
}
}  // namespace detail

// Installs `sink` (an empty function removes it). Returns after any call of the previous sink has finished.
inline void set_log_sink(LogSink sink) {
  auto& s = detail::log_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.has_sink.store(static_cast<bool>(sink));
  s.sink = std::move(sink);
}

// Lines below `threshold` are dropped before any formatting the caller guards with log_enabled().
inline void set_log_threshold(LogLevel threshold) {
  detail::log_state().threshold.store(static_cast<int>(threshold));
}
inline LogLevel log_threshold() { return static_cast<LogLevel>(detail::log_state().threshold.load()); }

// True when a line at `level` would reach a sink: use it to skip building expensive messages.
inline bool log_enabled(LogLevel level) {
  const auto& s = detail::log_state();
  return s.has_sink.load(std::memory_order_relaxed) && level != LogLevel::off &&
         static_cast<int>(level) >= s.threshold.load(std::memory_order_relaxed);
}

// Splits `message` into lines and hands each to the sink. Never throws: logging must not turn a success
// into a failure, so an exception thrown by the sink is swallowed.
inline void log(LogLevel level, std::string_view message) noexcept {
  if (!log_enabled(level)) return;
  auto& s = detail::log_state();
  try {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.sink) return;
    std::size_t start = 0;
    while (true) {
      const std::size_t end = message.find('\n', start);
      std::string_view line = message.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      // A trailing newline ends the last line; it does not start an empty one.
      if (end == std::string_view::npos) {
        if (!(start > 0 && start == message.size())) s.sink(level, line);
        break;
      }
      s.sink(level, line);
      start = end + 1;
    }
  } catch (...) {
  }
}

inline const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
  }
  return "unknown";
}

}  // namespace vlm
