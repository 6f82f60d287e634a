// C API: sessions and generation (include/vlmrt.h, "Sessions").
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include "capi_internal.h"
#include "image/image.h"
#include "model/registry.h"
#include "session/session.h"

#include "session_handle.h"

using namespace vlm::capi;

namespace vlm::capi {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      vlm::fail(vlm::ErrorCode::unsupported, "device \"" + name + "\" was requested but this build of libtorch has no CUDA device available");
    }
    return torch::Device(name);
  }
  vlm::fail(vlm::ErrorCode::invalid_argument, "device must be \"cpu\", \"cuda\" or \"cuda:N\", not \"" + name + "\"");
}

void apply_generation_options(const vlm_generation_options* options, const char* what, vlm::GenerationOptions& g) {
  if (options == nullptr) return;
  check_struct_size(options, sizeof *options, what);
  if (options->max_new_tokens > 0) g.max_new_tokens = options->max_new_tokens;
  if (options->min_new_tokens > 0) g.min_new_tokens = options->min_new_tokens;
  if (options->num_beams > 0) g.num_beams = options->num_beams;
  if (options->top_k > 0) g.top_k = options->top_k;
  if (options->temperature > 0) g.temperature = options->temperature;
  if (options->top_p > 0) g.top_p = options->top_p;
  if (options->repetition_penalty > 0) g.repetition_penalty = options->repetition_penalty;
  if (options->length_penalty != 0) g.length_penalty = options->length_penalty;
  if (options->do_sample >= 0) g.do_sample = options->do_sample != 0;
  if (options->seed != 0) g.seed = options->seed;
  if (options->on_token != nullptr) {
    vlm_token_callback callback = options->on_token;
    void* user_data = options->user_data;
    g.on_token = [callback, user_data](std::int64_t row, std::int64_t token) {
      return callback(static_cast<size_t>(row), token, user_data) != 0;
    };
  }
}

}  // namespace vlm::capi

namespace {

std::string or_default(const char* s, const char* fallback) { return s != nullptr && *s != '\0' ? s : fallback; }

// A vlm_prompt as a conversation: optional system message, then one user turn with the images before the text.
vlm::Conversation conversation_of(const vlm_prompt& p, const std::string& where) {
  require(p.text, (where + ".text").c_str());
  if (p.num_images > 0) require(p.image_paths, (where + ".image_paths").c_str());
  vlm::Conversation c;
  if (p.system_message != nullptr) c.messages.push_back({{"role", "system"}, {"content", p.system_message}});
  nlohmann::ordered_json content = nlohmann::ordered_json::array();
  for (size_t k = 0; k < p.num_images; ++k) {
    require(p.image_paths[k], (where + ".image_paths[" + std::to_string(k) + "]").c_str());
    c.images.push_back(vlm::load_image(p.image_paths[k]));
    content.push_back({{"type", "image"}});
  }
  content.push_back({{"type", "text"}, {"text", p.text}});
  c.messages.push_back({{"role", "user"}, {"content", content}});
  return c;
}

}  // namespace

