#include "base/error.h"

namespace vlm {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid argument";
    case ErrorCode::not_found: return "not found";
    case ErrorCode::io: return "I/O error";
    case ErrorCode::corrupt_data: return "corrupt data";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::limit_exceeded: return "limit exceeded";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::out_of_memory: return "out of memory";
    case ErrorCode::internal: return "internal error";
  }
  return "unknown error";
}

void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace vlm
