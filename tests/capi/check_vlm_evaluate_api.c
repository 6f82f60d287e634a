/* vlm_evaluate_run through the public C API (C99): argument checks, callbacks, stopping, result accessors, on the
** tiny Qwen2-VL checkpoint and tests/fixtures/evaluate. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "vlmrt.h"

#define MODEL VLM_FIXTURES_DIR "/session/qwen2_vl_tiny"
#define CSV VLM_FIXTURES_DIR "/evaluate/val.csv"

typedef struct calls {
  int progress;
  int logs;
  int64_t last_done, last_total;
  int stop_at;
} calls;

static int on_progress(int64_t done, int64_t total, void *user_data) {
  calls *c = (calls *)user_data;
  ++c->progress;
  c->last_done = done;
  c->last_total = total;
  return c->stop_at == 0 || done < c->stop_at;
}

static void on_log(const char *line, void *user_data) {
  calls *c = (calls *)user_data;
  if (line != NULL && strchr(line, '\n') == NULL) ++c->logs;
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return 0;
  fclose(f);
  return 1;
}

int main(void) {
  vlm_evaluate_options o;
  vlm_generation_options g;
  vlm_evaluate_result *result = NULL;
  calls c;
  double value = -1;
  char out_dir[512], predictions[600];
  const char *adapters[1] = {VLM_FIXTURES_DIR "/train/adapter_after_curve"};

  snprintf(out_dir, sizeof out_dir, "%s/vlm_evaluate_api_out", BINARY_DIR);
  snprintf(predictions, sizeof predictions, "%s/predictions.jsonl", out_dir);
  remove(predictions);
  memset(&c, 0, sizeof c);

  /* Arguments. */
  CHECK(vlm_evaluate_run(NULL, &result) == VLM_ERR_INVALID_ARGUMENT);
  vlm_evaluate_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.batch_size == 0 && o.fetch_retries == 2 && o.fetch_timeout_ms == 60000 && o.meteor_mode == VLM_METEOR_FULL);
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT); /* no model, no run */
  CHECK(strstr(vlm_last_error(), "model") != NULL);
  o.model = MODEL;
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT); /* no CSV */
  o.csv = CSV;
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT); /* no output folder */
  o.output_dir = out_dir;
  CHECK(vlm_evaluate_run(&o, NULL) == VLM_ERR_INVALID_ARGUMENT);
  o.struct_size = 3;
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "struct_size") != NULL);
  o.struct_size = sizeof o;
  o.num_adapters = 1; /* adapter_paths NULL */
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT);
  o.num_adapters = 0;
  o.meteor_mode = 7;
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT);
  o.meteor_mode = VLM_METEOR_FULL;
  o.max_samples = -1;
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT);
  o.max_samples = 0;
  o.run = "r";
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT); /* a run without config or results folder */
  o.run = NULL;
  o.output_dir = "/"; /* a system folder is refused before the model loads */
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "is a system or home folder") != NULL);
  o.output_dir = out_dir;
  CHECK(result == NULL);

  /* Stopping after the first batch through the progress callback: VLM_ERR_CANCELLED, nothing written. */
  vlm_generation_options_init(&g);
  g.max_new_tokens = 6;
  o.generation = &g;
  o.batch_size = 2;
  o.prompt_template = "Question : {query}";
  o.system_message = "You are a helpful assistant .";
  o.on_progress = on_progress;
  o.on_log = on_log;
  o.user_data = &c;
  c.stop_at = 2;
  CHECK(vlm_evaluate_run(&o, &result) == VLM_ERR_CANCELLED);
  CHECK(c.progress == 1 && c.last_done == 2 && c.last_total == 5);
  CHECK(!file_exists(predictions));
  CHECK(result == NULL);

  /* A whole evaluation with the adapter. */
  memset(&c, 0, sizeof c);
  o.adapter_paths = adapters;
  o.num_adapters = 1;
  CHECK(vlm_evaluate_run(&o, &result) == VLM_OK);
  CHECK(result != NULL);
  CHECK(c.progress == 3 && c.last_done == 5 && c.last_total == 5);
  CHECK(c.logs > 0);
  CHECK(vlm_evaluate_result_num_examples(result) == 5);
  CHECK(file_exists(vlm_evaluate_result_predictions_path(result)));
  CHECK(file_exists(vlm_evaluate_result_metrics_path(result)));
  CHECK(strstr(vlm_evaluate_result_metrics_json(result), "\"token_statistics\"") != NULL);
  CHECK(strstr(vlm_evaluate_result_metrics_json(result), "adapter_after_curve") != NULL);
  CHECK(vlm_evaluate_result_metric(result, "exact_match", &value) == VLM_OK);
  CHECK(value == 0.2); /* expected.json adapter_run: 1 of 5 rows */
  CHECK(vlm_evaluate_result_metric(result, "bleu", &value) == VLM_OK);
  CHECK(value > 24.718618 && value < 24.718619); /* sacrebleu: 24.71861834044893 */
  CHECK(vlm_evaluate_result_metric(result, "nope", &value) == VLM_ERR_NOT_FOUND);
  CHECK(strstr(vlm_last_error(), "bleu") != NULL); /* lists what there is */
  CHECK(vlm_evaluate_result_metric(result, NULL, &value) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_evaluate_result_metric(NULL, "bleu", &value) == VLM_ERR_INVALID_ARGUMENT);
  vlm_evaluate_result_free(result);

  /* NULL-safe accessors. */
  CHECK(strcmp(vlm_evaluate_result_metrics_json(NULL), "") == 0);
  CHECK(strcmp(vlm_evaluate_result_predictions_path(NULL), "") == 0);
  CHECK(strcmp(vlm_evaluate_result_metrics_path(NULL), "") == 0);
  CHECK(vlm_evaluate_result_num_examples(NULL) == 0);
  vlm_evaluate_result_free(NULL);
  vlm_evaluate_options_init(NULL);

  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