extern "C" {

void vlm_session_options_init(vlm_session_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
}

vlm_status vlm_session_create(const vlm_session_options* options, vlm_session** out_session) {
  return guard([&] {
    vlm_session_options defaults;
    vlm_session_options_init(&defaults);
    // The struct of 0.1.0's header ended at num_threads.
    const auto given = versioned_options(options, defaults, "options", {offsetof(vlm_session_options, coded_weights)});
    require(given.model, "options->model");
    require(out_session, "out_session");
    if (given.coded_weights != 0 && given.coded_weights != -1) {
      vlm::fail(vlm::ErrorCode::invalid_argument, "options->coded_weights is " + std::to_string(given.coded_weights) +
                                                 ": use 0 (coded weight copies where the CPU reads them) or -1 (none)");
    }
    vlm::SessionOptions o;
    o.model = given.model;
    o.load.device = parse_device(or_default(given.device, "cpu"));
    o.load.dtype = vlm::parse_model_dtype(or_default(given.dtype, "float32"));
    o.load.coded_decode_weights = given.coded_weights == 0;
    if (given.min_pixels > 0) o.image.min_pixels = static_cast<std::int64_t>(given.min_pixels);
    if (given.max_pixels > 0) o.image.max_pixels = static_cast<std::int64_t>(given.max_pixels);
    o.image.num_threads = given.num_threads;
    auto handle = std::make_unique<vlm_session>();
    handle->session = vlm::Session::open(o);
    *out_session = handle.release();
  });
}

void vlm_session_free(vlm_session* session) { delete session; }

void vlm_session_cancel(vlm_session* session) {
  if (session != nullptr) session->cancel.store(true);
}

void vlm_generation_options_init(vlm_generation_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->do_sample = -1;
}

vlm_status vlm_generate(vlm_session* session, const vlm_prompt* prompts, size_t num_prompts,
                        const vlm_generation_options* options, vlm_generation** out_results) {
  return guard([&] {
    require(session, "session");
    require(prompts, "prompts");
    require(out_results, "out_results");
    if (num_prompts == 0) vlm::fail(vlm::ErrorCode::invalid_argument, "num_prompts must be at least 1");
    vlm::GenerationOptions g;
    apply_generation_options(options, "options", g);
    std::vector<vlm::Conversation> conversations;
    for (size_t i = 0; i < num_prompts; ++i) {
      conversations.push_back(conversation_of(prompts[i], "prompts[" + std::to_string(i) + "]"));
    }
    session->cancel.store(false);
    g.cancel = &session->cancel;
    std::vector<vlm::GeneratedText> generated = session->session->generate(conversations, g);

    auto* results = static_cast<vlm_generation*>(std::calloc(num_prompts, sizeof(vlm_generation)));
    if (results == nullptr) throw std::bad_alloc();
    try {
      for (size_t i = 0; i < num_prompts; ++i) {
        results[i].text = copy_string(generated[i].text);
        results[i].num_tokens = generated[i].tokens.size();
        results[i].tokens = static_cast<int64_t*>(std::malloc((generated[i].tokens.size() + 1) * sizeof(int64_t)));
        if (results[i].tokens == nullptr) throw std::bad_alloc();
        std::copy(generated[i].tokens.begin(), generated[i].tokens.end(), results[i].tokens);
        results[i].finish_reason = vlm::finish_reason_name(generated[i].finish_reason);
      }
    } catch (...) {
      vlm_generations_free(results, num_prompts);
      throw;
    }
    *out_results = results;
  });
}

void vlm_generations_free(vlm_generation* results, size_t num_results) {
  if (results == nullptr) return;
  for (size_t i = 0; i < num_results; ++i) {
    std::free(results[i].text);
    std::free(results[i].tokens);
  }
  std::free(results);
}

vlm_status vlm_score(vlm_session* session, const vlm_score_request* requests, size_t num_requests,
                     vlm_score_result** out_results) {
  return guard([&] {
    require(session, "session");
    require(requests, "requests");
    require(out_results, "out_results");
    if (num_requests == 0) vlm::fail(vlm::ErrorCode::invalid_argument, "num_requests must be at least 1");
    std::vector<vlm::ContinuationScore> scores;
    for (size_t i = 0; i < num_requests; ++i) {
      const std::string where = "requests[" + std::to_string(i) + "]";
      require(requests[i].continuation, (where + ".continuation").c_str());
      scores.push_back(session->session->score(conversation_of(requests[i].prompt, where + ".prompt"), requests[i].continuation));
    }
    auto* results = static_cast<vlm_score_result*>(std::calloc(num_requests, sizeof(vlm_score_result)));
    if (results == nullptr) throw std::bad_alloc();
    for (size_t i = 0; i < num_requests; ++i) {
      const auto& s = scores[i];
      results[i].token_logprobs = static_cast<double*>(std::malloc((s.token_logprobs.size() + 1) * sizeof(double)));
      if (results[i].token_logprobs == nullptr) {
        vlm_score_results_free(results, num_requests);
        throw std::bad_alloc();
      }
      std::copy(s.token_logprobs.begin(), s.token_logprobs.end(), results[i].token_logprobs);
      results[i].num_tokens = s.token_logprobs.size();
      results[i].sum = s.sum;
      results[i].is_greedy = s.is_greedy ? 1 : 0;
    }
    *out_results = results;
  });
}

void vlm_score_results_free(vlm_score_result* results, size_t num_results) {
  if (results == nullptr) return;
  for (size_t i = 0; i < num_results; ++i) std::free(results[i].token_logprobs);
  std::free(results);
}

}  // extern "C"
