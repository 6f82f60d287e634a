/* Shared by the C command-line programs: the exit code for a vlm_status.
** 0 success, 3 bad input (the user can fix the model, file or option value), 4 runtime failure. 2 (bad usage)
** is decided by each program's argument parsing. */
#ifndef VLMRT_CLI_COMMON_H
#define VLMRT_CLI_COMMON_H

#include "vlmrt.h"

static int vlm_cli_exit_code(vlm_status status) {
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
