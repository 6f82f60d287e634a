/* A tour of libvlmrt from C: open a session on a model, generate an answer about an image (streaming the
** tokens), score a continuation's log-likelihood, and compute metrics of the answer against a reference.
**
**   cc generate_score_metrics.c $(pkg-config --cflags --libs vlmrt) -o generate_score_metrics
**   ./generate_score_metrics MODEL IMAGE REFERENCE
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

  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL IMAGE REFERENCE\n", argv[0]);
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

  vlm_metrics_result_free(metrics);
  vlm_generations_free(generations, 1);
  vlm_session_free(session);
  vlm_set_log_callback(NULL, NULL);
  return 0;
}
