/* The log callback through the public C API: whole lines, levels, threshold, removal, thread hand-over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../capi/check.h"
#include "vlmrt.h"

#define MAX_LINES 64

typedef struct captured {
  int count;
  vlm_log_level levels[MAX_LINES];
  char lines[MAX_LINES][512];
} captured;

static void capture(vlm_log_level level, const char *line, void *user_data) {
  captured *c = (captured *)user_data;
  if (c->count >= MAX_LINES) return;
  c->levels[c->count] = level;
  strncpy(c->lines[c->count], line, sizeof c->lines[0] - 1);
  c->lines[c->count][sizeof c->lines[0] - 1] = '\0';
  ++c->count;
}

static int any_newline(const captured *c) {
  int i;
  for (i = 0; i < c->count; ++i) {
    if (strchr(c->lines[i], '\n') != NULL || strchr(c->lines[i], '\r') != NULL) return 1;
  }
  return 0;
}

int main(void) {
  captured c;
  char *path = NULL;
  memset(&c, 0, sizeof c);

  /* Defaults: INFO threshold, no callback (a failing call prints nothing and calls nothing). */
  CHECK(vlm_get_log_level() == VLM_LOG_INFO);
  CHECK(vlm_model_locate(NULL, &path) == VLM_ERR_INVALID_ARGUMENT);

  /* Names. */
  CHECK(strcmp(vlm_log_level_name(VLM_LOG_DEBUG), "debug") == 0);
  CHECK(strcmp(vlm_log_level_name(VLM_LOG_INFO), "info") == 0);
  CHECK(strcmp(vlm_log_level_name(VLM_LOG_WARNING), "warning") == 0);
  CHECK(strcmp(vlm_log_level_name(VLM_LOG_ERROR), "error") == 0);
  CHECK(strcmp(vlm_log_level_name(VLM_LOG_OFF), "off") == 0);
  CHECK(strcmp(vlm_log_level_name((vlm_log_level)15), "unknown") == 0);

  /* Failed calls are logged at DEBUG: below the default threshold, nothing arrives. */
  vlm_set_log_callback(capture, &c);
  CHECK(vlm_model_locate(NULL, &path) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(c.count == 0);

  /* At DEBUG the failure arrives as one line naming the function, the status and the message. */
  CHECK(vlm_set_log_level(VLM_LOG_DEBUG) == VLM_OK);
  CHECK(vlm_get_log_level() == VLM_LOG_DEBUG);
  CHECK(vlm_model_locate(NULL, &path) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(c.count == 1);
  CHECK(c.levels[0] == VLM_LOG_DEBUG);
  CHECK(strcmp(c.lines[0], "vlm_model_locate failed (invalid argument): model must not be NULL") == 0);
  /* Logging does not disturb the error message of the call. */
  CHECK(strcmp(vlm_last_error(), "model must not be NULL") == 0);

  /* A multi-line message arrives as several whole lines, none with a newline, none of them a trailing "". */
  c.count = 0;
  CHECK(vlm_model_locate("Nobody/Nothing-Here", &path) == VLM_ERR_NOT_FOUND);
  CHECK(c.count >= 4);
  CHECK(strncmp(c.lines[0], "vlm_model_locate failed (not found): model Nobody/Nothing-Here was not found.", 77) == 0);
  CHECK(strncmp(c.lines[1], "  - ", 4) == 0);
  CHECK(!any_newline(&c));
  CHECK(c.count > 0 && c.lines[c.count - 1][0] != '\0');
  CHECK(path == NULL);

  /* Successful calls log nothing at DEBUG in this API (no noise). */
  c.count = 0;
  CHECK(vlm_model_locate(VLM_FIXTURES_DIR "/io/sharded", &path) == VLM_OK);
  vlm_string_free(path);
  path = NULL;
  CHECK(c.count == 0);

  /* Threshold above DEBUG again, and OFF: nothing. */
  CHECK(vlm_set_log_level(VLM_LOG_OFF) == VLM_OK);
  CHECK(vlm_model_locate(NULL, &path) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(c.count == 0);

  /* An unknown level is refused and the threshold stays (and the refusal itself is not logged: OFF). */
  CHECK(vlm_set_log_level((vlm_log_level)25) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "log level 25") != NULL);
  CHECK(vlm_get_log_level() == VLM_LOG_OFF);
  CHECK(c.count == 0);

  /* Removing the callback: nothing arrives even at DEBUG. */
  CHECK(vlm_set_log_level(VLM_LOG_DEBUG) == VLM_OK);
  vlm_set_log_callback(NULL, &c);
  CHECK(vlm_model_locate(NULL, &path) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(c.count == 0);
  CHECK(vlm_set_log_level(VLM_LOG_INFO) == VLM_OK);

  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
