/* Shared by the C command-line programs: the exit code for a vlm_status, flag value parsing, and the generation
** flags. Exit codes: 0 success, 3 bad input (the user can fix the model, file or option value), 4 runtime
** failure. 2 (bad usage) is decided by each program's argument parsing. */
#ifndef VLMRT_CLI_COMMON_H
#define VLMRT_CLI_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vlmrt.h"

/* Flag values. Each returns 1 on success; otherwise it prints "<program>: <flag> needs ..." and returns 0. */
static inline int vlm_cli_parse_long(const char *program, const char *flag, const char *value, long long max,
                                     long long *out) {
  char *end = NULL;
  long long v = strtoll(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < 0 || v > max) {
    fprintf(stderr, "%s: %s needs a non-negative integer (at most %lld), not '%s'\n", program, flag, max, value);
    return 0;
  }
  *out = v;
  return 1;
}

static inline int vlm_cli_parse_int(const char *program, const char *flag, const char *value, int *out) {
  long long v = 0;
  if (!vlm_cli_parse_long(program, flag, value, 1000000000LL, &v)) return 0;
  *out = (int)v;
  return 1;
}

static inline int vlm_cli_parse_positive(const char *program, const char *flag, const char *value, int *out) {
  if (!vlm_cli_parse_int(program, flag, value, out)) return 0;
  if (*out == 0) {
    fprintf(stderr, "%s: %s must be at least 1\n", program, flag);
    return 0;
  }
  return 1;
}

static inline int vlm_cli_parse_double(const char *program, const char *flag, const char *value, double *out) {
  char *end = NULL;
  *out = strtod(value, &end);
  if (*value == '\0' || *end != '\0') {
    fprintf(stderr, "%s: %s needs a number, not '%s'\n", program, flag, value);
    return 0;
  }
  return 1;
}

/* The generation flags that take a value (--max-new-tokens, --min-new-tokens, --num-beams, --top-k,
** --temperature, --top-p, --repetition-penalty, --length-penalty, --seed). Returns 1 when `flag` is one of them,
** with *ok telling whether its value parsed; 0 for any other flag. */
static inline int vlm_cli_generation_flag(const char *program, const char *flag, const char *value,
                                          vlm_generation_options *g, int *ok) {
  if (strcmp(flag, "--max-new-tokens") == 0) *ok = vlm_cli_parse_positive(program, flag, value, &g->max_new_tokens);
  else if (strcmp(flag, "--min-new-tokens") == 0) *ok = vlm_cli_parse_int(program, flag, value, &g->min_new_tokens);
  else if (strcmp(flag, "--num-beams") == 0) *ok = vlm_cli_parse_positive(program, flag, value, &g->num_beams);
  else if (strcmp(flag, "--top-k") == 0) *ok = vlm_cli_parse_int(program, flag, value, &g->top_k);
  else if (strcmp(flag, "--temperature") == 0) *ok = vlm_cli_parse_double(program, flag, value, &g->temperature);
  else if (strcmp(flag, "--top-p") == 0) *ok = vlm_cli_parse_double(program, flag, value, &g->top_p);
  else if (strcmp(flag, "--repetition-penalty") == 0)
    *ok = vlm_cli_parse_double(program, flag, value, &g->repetition_penalty);
  else if (strcmp(flag, "--length-penalty") == 0) *ok = vlm_cli_parse_double(program, flag, value, &g->length_penalty);
  else if (strcmp(flag, "--seed") == 0) {
    long long seed = 0;
    *ok = vlm_cli_parse_long(program, flag, value, 9007199254740991LL, &seed);
    g->seed = (uint64_t)seed;
  } else {
    return 0;
  }
  return 1;
}

static inline int vlm_cli_exit_code(vlm_status status) {
  switch (status) {
    case VLM_OK: return 0;
    case VLM_ERR_INVALID_ARGUMENT:
    case VLM_ERR_NOT_FOUND:
    case VLM_ERR_CORRUPT_DATA:
    case VLM_ERR_UNSUPPORTED:
    case VLM_ERR_LIMIT_EXCEEDED: return 3;
    default: return 4;
  }
}

#endif
