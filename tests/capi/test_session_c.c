/* Sessions and generation through the public C API on the tiny Qwen2-VL checkpoint folder of
** tests/fixtures/session (its expected tokens come from transformers' generate(), see cases.json "one_image"). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "vlmrt.h"


#define MODEL VLM_FIXTURES_DIR "/session/qwen2_vl_tiny"

static int streamed = 0;
static int count_tokens(size_t prompt_index, int64_t token, void *user_data) {
  (void)prompt_index;
  (void)token;
  ++*(int *)user_data;
  ++streamed;
  return 1;
}
/* Counts the log lines that report coded weight copies. */
static int coded_lines = 0;
static void count_coded_lines(vlm_log_level level, const char *line, void *user_data) {
  (void)level;
  (void)user_data;
  if (strstr(line, "12-bit coded form") != NULL) ++coded_lines;
}

/* Whether the decode kernel reads coded copies on this CPU (AVX2 + FMA and above). */
static int kernel_reads_copies(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

/* vlm_session_options.coded_weights: a bfloat16 session logs the copies it makes; -1 makes none; other values
** are rejected; a struct_size from a header without the field is accepted and gets the default. */
static void check_coded_weights_option(void) {
  vlm_session_options bo;
  vlm_session *bf16 = NULL;
  const int expected_lines = kernel_reads_copies();
  vlm_set_log_callback(count_coded_lines, NULL);
  vlm_session_options_init(&bo);
  CHECK(bo.coded_weights == 0);
  bo.model = MODEL;
  bo.dtype = "bfloat16";
  coded_lines = 0;
  CHECK(vlm_session_create(&bo, &bf16) == VLM_OK);
  CHECK(coded_lines == expected_lines);
  vlm_session_free(bf16);
  bf16 = NULL;

  bo.coded_weights = -1;
  coded_lines = 0;
  CHECK(vlm_session_create(&bo, &bf16) == VLM_OK);
  CHECK(coded_lines == 0);
  vlm_session_free(bf16);
  bf16 = NULL;

  bo.coded_weights = 1;
  CHECK(vlm_session_create(&bo, &bf16) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "coded_weights") != NULL);
  CHECK(bf16 == NULL);

  /* The field lies past the older struct_size, so its value here is not read. */
  bo.struct_size = offsetof(vlm_session_options, coded_weights);
  coded_lines = 0;
  CHECK(vlm_session_create(&bo, &bf16) == VLM_OK);
  CHECK(coded_lines == expected_lines);
  vlm_session_free(bf16);
  bo.struct_size = offsetof(vlm_session_options, coded_weights) + 1;
  bf16 = NULL;
  CHECK(vlm_session_create(&bo, &bf16) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(bf16 == NULL);
  vlm_set_log_callback(NULL, NULL);
}

static int stop_after_two(size_t prompt_index, int64_t token, void *user_data) {
  (void)prompt_index;
  (void)token;
  return ++*(int *)user_data < 2;
}

int main(void) {
  static const int64_t expected[8] = {6, 6, 6, 6, 6, 101, 101, 101}; /* cases.json: one_image */
  vlm_session_options so;
  vlm_session *session = NULL;
  vlm_generation_options go;
  vlm_generation *results = NULL;
  const char *images[1] = {VLM_FIXTURES_DIR "/session/wide.png"};
  vlm_prompt prompt;
  int count = 0;

  vlm_session_options_init(&so);
  CHECK(vlm_session_create(&so, &session) == VLM_ERR_INVALID_ARGUMENT); /* no model */
  so.model = VLM_FIXTURES_DIR "/session/missing";
  CHECK(vlm_session_create(&so, &session) == VLM_ERR_NOT_FOUND);
  so.model = MODEL;
  so.device = "tpu";
  CHECK(vlm_session_create(&so, &session) == VLM_ERR_INVALID_ARGUMENT);
  so.device = NULL;
  so.struct_size = 1;
  CHECK(vlm_session_create(&so, &session) == VLM_ERR_INVALID_ARGUMENT);
  so.struct_size = sizeof so;
  CHECK(session == NULL);
  CHECK(vlm_session_create(&so, &session) == VLM_OK);
  if (session == NULL) {
    printf("%d passed, %d failed\n", passed, failed + 1);
    return 1;
  }

  prompt.text = "Describe this image .";
  prompt.system_message = NULL;
  prompt.image_paths = images;
  prompt.num_images = 1;
  vlm_generation_options_init(&go);
  go.max_new_tokens = 8;
  go.do_sample = 0;
  go.on_token = count_tokens;
  go.user_data = &count;
  CHECK(vlm_generate(session, &prompt, 1, &go, &results) == VLM_OK);
  if (results != NULL) {
    CHECK(results[0].num_tokens == 8);
    CHECK(results[0].num_tokens == 8 && memcmp(results[0].tokens, expected, sizeof expected) == 0);
    CHECK(strcmp(results[0].text, "assistant assistant assistant assistant assistant w101 w101 w101") == 0);
    CHECK(strcmp(results[0].finish_reason, "length") == 0);
    CHECK(count == 8);
    vlm_generations_free(results, 1);
    results = NULL;
  }

  /* A callback returning 0 stops generation: the result is marked cancelled. */
  count = 0;
  go.on_token = stop_after_two;
  CHECK(vlm_generate(session, &prompt, 1, &go, &results) == VLM_OK);
  if (results != NULL) {
    CHECK(results[0].num_tokens == 2);
    CHECK(strcmp(results[0].finish_reason, "cancelled") == 0);
    vlm_generations_free(results, 1);
    results = NULL;
  }

  /* Bad inputs: errors, outputs untouched. */
  go.on_token = NULL;
  CHECK(vlm_generate(NULL, &prompt, 1, &go, &results) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_generate(session, &prompt, 0, &go, &results) == VLM_ERR_INVALID_ARGUMENT);
  images[0] = VLM_FIXTURES_DIR "/image/truncated.jpg";
  CHECK(vlm_generate(session, &prompt, 1, &go, &results) == VLM_ERR_CORRUPT_DATA);
  CHECK(strstr(vlm_last_error(), "truncated.jpg") != NULL);
  images[0] = VLM_FIXTURES_DIR "/session/wide.png";
  go.top_p = 1.5;
  CHECK(vlm_generate(session, &prompt, 1, &go, &results) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "top_p") != NULL);
  go.struct_size = 0;
  CHECK(vlm_generate(session, &prompt, 1, &go, &results) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(results == NULL);

  /* Scoring: the greedy continuation scores as greedy, with log-probs that sum up; another one does not. */
  {
    vlm_score_request requests[2];
    vlm_score_result *scores = NULL;
    requests[0].prompt = prompt;
    requests[0].continuation = "assistant assistant assistant assistant assistant w101 w101 w101";
    requests[1].prompt = prompt;
    requests[1].continuation = "two cats";
    CHECK(vlm_score(session, requests, 2, &scores) == VLM_OK);
    if (scores != NULL) {
      double sum = 0;
      CHECK(scores[0].num_tokens == 8);
      for (size_t i = 0; i < scores[0].num_tokens; ++i) {
        CHECK(scores[0].token_logprobs[i] <= 0.0);
        sum += scores[0].token_logprobs[i];
      }
      CHECK(scores[0].sum - sum < 1e-9 && sum - scores[0].sum < 1e-9);
      CHECK(scores[0].is_greedy == 1);
      CHECK(scores[1].num_tokens == 2);
      CHECK(scores[1].is_greedy == 0);
      CHECK(scores[1].sum < 0.0);
      vlm_score_results_free(scores, 2);
      scores = NULL;
    }
    requests[1].continuation = "";
    CHECK(vlm_score(session, requests, 2, &scores) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vlm_last_error(), "no tokens") != NULL);
    CHECK(scores == NULL);
    vlm_score_results_free(NULL, 1);
  }

  vlm_session_cancel(NULL);
  vlm_session_cancel(session);
  vlm_generations_free(NULL, 3);
  vlm_session_free(session);
  vlm_session_free(NULL);
  check_coded_weights_option();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
