/* Step-by-step LoRA training through the C API on the tiny Qwen2-VL checkpoint: the loss falls, the adapter and
** the merged model are written, a saved training state continues bit for bit, bad arguments are errors. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vlmrt.h"

#define BASE VLM_FIXTURES_DIR "/session/qwen2_vl_tiny"
#define IMAGES VLM_FIXTURES_DIR "/train/data/images/"

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return 0;
  fclose(f);
  return 1;
}

int main(void) {
  vlm_session_options so;
  vlm_session *session = NULL;
  vlm_train_options to;
  vlm_trainer *trainer = NULL;
  vlm_train_example examples[2];
  vlm_train_step_result result, first, replay;
  unsigned char rgb[8 * 6 * 3];
  char dir[] = "/tmp/vlmrt-train-c-XXXXXX";
  char path[512];
  int64_t trainable = 0, total = 0;
  int i;
  double initial_loss = 0;

  if (mkdtemp(dir) == NULL) return 1;
  vlm_session_options_init(&so);
  so.model = BASE;
  CHECK(vlm_session_create(&so, &session) == VLM_OK);
  if (session == NULL) return 1;

  vlm_train_options_init(&to);
  CHECK(to.struct_size == sizeof to && to.r == 8 && to.max_grad_norm == 1.0 && to.loss_on_response_only == 1);
  to.r = 4;
  to.alpha = 8;
  to.learning_rate = 1e-2;
  CHECK(vlm_trainer_create(session, &to, &trainer) == VLM_OK);
  CHECK(vlm_trainer_parameter_counts(trainer, &trainable, &total) == VLM_OK);
  CHECK(trainable == 1792);
  CHECK(total == 123392 + 1792);

  /* One example with an image file, one with an RGB buffer (a red 8x6 picture, rows padded to no stride). */
  for (i = 0; i < 8 * 6; ++i) {
    rgb[3 * i] = 200;
    rgb[3 * i + 1] = 10;
    rgb[3 * i + 2] = 10;
  }
  memset(examples, 0, sizeof examples);
  examples[0].instruction = "Describe this image .";
  examples[0].response = "a red table in the kitchen .";
  examples[0].image_path = IMAGES "img0.png";
  examples[1].instruction = "What is shown ?";
  examples[1].response = "a red square .";
  examples[1].rgb = rgb;
  examples[1].width = 8;
  examples[1].height = 6;

  for (i = 0; i < 6; ++i) {
    CHECK(vlm_train_step(trainer, examples, 2, &result) == VLM_OK);
    if (i == 0) initial_loss = result.loss;
    CHECK(result.step == i + 1);
    CHECK(result.learning_rate == 1e-2);
    CHECK(result.num_predicted_tokens > 0);
  }
  CHECK(result.loss < initial_loss);  /* the loss falls on the examples it trains on */

  /* A saved state continues bit for bit. */
  snprintf(path, sizeof path, "%s/state", dir);
  CHECK(vlm_trainer_save_state(trainer, path) == VLM_OK);
  CHECK(vlm_train_step(trainer, examples, 2, &first) == VLM_OK);
  CHECK(vlm_trainer_load_state(trainer, path) == VLM_OK);
  CHECK(vlm_train_step(trainer, examples, 2, &replay) == VLM_OK);
  CHECK(first.loss == replay.loss && first.grad_norm == replay.grad_norm && first.step == replay.step);

  snprintf(path, sizeof path, "%s/adapter", dir);
  CHECK(vlm_trainer_save_adapter(trainer, path) == VLM_OK);
  snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", dir);
  CHECK(file_exists(path));
  snprintf(path, sizeof path, "%s/adapter/adapter_config.json", dir);
  CHECK(file_exists(path));

  /* Bad arguments: errors, outputs untouched. */
  memset(&result, 0, sizeof result);
  CHECK(vlm_train_step(NULL, examples, 2, &result) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_train_step(trainer, examples, 0, &result) == VLM_ERR_INVALID_ARGUMENT);
  examples[1].response = "";
  CHECK(vlm_train_step(trainer, examples, 2, &result) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "example 1") != NULL);
  examples[1].response = "a red square .";
  examples[0].image_path = IMAGES "no_such.png";
  CHECK(vlm_train_step(trainer, examples, 2, &result) == VLM_ERR_NOT_FOUND);
  CHECK(result.step == 0);
  examples[0].image_path = IMAGES "img0.png";
  CHECK(vlm_trainer_create(session, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT); /* one trainer per session */
  CHECK(vlm_trainer_load_state(trainer, dir) == VLM_ERR_NOT_FOUND);

  /* Merged export: a Hugging Face folder that a new session opens. */
  snprintf(path, sizeof path, "%s/merged", dir);
  CHECK(vlm_trainer_export_merged(trainer, path) == VLM_OK);
  CHECK(vlm_train_step(trainer, examples, 2, &result) == VLM_ERR_INVALID_ARGUMENT);
  vlm_trainer_free(trainer);
  trainer = NULL;
  vlm_trainer_free(NULL);
  {
    vlm_session *merged = NULL;
    vlm_session *adapted = NULL;
    so.model = path;
    CHECK(vlm_session_create(&so, &merged) == VLM_OK);
    vlm_session_free(merged);
    so.model = BASE;
    CHECK(vlm_session_create(&so, &adapted) == VLM_OK);
    snprintf(path, sizeof path, "%s/adapter", dir);
    CHECK(vlm_session_load_adapter(adapted, path) == VLM_OK);
    CHECK(vlm_session_load_adapter(adapted, dir) == VLM_ERR_NOT_FOUND);
    CHECK(vlm_session_load_adapter(NULL, path) == VLM_ERR_INVALID_ARGUMENT);
    vlm_session_free(adapted);
  }

  /* Options errors. */
  to.struct_size = 0;
  CHECK(vlm_trainer_create(session, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT);
  vlm_train_options_init(&to);
  to.lr_scheduler_type = "linear";
  CHECK(vlm_trainer_create(session, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(strstr(vlm_last_error(), "total_steps") != NULL);
  vlm_train_options_init(&to);
  {
    const char *targets[] = {"no_such_proj"};
    to.target_modules = targets;
    to.num_target_modules = 1;
    CHECK(vlm_trainer_create(session, &to, &trainer) == VLM_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vlm_last_error(), "no_such_proj") != NULL);
  }
  CHECK(trainer == NULL);
  vlm_session_free(session);

  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  if (system(path) != 0) fprintf(stderr, "could not remove %s\n", dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
