// The session handle behind vlm_session, shared by the C API files that take one.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "session/session.h"

namespace vlm::capi {
// "cpu", "cuda" or "cuda:N" as a torch device; unsupported when CUDA is asked for but absent.
torch::Device parse_device(const std::string& name);
}  // namespace vlm::capi

struct vlm_session {
  std::unique_ptr<vlm::Session> session;
  std::atomic<bool> cancel{false};
  bool has_trainer = false;
};
