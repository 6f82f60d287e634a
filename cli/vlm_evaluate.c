/* vlm_evaluate: evaluates a model (plus LoRA adapters), or a finished training run, on a CSV file through the
** public C API, writing predictions.jsonl and generation_metrics.json.
**
** Exit codes: 0 success, 2 bad usage, 3 bad input (model, CSV, image, option value), 4 runtime failure. */
#define _POSIX_C_SOURCE 200809L /* isatty */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "vlmrt.h"

#define MAX_ADAPTERS 16

static void usage(FILE *out) {
  fputs(
"usage: vlm_evaluate --run NAME (--config FILE | --results-dir DIR) [options]\n"
"       vlm_evaluate --model-id MODEL --csv FILE --output-dir DIR [--lora-path DIR]... [options]\n"
"\n"
"Generates an answer for every row of a CSV file and scores it against the row's reference, writing\n"
"  <output-dir>/predictions.jsonl        one JSON object per row: index, csv_line, image, query, prediction,\n"
"                                        reference, finish_reason, scores (that row's metrics)\n"
"  <output-dir>/generation_metrics.json  Exact Match, BLEU-4 (sacrebleu), METEOR (nltk), ROUGE-L (rouge_score),\n"
"                                        token statistics, each naming its reference implementation\n"
"Both files are written atomically; a failed or stopped evaluation writes neither.\n"
"\n", out);
  fputs(
"What to evaluate:\n"
"  --run NAME               a finished training run <results>/<NAME>/ (e.g. qwen2vl__r8): its model (metrics.json\n"
"                           \"model\", else the config's models[] entry), its lora_adapter/, and by default its folder\n"
"                           as the output directory\n"
"  --config FILE            the experiment config (configs/vlm_ablation.yaml format): its output_dir holds the runs;\n"
"                           it also supplies data.val_csv and the columns, data.max_eval_samples,\n"
"                           training.per_device_eval_batch_size, the training.generation_* settings and the model's\n"
"                           torch_dtype, device and pixel limits, unless the flags below say otherwise\n"
"  --results-dir DIR        the folder holding the runs (instead of, or overriding, the config's output_dir)\n"
"  --model-id MODEL         a model folder, or a Hugging Face id (Org/Name[@revision]) in the offline cache;\n"
"                           overrides the run's model\n"
"  --lora-path DIR          a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors);\n"
"                           repeatable (applied in order); replaces the run's adapter\n"
"  --model-type TYPE        check that the checkpoint is of this type: llava, llava_next, llava_gemma, qwen_vl,\n"
"                           qwen2_vl, qwen2_5_vl, blip2, causal_lm (default: the run's recorded type, else no check)\n"
"\n", out);
  fputs(
"Data:\n"
"  --csv FILE               the rows to evaluate (default with --config: data.val_csv). Columns: url (the image: a\n"
"                           path relative to the CSV's folder, an absolute path, a file:// URL or an http(s):// URL),\n"
"                           query (else instruction) and annotation (else response) as the reference answer\n"
"  --output-dir DIR         where the two files go (created if missing; default with --run: the run folder)\n"
"  --max-samples N          evaluate the first N rows only\n"
"  --image-column NAME  --query-column NAME  --annotation-column NAME   other column names (--image-column ''\n"
"                           for text-only prompts)\n"
"  --image-base-dir DIR     resolve relative image paths here instead of the CSV's folder\n"
"  --image-cache-dir DIR    cache of downloaded images (default $XDG_CACHE_HOME/vlmrt/images, ~/.cache/vlmrt/images)\n"
"  --fetch-timeout-ms N     whole-download timeout per image (default 60000)\n"
"  --fetch-retries N        tries after a transient download failure (default 2)\n"
"  --max-image-bytes N      refuse larger downloads (default 67108864)\n"
"Before anything is generated every row is checked and every image loaded (downloads included): an empty image\n"
"or reference cell, or an image that is missing, unreadable or not PNG/JPEG, stops the evaluation with an error\n"
"naming the CSV file, the data row and its line (exit code 3).\n"
"\n", out);
  fputs(
"Prompts:\n"
"  --prompt-template TEXT   the user text of each row; every {query} is replaced by the row's query (default\n"
"                           \"{query}\"); the image comes before it\n"
"  --system-message TEXT    a system message (default: the chat template's)\n"
"\n", out);
  fputs(
"Generation (default: the config's generation_* settings, else the checkpoint's generation_config.json, else\n"
"transformers' defaults):\n"
"  --batch-size N           rows per generate call (default: the config's per_device_eval_batch_size, else 1)\n"
"  --max-new-tokens N  --min-new-tokens N  --num-beams N\n"
"  --do-sample              sample (see --temperature, --top-k, --top-p, --seed)\n"
"  --greedy                 never sample, whatever the config or generation_config.json says\n"
"  --temperature T  --top-p P  --top-k K  --repetition-penalty R  --length-penalty L  --seed S\n"
"\n", out);
  fputs(
"Model loading:\n"
"  --dtype float32|bfloat16|float16   default float32 (or the config's torch_dtype)\n"
"  --device cpu|cuda|cuda:N           default cpu (or the config's device)\n"
"  --min-pixels N --max-pixels N      Qwen2-VL pixel budget per image (224*224 = 50176 for the fixed 224x224 mode)\n"
"\n", out);
  fputs(
"Metrics:\n"
"  --meteor full|no-wordnet|off       METEOR with WordNet synonyms (default; needs /usr/share/wordnet), without\n"
"                                     them (reported as meteor_no_wordnet), or not at all\n"
"  --wordnet-dir DIR                  the WordNet 3.0 database folder\n"
"\n", out);
  fputs(
"Output:\n"
"  --json                   print generation_metrics.json's content on stdout instead of a table\n"
"  --quiet                  no progress lines on stderr\n"
"  --help, --version\n"
"\n"
"Exit codes: 0 success, 2 bad usage (unknown flag, missing or malformed value), 3 bad input (a model, run, CSV,\n"
"row, image or option value that is wrong or missing), 4 runtime failure (out of memory, I/O, internal error,\n"
"stopped).\n", out);
}

