/* Two sessions generate at the same time from two threads, and one thread cancels the other's long generation
** with vlm_session_cancel. The short generation must equal the single-threaded result (cases.json "one_image"),
** the long one must end "cancelled" early with the greedy tokens up to that point. Built once more with
** -fsanitize=thread in build-tsan (see tests/bindings/README.md). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../capi/check.h"
#include "vlmrt.h"

#define MODEL VLM_FIXTURES_DIR "/session/qwen2_vl_tiny"
#define LONG_TOKENS 400
#define WAIT_AT 350 /* the long generation waits here for the cancel if it has not come yet */

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int long_started = 0;  /* the long generation streamed its first token */
static int cancel_sent = 0;   /* the other thread called vlm_session_cancel */
static int long_streamed = 0; /* tokens the long generation streamed */

typedef struct job {
  vlm_session *session;
  vlm_session *other; /* the session to cancel once this job's own generation is done (NULL: none) */
  int max_new_tokens;
  int with_image;
  vlm_status status;
  vlm_generation *result;
} job;

static int on_long_token(size_t prompt_index, int64_t token, void *user_data) {
  (void)prompt_index;
  (void)token;
  (void)user_data;
  pthread_mutex_lock(&mutex);
  ++long_streamed;
  if (!long_started) {
    long_started = 1;
    pthread_cond_broadcast(&changed);
  }
  /* Never finish before the cancel arrives: the test is about cancellation, not about a race. */
  while (long_streamed >= WAIT_AT && !cancel_sent) pthread_cond_wait(&changed, &mutex);
  pthread_mutex_unlock(&mutex);
  return 1;
}

static void *run_job(void *arg) {
  job *j = (job *)arg;
  static const char *images[1] = {VLM_FIXTURES_DIR "/session/wide.png"};
  vlm_prompt prompt;
  vlm_generation_options options;
  prompt.text = "Describe this image .";
  prompt.system_message = NULL;
  prompt.image_paths = images;
  prompt.num_images = j->with_image ? 1 : 0;
  vlm_generation_options_init(&options);
  options.max_new_tokens = j->max_new_tokens;
  options.min_new_tokens = j->max_new_tokens; /* no early EOS */
  options.do_sample = 0;
  if (j->other != NULL) {
    /* The short job starts once the long one is running, so that both generate at the same time. */
    pthread_mutex_lock(&mutex);
    while (!long_started) pthread_cond_wait(&changed, &mutex);
    pthread_mutex_unlock(&mutex);
  } else {
    options.on_token = on_long_token;
  }
  j->status = vlm_generate(j->session, &prompt, 1, &options, &j->result);
  if (j->other != NULL) {
    vlm_session_cancel(j->other);
    pthread_mutex_lock(&mutex);
    cancel_sent = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mutex);
  }
  return NULL;
}

int main(void) {
  static const int64_t expected[8] = {6, 6, 6, 6, 6, 101, 101, 101}; /* cases.json: one_image */
  vlm_session_options so;
  vlm_session *a = NULL, *b = NULL;
  job long_job, short_job;
  pthread_t ta, tb;

  vlm_session_options_init(&so);
  so.model = MODEL;
  so.num_threads = 1;
  CHECK(vlm_session_create(&so, &a) == VLM_OK);
  CHECK(vlm_session_create(&so, &b) == VLM_OK);
  if (a == NULL || b == NULL) {
    printf("%d passed, %d failed\n", passed, failed);
    return 1;
  }
  memset(&long_job, 0, sizeof long_job);
  memset(&short_job, 0, sizeof short_job);
  long_job.session = a;
  long_job.max_new_tokens = LONG_TOKENS;
  long_job.with_image = 1;
  short_job.session = b;
  short_job.other = a;
  short_job.max_new_tokens = 8;
  short_job.with_image = 1;

  CHECK(pthread_create(&ta, NULL, run_job, &long_job) == 0);
  CHECK(pthread_create(&tb, NULL, run_job, &short_job) == 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);

  CHECK(short_job.status == VLM_OK);
  if (short_job.result != NULL) {
    CHECK(short_job.result[0].num_tokens == 8 && memcmp(short_job.result[0].tokens, expected, sizeof expected) == 0);
    CHECK(strcmp(short_job.result[0].finish_reason, "length") == 0);
  }
  CHECK(long_job.status == VLM_OK);
  if (long_job.result != NULL) {
    size_t n = long_job.result[0].num_tokens, i;
    printf("long generation cancelled after %u tokens\n", (unsigned)n);
    CHECK(strcmp(long_job.result[0].finish_reason, "cancelled") == 0);
    CHECK(n >= 1 && n < LONG_TOKENS);
    CHECK((int)n == long_streamed);
    /* Same greedy tokens as a lone run, as far as it got. */
    for (i = 0; i < n && i < 8; ++i) CHECK(long_job.result[0].tokens[i] == expected[i]);
  }
  vlm_generations_free(short_job.result, 1);
  vlm_generations_free(long_job.result, 1);

  /* The cancel flag clears itself: the next generation on the cancelled session runs to its length. */
  long_job.other = NULL;
  long_job.max_new_tokens = 8;
  long_job.result = NULL;
  pthread_mutex_lock(&mutex);
  cancel_sent = 1;
  pthread_mutex_unlock(&mutex);
  run_job(&long_job);
  CHECK(long_job.status == VLM_OK);
  if (long_job.result != NULL) {
    CHECK(long_job.result[0].num_tokens == 8 && memcmp(long_job.result[0].tokens, expected, sizeof expected) == 0);
    CHECK(strcmp(long_job.result[0].finish_reason, "length") == 0);
  }
  vlm_generations_free(long_job.result, 1);
  vlm_session_free(a);
  vlm_session_free(b);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
