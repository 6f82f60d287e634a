// Error type used throughout the core. Every failure the user can cause (bad file, bad option, bad data)
// is reported as vlm::Error with a category and a message that names the file/key/row and says how to
// fix it. The C API maps the category to a vlm_status code; nothing else crosses that boundary.
#pragma once

#include <stdexcept>
#include <string>

namespace vlm {

enum class ErrorCode {
  invalid_argument = 1,  // an option or argument the caller passed is wrong
  not_found = 2,         // a file, model, key or tensor does not exist
  io = 3,                // the operating system refused a read or write
  corrupt_data = 4,      // a file exists but its content is malformed or truncated
  unsupported = 5,       // valid input that this build cannot handle (format, dtype, construct)
  limit_exceeded = 6,    // input larger than a configured safety limit
  cancelled = 7,         // the caller asked to stop
  out_of_memory = 8,
  internal = 9,          // a bug in vlmrt: please report it
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void fail(ErrorCode code, const std::string& message);

}  // namespace vlm