typedef struct progress_state {
  int quiet;
  int tty;
} progress_state;

static int on_progress(int64_t done, int64_t total, void *user_data) {
  progress_state *s = (progress_state *)user_data;
  if (!s->quiet) {
    fprintf(stderr, s->tty ? "\rvlm_evaluate: %lld/%lld rows" : "vlm_evaluate: %lld/%lld rows\n", (long long)done,
            (long long)total);
    if (s->tty && done == total) fputc('\n', stderr);
    fflush(stderr);
  }
  return 1;
}

static void on_log(const char *line, void *user_data) {
  progress_state *s = (progress_state *)user_data;
  if (!s->quiet) fprintf(stderr, "vlm_evaluate: %s\n", line);
}

static void print_table(const vlm_evaluate_result *result) {
  static const char *names[] = {"exact_match", "exact_match_normalized", "bleu", "sentence_bleu", "meteor",
                                "meteor_no_wordnet", "rougeL", "rougeLsum"};
  size_t i;
  printf("%lld examples\n", (long long)vlm_evaluate_result_num_examples(result));
  for (i = 0; i < sizeof names / sizeof names[0]; ++i) {
    double value = 0;
    if (vlm_evaluate_result_metric(result, names[i], &value) == VLM_OK) printf("  %-24s %.4f\n", names[i], value);
  }
  printf("predictions: %s\nmetrics:     %s\n", vlm_evaluate_result_predictions_path(result),
         vlm_evaluate_result_metrics_path(result));
}

