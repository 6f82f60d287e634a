/* vlm_generate: answers a prompt about images with a model, through the public C API.
**
**   vlm_generate --model MODEL [--image FILE]... [options] PROMPT
**
** Exit codes: 0 success, 2 bad usage, 3 bad input (model, image, option value), 4 runtime failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "vlmrt.h"

#define MAX_IMAGES 64

static void usage(FILE *out) {
  fprintf(out,
          "usage: vlm_generate --model MODEL [--image FILE]... [options] PROMPT\n"
          "\n"
          "Formats PROMPT (and the images, placed before it) with the model's chat template and generates an answer.\n"
          "  --model MODEL              a model folder, or a Hugging Face id (Org/Name[@revision]) in the offline cache\n"
          "  --image FILE               a PNG or JPEG image (repeatable, up to 64)\n"
          "  --system TEXT              a system message (default: the chat template's)\n"
          "  --max-new-tokens N         default: generation_config.json, else 20\n"
          "  --min-new-tokens N\n"
          "  --num-beams N              beam search with N beams\n"
          "  --do-sample                sample instead of greedy/beam search (see --temperature, --top-k, --top-p, --seed)\n"
          "  --greedy                   never sample, even if generation_config.json says so\n"
          "  --temperature T  --top-k K  --top-p P  --seed S\n"
          "  --repetition-penalty R     --length-penalty L\n"
          "  --device cpu|cuda|cuda:N   default cpu\n"
          "  --dtype float32|bfloat16|float16   default float32\n"
          "  --no-coded-weights         bfloat16 on the CPU: decode steps read the weights themselves, without their\n"
          "                             12-bit coded copies (same results, 3/4 of the weights' size less memory)\n"
          "  --min-pixels N --max-pixels N      Qwen2-VL pixel budget per image (224*224 for the fixed 224x224 mode)\n"
          "  --stream                   print token ids to stderr as they are generated\n"
          "  --json                     print {\"text\", \"tokens\", \"finish_reason\"} as JSON\n"
          "  --help, --version\n"
          "\n"
          "Exit codes: 0 success, 2 bad usage, 3 bad input, 4 runtime failure.\n");
}

static int stream_token(size_t prompt_index, int64_t token, void *user_data) {
  (void)prompt_index;
  (void)user_data;
  fprintf(stderr, "%lld ", (long long)token);
  fflush(stderr);
  return 1;
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; ++s) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      printf("\\%c", c);
    } else if (c == '\n') {
      printf("\\n");
    } else if (c == '\t') {
      printf("\\t");
    } else if (c == '\r') {
      printf("\\r");
    } else if (c < 0x20) {
      printf("\\u%04x", c);
    } else {
      putchar(c);
    }
  }
  putchar('"');
}

int main(int argc, char **argv) {
  vlm_session_options session_options;
  vlm_generation_options options;
  const char *images[MAX_IMAGES];
  size_t num_images = 0;
  const char *prompt_text = NULL, *system_message = NULL;
  int json = 0, ok = 1;
  vlm_session_options_init(&session_options);
  vlm_generation_options_init(&options);

  for (int i = 1; i < argc && ok; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int takes_value = 1;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("vlmrt %s\n", vlm_version());
      return 0;
    } else if (strcmp(a, "--do-sample") == 0) {
      options.do_sample = 1, takes_value = 0;
    } else if (strcmp(a, "--greedy") == 0) {
      options.do_sample = 0, takes_value = 0;
    } else if (strcmp(a, "--stream") == 0) {
      options.on_token = stream_token, takes_value = 0;
    } else if (strcmp(a, "--json") == 0) {
      json = 1, takes_value = 0;
    } else if (strcmp(a, "--no-coded-weights") == 0) {
      session_options.coded_weights = -1, takes_value = 0;
    } else if (a[0] == '-' && a[1] == '-') {
      if (v == NULL) {
        fprintf(stderr, "vlm_generate: %s needs a value (see --help)\n", a);
        return 2;
      }
      if (strcmp(a, "--model") == 0) session_options.model = v;
      else if (strcmp(a, "--device") == 0) session_options.device = v;
      else if (strcmp(a, "--dtype") == 0) session_options.dtype = v;
      else if (strcmp(a, "--image") == 0) {
        if (num_images == MAX_IMAGES) {
          fprintf(stderr, "vlm_generate: at most %d images\n", MAX_IMAGES);
          return 2;
        }
        images[num_images++] = v;
      } else if (strcmp(a, "--system") == 0) system_message = v;
      else if (vlm_cli_generation_flag("vlm_generate", a, v, &options, &ok)) {
        /* parsed into options */
      } else if (strcmp(a, "--min-pixels") == 0 || strcmp(a, "--max-pixels") == 0) {
        int n = 0;
        ok = vlm_cli_parse_int("vlm_generate", a, v, &n);
        if (strcmp(a, "--min-pixels") == 0) session_options.min_pixels = (uint64_t)n;
        else session_options.max_pixels = (uint64_t)n;
      } else {
        fprintf(stderr, "vlm_generate: unknown option '%s' (see --help)\n", a);
        return 2;
      }
    } else {
      if (prompt_text != NULL) {
        fprintf(stderr, "vlm_generate: one PROMPT only (quote it)\n");
        return 2;
      }
      prompt_text = a, takes_value = 0;
    }
    if (takes_value) ++i;
  }
  if (!ok) return 2;
  if (session_options.model == NULL || prompt_text == NULL) {
    usage(stderr);
    return 2;
  }

  vlm_session *session = NULL;
  vlm_status status = vlm_session_create(&session_options, &session);
  if (status != VLM_OK) {
    fprintf(stderr, "vlm_generate: %s\n", vlm_last_error());
    return vlm_cli_exit_code(status);
  }
  vlm_prompt prompt;
  prompt.text = prompt_text;
  prompt.system_message = system_message;
  prompt.image_paths = images;
  prompt.num_images = num_images;
  vlm_generation *results = NULL;
  status = vlm_generate(session, &prompt, 1, &options, &results);
  if (options.on_token != NULL) fprintf(stderr, "\n");
  if (status != VLM_OK) {
    fprintf(stderr, "vlm_generate: %s\n", vlm_last_error());
    vlm_session_free(session);
    return vlm_cli_exit_code(status);
  }
  if (json) {
    printf("{\"text\": ");
    print_json_string(results[0].text);
    printf(", \"tokens\": [");
    for (size_t i = 0; i < results[0].num_tokens; ++i) printf("%s%lld", i ? ", " : "", (long long)results[0].tokens[i]);
    printf("], \"finish_reason\": \"%s\"}\n", results[0].finish_reason);
  } else {
    printf("%s\n", results[0].text);
  }
  vlm_generations_free(results, 1);
  vlm_session_free(session);
  return 0;
}
