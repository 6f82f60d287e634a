/* A tour of libvlmrt from C: open a session on a model, generate an answer about an image (streaming the
** tokens), score a continuation's log-likelihood, and compute metrics of the answer against a reference; with
** ADAPTER_DIR, also train LoRA adapters for a few steps on the image, save them there, generate with them, and
** generate again from a second session that loads the saved adapter (the two answers must agree).
**
**   cc generate_score_metrics.c $(pkg-config --cflags --libs vlmrt) -o generate_score_metrics
**   ./generate_score_metrics MODEL IMAGE REFERENCE [ADAPTER_DIR]
**
** Prints one "key: value" line per result; exits 1 with the library's message on any error. */
#include <stdio.h>
#include <stdlib.h>

#include <vlmrt.h>

static int print_token(size_t prompt_index, int64_t token, void *user_data) {
  (void)prompt_index;
  ++*(int *)user_data;
  fprintf(stderr, "%lld ", (long long)token);
  return 1; /* 0 would stop the generation */
}

static void print_log(vlm_log_level level, const char *line, void *user_data) {
  (void)user_data;
  fprintf(stderr, "[vlmrt %s] %s\n", vlm_log_level_name(level), line);
}

static int fail(const char *what) {
  fprintf(stderr, "error: %s: %s\n", what, vlm_last_error());
  return 1;
}

static void print_tokens(const char *label, const vlm_generation *g) {
  size_t i;
  printf("%s:", label);
  for (i = 0; i < g->num_tokens; ++i) printf(" %lld", (long long)g->tokens[i]);
  printf("\n");
}

/* Trains 3 steps on the image, saves the adapter, and compares generation with the trained adapters attached to
** generation from a fresh session that loads the saved folder. */
static int train_and_reload(vlm_session *session, const char *model, const vlm_prompt *prompt, const char *folder) {
  vlm_train_options train_options;
  vlm_trainer *trainer = NULL;
  vlm_train_example example;
  vlm_train_step_result step;
  vlm_generation_options options;
  vlm_generation *tuned = NULL, *reloaded = NULL;
  vlm_session_options session_options;
  vlm_session *second = NULL;
  int64_t trainable = 0, total = 0;
  int i, same;

  vlm_train_options_init(&train_options);
  train_options.r = 4;
  train_options.alpha = 8;
  train_options.learning_rate = 1e-2;
  if (vlm_trainer_create(session, &train_options, &trainer) != VLM_OK) return fail("vlm_trainer_create");
  if (vlm_trainer_parameter_counts(trainer, &trainable, &total) != VLM_OK) return fail("vlm_trainer_parameter_counts");
  printf("trainable_parameters: %lld of %lld\n", (long long)trainable, (long long)total);
  example.instruction = prompt->text;
  example.response = "a wide picture";
  example.image_path = prompt->image_paths[0];
  example.rgb = NULL;
  example.width = example.height = 0;
  example.stride = 0;
  for (i = 0; i < 3; ++i) {
    if (vlm_train_step(trainer, &example, 1, &step) != VLM_OK) {
      vlm_trainer_free(trainer);
      return fail("vlm_train_step");
    }
    printf("step %lld: loss %.6f grad_norm %.6f lr %g tokens %lld\n", (long long)step.step, step.loss, step.grad_norm,
           step.learning_rate, (long long)step.num_predicted_tokens);
  }
  if (vlm_trainer_save_adapter(trainer, folder) != VLM_OK) {
    vlm_trainer_free(trainer);
    return fail("vlm_trainer_save_adapter");
  }
  vlm_generation_options_init(&options);
  options.max_new_tokens = 8;
  options.do_sample = 0;
  if (vlm_generate(session, prompt, 1, &options, &tuned) != VLM_OK) {
    vlm_trainer_free(trainer);
    return fail("vlm_generate (trained)");
  }
  vlm_trainer_free(trainer); /* detaches the adapters from `session` */

  vlm_session_options_init(&session_options);
  session_options.model = model;
  if (vlm_session_create(&session_options, &second) != VLM_OK || vlm_session_load_adapter(second, folder) != VLM_OK ||
      vlm_generate(second, prompt, 1, &options, &reloaded) != VLM_OK) {
    vlm_generations_free(tuned, 1);
    vlm_session_free(second);
    return fail("reloading the adapter");
  }
  print_tokens("tuned_tokens", &tuned[0]);
  print_tokens("reloaded_tokens", &reloaded[0]);
  same = tuned[0].num_tokens == reloaded[0].num_tokens;
  for (i = 0; same && (size_t)i < tuned[0].num_tokens; ++i) same = tuned[0].tokens[i] == reloaded[0].tokens[i];
  printf("reloaded_adapter_agrees: %d\n", same);
  vlm_generations_free(tuned, 1);
  vlm_generations_free(reloaded, 1);
  vlm_session_free(second);
  return 0;
}