int main(int argc, char **argv) {
  vlm_evaluate_options options;
  vlm_generation_options generation;
  const char *adapters[MAX_ADAPTERS];
  size_t num_adapters = 0;
  int json = 0, ok = 1, i;
  long long n = 0;
  progress_state progress;
  vlm_evaluate_result *result = NULL;
  vlm_status status;

  vlm_evaluate_options_init(&options);
  vlm_generation_options_init(&generation);
  progress.quiet = 0;
  progress.tty = isatty(2);

  for (i = 1; i < argc && ok; ++i) {
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
      generation.do_sample = 1, takes_value = 0;
    } else if (strcmp(a, "--greedy") == 0) {
      generation.do_sample = 0, takes_value = 0;
    } else if (strcmp(a, "--json") == 0) {
      json = 1, takes_value = 0;
    } else if (strcmp(a, "--quiet") == 0) {
      progress.quiet = 1, takes_value = 0;
    } else if (a[0] == '-' && a[1] == '-') {
      if (v == NULL) {
        fprintf(stderr, "vlm_evaluate: %s needs a value (see --help)\n", a);
        return 2;
      }
      if (strcmp(a, "--run") == 0) options.run = v;
      else if (strcmp(a, "--config") == 0) options.config_path = v;
      else if (strcmp(a, "--results-dir") == 0) options.results_dir = v;
      else if (strcmp(a, "--model-id") == 0) options.model = v;
      else if (strcmp(a, "--model-type") == 0) options.model_type = v;
      else if (strcmp(a, "--lora-path") == 0) {
        if (num_adapters == MAX_ADAPTERS) {
          fprintf(stderr, "vlm_evaluate: at most %d --lora-path\n", MAX_ADAPTERS);
          return 2;
        }
        adapters[num_adapters++] = v;
      } else if (strcmp(a, "--csv") == 0) options.csv = v;
      else if (strcmp(a, "--output-dir") == 0) options.output_dir = v;
      else if (strcmp(a, "--image-column") == 0) options.image_column = v;
      else if (strcmp(a, "--query-column") == 0) options.query_column = v;
      else if (strcmp(a, "--annotation-column") == 0) options.annotation_column = v;
      else if (strcmp(a, "--image-base-dir") == 0) options.image_base_dir = v;
      else if (strcmp(a, "--image-cache-dir") == 0) options.image_cache_dir = v;
      else if (strcmp(a, "--prompt-template") == 0) options.prompt_template = v;
      else if (strcmp(a, "--system-message") == 0) options.system_message = v;
      else if (strcmp(a, "--dtype") == 0) options.dtype = v;
      else if (strcmp(a, "--device") == 0) options.device = v;
      else if (strcmp(a, "--wordnet-dir") == 0) options.wordnet_dir = v;
      else if (strcmp(a, "--meteor") == 0) {
        if (strcmp(v, "full") == 0) options.meteor_mode = VLM_METEOR_FULL;
        else if (strcmp(v, "no-wordnet") == 0) options.meteor_mode = VLM_METEOR_WITHOUT_WORDNET;
        else if (strcmp(v, "off") == 0) options.meteor_mode = VLM_METEOR_OFF;
        else {
          fprintf(stderr, "vlm_evaluate: --meteor takes full, no-wordnet or off, not '%s'\n", v);
          return 2;
        }
      } else if (strcmp(a, "--batch-size") == 0) ok = vlm_cli_parse_positive("vlm_evaluate", a, v, &options.batch_size);
      else if (vlm_cli_generation_flag("vlm_evaluate", a, v, &generation, &ok)) {
        /* parsed into generation */
      } else if (strcmp(a, "--max-samples") == 0) {
        ok = vlm_cli_parse_long("vlm_evaluate", a, v, 9007199254740991LL, &n);
        if (ok && n == 0) {
          fprintf(stderr, "vlm_evaluate: --max-samples must be at least 1\n");
          ok = 0;
        }
        options.max_samples = (int64_t)n;
      } else if (strcmp(a, "--min-pixels") == 0 || strcmp(a, "--max-pixels") == 0) {
        ok = vlm_cli_parse_long("vlm_evaluate", a, v, 1000000000000LL, &n);
        if (strcmp(a, "--min-pixels") == 0) options.min_pixels = (uint64_t)n;
        else options.max_pixels = (uint64_t)n;
      } else if (strcmp(a, "--fetch-timeout-ms") == 0) {
        ok = vlm_cli_parse_long("vlm_evaluate", a, v, 86400000LL, &n);
        if (ok && n == 0) {
          fprintf(stderr, "vlm_evaluate: --fetch-timeout-ms must be at least 1\n");
          ok = 0;
        }
        options.fetch_timeout_ms = (int64_t)n;
      } else if (strcmp(a, "--fetch-retries") == 0) ok = vlm_cli_parse_int("vlm_evaluate", a, v, &options.fetch_retries);
      else if (strcmp(a, "--max-image-bytes") == 0) {
        ok = vlm_cli_parse_long("vlm_evaluate", a, v, 9007199254740991LL, &n);
        options.fetch_max_bytes = (uint64_t)n;
      } else {
        fprintf(stderr, "vlm_evaluate: unknown option '%s' (see --help)\n", a);
        return 2;
      }
    } else {
      fprintf(stderr, "vlm_evaluate: unexpected argument '%s' (every input is given by a flag; see --help)\n", a);
      return 2;
    }
    if (takes_value) ++i;
  }
  if (!ok) return 2;
  if (options.run == NULL && options.model == NULL) {
    fprintf(stderr, "vlm_evaluate: say what to evaluate: --run NAME, or --model-id MODEL (see --help)\n");
    return 2;
  }
  if (options.run != NULL && options.config_path == NULL && options.results_dir == NULL) {
    fprintf(stderr, "vlm_evaluate: --run needs --config FILE or --results-dir DIR to find the run\n");
    return 2;
  }
  if (options.run == NULL && options.config_path == NULL && (options.csv == NULL || options.output_dir == NULL)) {
    fprintf(stderr, "vlm_evaluate: --csv FILE and --output-dir DIR are needed without --run/--config (see --help)\n");
    return 2;
  }

  options.adapter_paths = adapters;
  options.num_adapters = num_adapters;
  options.generation = &generation;
  options.on_progress = on_progress;
  options.on_log = on_log;
  options.user_data = &progress;
  status = vlm_evaluate_run(&options, &result);
  if (status != VLM_OK) {
    fprintf(stderr, "vlm_evaluate: %s\n", vlm_last_error());
    return vlm_cli_exit_code(status);
  }
  if (json) printf("%s\n", vlm_evaluate_result_metrics_json(result));
  else print_table(result);
  vlm_evaluate_result_free(result);
  return 0;
}
