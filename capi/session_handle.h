// The session handle behind vlm_session, shared by the C API files that take one.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "session/session.h"
#include "vlmrt.h"

namespace vlm::capi {
// "cpu", "cuda" or "cuda:N" as a torch device; unsupported when CUDA is asked for but absent.
torch::Device parse_device(const std::string& name);
// Overrides `g` with the fields of `options` the caller set (zero / negative fields keep g's values: the
// checkpoint's or the config's defaults); `what` names the struct in errors. options may be NULL.
void apply_generation_options(const vlm_generation_options* options, const char* what, vlm::GenerationOptions& g);
}  // namespace vlm::capi

struct vlm_session {
  std::unique_ptr<vlm::Session> session;
  std::atomic<bool> cancel{false};
  bool has_trainer = false;
};