int main(int argc, char **argv) {
  vlm_session_options session_options;
  vlm_session *session = NULL;
  vlm_generation_options generation_options;
  vlm_generation *generations = NULL;
  vlm_prompt prompt;
  vlm_score_request request;
  vlm_score_result *scores = NULL;
  vlm_metrics_options metrics_options;
  vlm_metrics_example example;
  vlm_metrics_result *metrics = NULL;
  const char *images[1];
  const char *references[1];
  double bleu = 0.0, rouge = 0.0;
  const char *implementation = NULL;
  int streamed = 0;
  size_t i;

  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s MODEL IMAGE REFERENCE [ADAPTER_DIR]\n", argv[0]);
    return 2;
  }
  vlm_set_log_callback(print_log, NULL);

  vlm_session_options_init(&session_options);
  session_options.model = argv[1];
  if (vlm_session_create(&session_options, &session) != VLM_OK) return fail("vlm_session_create");

  /* Generate: greedy, 8 new tokens, streamed to stderr. */
  images[0] = argv[2];
  prompt.text = "Describe this image .";
  prompt.system_message = NULL;
  prompt.image_paths = images;
  prompt.num_images = 1;
  vlm_generation_options_init(&generation_options);
  generation_options.max_new_tokens = 8;
  generation_options.do_sample = 0;
  generation_options.on_token = print_token;
  generation_options.user_data = &streamed;
  if (vlm_generate(session, &prompt, 1, &generation_options, &generations) != VLM_OK) {
    vlm_session_free(session);
    return fail("vlm_generate");
  }
  fprintf(stderr, "\n");
  printf("text: %s\n", generations[0].text);
  printf("tokens:");
  for (i = 0; i < generations[0].num_tokens; ++i) printf(" %lld", (long long)generations[0].tokens[i]);
  printf("\nfinish_reason: %s\nstreamed: %d\n", generations[0].finish_reason, streamed);

  /* Score: the log-likelihood of the generated text as a continuation of the same prompt. */
  request.prompt = prompt;
  request.continuation = generations[0].text;
  if (vlm_score(session, &request, 1, &scores) != VLM_OK) {
    vlm_generations_free(generations, 1);
    vlm_session_free(session);
    return fail("vlm_score");
  }
  printf("score_tokens: %u\nscore_is_greedy: %d\nscore_sum_negative: %d\n", (unsigned)scores[0].num_tokens,
         scores[0].is_greedy, scores[0].sum < 0.0);
  vlm_score_results_free(scores, 1);

  /* Metrics: the answer against the reference (METEOR without WordNet keeps the example self-contained). */
  references[0] = argv[3];
  example.prediction = generations[0].text;
  example.references = references;
  example.num_references = 1;
  example.prediction_tokens = (int64_t)generations[0].num_tokens;
  example.reference_tokens = NULL;
  vlm_metrics_options_init(&metrics_options);
  metrics_options.meteor_mode = VLM_METEOR_WITHOUT_WORDNET;
  metrics_options.max_new_tokens = 8;
  if (vlm_metrics_score(&example, 1, &metrics_options, &metrics) != VLM_OK ||
      vlm_metrics_result_value(metrics, "bleu", &bleu, &implementation) != VLM_OK ||
      vlm_metrics_result_value(metrics, "rougeL", &rouge, NULL) != VLM_OK) {
    vlm_metrics_result_free(metrics);
    vlm_generations_free(generations, 1);
    vlm_session_free(session);
    return fail("metrics");
  }
  printf("bleu: %.4f (%s)\nrougeL: %.4f\n", bleu, implementation, rouge);

  if (argc == 5 && train_and_reload(session, argv[1], &prompt, argv[4]) != 0) {
    vlm_metrics_result_free(metrics);
    vlm_generations_free(generations, 1);
    vlm_session_free(session);
    return 1;
  }

  vlm_metrics_result_free(metrics);
  vlm_generations_free(generations, 1);
  vlm_session_free(session);
  vlm_set_log_callback(NULL, NULL);
  return 0;
}
