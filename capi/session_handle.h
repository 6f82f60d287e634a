// The session handle behind vlm_session, shared by the C API files that take one.
#pragma once

#include <atomic>
#include <memory>

#include "session/session.h"

struct vlm_session {
  std::unique_ptr<vlm::Session> session;
  std::atomic<bool> cancel{false};
  bool has_trainer = false;
};
