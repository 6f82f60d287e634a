/* A minimal assertion macro for the C tests: counts passes and failures and prints the last vlm error. */
#ifndef VLMRT_TEST_CHECK_H
#define VLMRT_TEST_CHECK_H

#include <stdio.h>

#include "vlmrt.h"

static int passed = 0, failed = 0;

#define CHECK(cond)                                                                                       \
  do {                                                                                                    \
    if (cond) {                                                                                           \
      ++passed;                                                                                           \
    } else {                                                                                              \
      ++failed;                                                                                           \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, vlm_last_error()); \
    }                                                                                                     \
  } while (0)

#endif
