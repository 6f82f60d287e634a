/* vlm_finetune_and_eval: trains and evaluates every model x LoRA variant of an experiment config, through the
** public C API (vlm_pipeline_run).
**
**   vlm_finetune_and_eval --config FILE [options]
**
** Exit codes: 0 every run finished, 2 bad usage, 3 bad config or input, 4 some runs failed (or a runtime
** failure), 130 interrupted (Ctrl-C; run the same command again to resume). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_common.h"
#include "vlmrt.h"

#define MAX_ONLY 256

static void usage(FILE *out) {
  fprintf(out,
          "usage: vlm_finetune_and_eval --config FILE [options]\n"
          "\n"
          "Fine-tunes every model x LoRA variant of the experiment config FILE (configs/vlm_ablation.yaml's format)\n"
          "and evaluates each on the config's validation (and test) CSV. Each run gets a folder\n"
          "<output_dir>/<model>__<variant>/ (checkpoints/, lora_adapter/, final/, metrics.json, predictions.jsonl,\n"
          "generation_metrics.json, run.log); <output_dir>/ablation_summary.json and .md put the runs side by side.\n"
          "Running the same command again skips finished runs and resumes interrupted ones from their last checkpoint.\n"
          "The image features of a frozen vision tower are kept in <output_dir>/image_features/ and shared by the\n"
          "runs of the same model (training.store_image_features). Every config key: configs/README.md.\n"
          "\n"
          "  --config FILE        the YAML experiment config (required)\n"
          "  --output-dir DIR     write the runs here instead of the config's output_dir\n"
          "  --only NAME          do only this run (<model>__<variant> or <model>__baseline), or every run of a\n"
          "                       model or a variant name; repeatable\n"
          "  --validate-only      check the config, its data files and that every model is found and supported;\n"
          "                       train nothing\n"
          "  --no-eval            train only (skip the evaluation even when the config enables it)\n"
          "  --quiet              no progress bars or log lines on stderr (errors are still printed)\n"
          "  --json               print the summary (ablation_summary.json's content) on stdout instead of the table\n"
          "  --help, --version\n"
          "\n"
          "Progress goes to stderr: bars with rate and ETA on a terminal, a plain line every 10 seconds otherwise.\n"
          "Ctrl-C stops after the current training step has been saved as a checkpoint; a second Ctrl-C ends at once.\n"
          "\n"
          "Exit codes: 0 every run finished, 2 bad usage, 3 bad config or input, 4 some runs failed or a runtime\n"
          "failure, 130 interrupted by Ctrl-C (run the same command again to resume).\n");
}

static volatile sig_atomic_t interrupted = 0;
static struct timespec first_interrupt;

/* The first SIGINT asks for a stop after the current step's checkpoint; a second one ends the program at once.
** One that comes within a second of the first is the same request: `timeout -s INT` and a signal sent to the
** process group deliver one interrupt twice, to the program and to its group. */
static void on_sigint(int signal_number) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (!interrupted) {
    first_interrupt = now;
    interrupted = 1;
    return;
  }
  if ((double)(now.tv_sec - first_interrupt.tv_sec) + (double)(now.tv_nsec - first_interrupt.tv_nsec) / 1e9 >= 1.0) {
    signal(signal_number, SIG_DFL);
    raise(signal_number);
  }
}

static int keep_going(const vlm_pipeline_progress *progress, void *user_data) {
  (void)progress;
  (void)user_data;
  return interrupted ? 0 : 1;
}

static int usage_error(const char *message, const char *arg) {
  fprintf(stderr, "vlm_finetune_and_eval: %s%s%s\n", message, arg ? " " : "", arg ? arg : "");
  fprintf(stderr, "Try 'vlm_finetune_and_eval --help'.\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *config = NULL, *output_dir = NULL;
  const char *only[MAX_ONLY];
  size_t num_only = 0;
  int validate_only = 0, no_eval = 0, quiet = 0, json = 0;
  int i;
  vlm_pipeline_options options;
  vlm_pipeline_counts counts;
  vlm_status status;
  char *summary = NULL, *table = NULL;

  for (i = 1; i < argc; ++i) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("vlm_finetune_and_eval (vlmrt %s)\n", vlm_version());
      return 0;
    } else if (strcmp(a, "--config") == 0 || strcmp(a, "--output-dir") == 0 || strcmp(a, "--only") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') return usage_error("missing value after", a);
      if (strcmp(a, "--config") == 0) {
        if (config) return usage_error("--config given twice", NULL);
        config = argv[++i];
      } else if (strcmp(a, "--output-dir") == 0) {
        if (output_dir) return usage_error("--output-dir given twice", NULL);
        output_dir = argv[++i];
      } else {
        if (num_only == MAX_ONLY) return usage_error("too many --only values", NULL);
        only[num_only++] = argv[++i];
      }
    } else if (strcmp(a, "--validate-only") == 0) {
      validate_only = 1;
    } else if (strcmp(a, "--no-eval") == 0) {
      no_eval = 1;
    } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      quiet = 1;
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (a[0] == '-') {
      return usage_error("unknown option", a);
    } else {
      return usage_error("unexpected argument", a);
    }
  }
  if (!config) return usage_error("--config FILE is required", NULL);

  vlm_pipeline_options_init(&options);
  options.config_path = config;
  options.output_dir = output_dir;
  options.only_runs = num_only ? only : NULL;
  options.num_only_runs = num_only;
  options.validate_only = validate_only;
  options.evaluate = no_eval ? 0 : 1;
  options.show_progress = quiet ? 0 : 1;
  options.on_progress = keep_going;

  {
    /* sigaction, not signal(): strict C99 builds get System V signal(), which resets the handler on delivery. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, NULL);
  }
  status = vlm_pipeline_run(&options, &summary, &counts);
  signal(SIGINT, SIG_DFL);
  if (status != VLM_OK) {
    fprintf(stderr, "vlm_finetune_and_eval: %s\n", vlm_last_error());
    return vlm_cli_exit_code(status);
  }
  if (json) {
    printf("%s\n", summary);
  } else if (vlm_pipeline_summary_table(summary, 0, &table) == VLM_OK) {
    printf("%s", table);
  } else {
    fprintf(stderr, "vlm_finetune_and_eval: %s\n", vlm_last_error());
  }
  vlm_string_free(table);
  vlm_string_free(summary);
  if (counts.cancelled || interrupted) {
    fprintf(stderr, "vlm_finetune_and_eval: interrupted; run the same command again to resume\n");
    return 130;
  }
  if (counts.failed > 0) {
    fprintf(stderr, "vlm_finetune_and_eval: %lu of %lu runs failed (see their error.json and run.log)\n",
            (unsigned long)counts.failed, (unsigned long)counts.runs);
    return 4;
  }
  return 0;
}
