/* vlm_inspect: shows what vlmrt reads from a model folder (or Hub id in the offline cache) and from images.
**
**   vlm_inspect [--model MODEL] [--image FILE]... [--max-tensors N]
**
** Exit codes: 0 success, 2 bad usage, 3 bad input (missing or corrupt model or image), 4 other failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "vlmrt.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: vlm_inspect [--model MODEL] [--image FILE]... [--max-tensors N]\n"
          "\n"
          "Shows what vlmrt reads, without running a model:\n"
          "  --model MODEL     a model folder, or a Hugging Face id (Org/Name[@revision]) in the offline cache\n"
          "                    ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub);\n"
          "                    prints the folder and every tensor of its safetensors checkpoint\n"
          "  --image FILE      a PNG or JPEG file; prints its size and mean colour after decoding\n"
          "                    exactly as Pillow's load_image does (repeatable)\n"
          "  --max-tensors N   print at most N tensors (default 20; 0 prints all)\n"
          "  --version         print the library version\n"
          "  --help            this text\n"
          "\n"
          "Exit codes: 0 success, 2 bad usage, 3 bad input, 4 other failure.\n");
}

static int inspect_model(const char *model, size_t max_tensors) {
  char *folder = NULL;
  vlm_checkpoint *ckpt = NULL;
  vlm_status status = vlm_model_locate(model, &folder);
  if (status != VLM_OK) {
    fprintf(stderr, "vlm_inspect: %s\n", vlm_last_error());
    return vlm_cli_exit_code(status);
  }
  printf("model %s\n  folder: %s\n", model, folder);
  status = vlm_checkpoint_open(folder, &ckpt);
  vlm_string_free(folder);
  if (status != VLM_OK) {
    fprintf(stderr, "vlm_inspect: %s\n", vlm_last_error());
    return vlm_cli_exit_code(status);
  }
  size_t count = vlm_checkpoint_tensor_count(ckpt);
  unsigned long long total_bytes = 0, total_values = 0;
  printf("  tensors: %zu\n", count);
  for (size_t i = 0; i < count; ++i) {
    vlm_tensor_info info;
    status = vlm_checkpoint_tensor_info(ckpt, i, &info);
    if (status != VLM_OK) {
      fprintf(stderr, "vlm_inspect: %s\n", vlm_last_error());
      vlm_checkpoint_free(ckpt);
      return vlm_cli_exit_code(status);
    }
    unsigned long long values = 1;
    for (size_t d = 0; d < info.ndim; ++d) values *= (unsigned long long)info.shape[d];
    total_values += values;
    total_bytes += info.nbytes;
    if (max_tensors == 0 || i < max_tensors) {
      printf("    %-60s %-5s [", info.name, info.dtype);
      for (size_t d = 0; d < info.ndim; ++d) printf("%s%lld", d ? ", " : "", (long long)info.shape[d]);
      printf("]\n");
    } else if (i == max_tensors) {
      printf("    ... (%zu more; --max-tensors 0 lists all)\n", count - max_tensors);
    }
  }
  printf("  parameters: %llu (%.2f MB)\n", total_values, (double)total_bytes / 1e6);
  vlm_checkpoint_free(ckpt);
  return 0;
}

static int inspect_image(const char *path) {
  vlm_image *image = NULL;
  vlm_status status = vlm_image_load(path, NULL, &image);
  if (status != VLM_OK) {
    fprintf(stderr, "vlm_inspect: %s\n", vlm_last_error());
    return vlm_cli_exit_code(status);
  }
  double sum[3] = {0, 0, 0};
  size_t n = (size_t)image->width * image->height;
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) sum[c] += image->pixels[3 * i + c];
  printf("image %s\n  size: %ux%u\n  mean RGB: %.2f %.2f %.2f\n", path, image->width, image->height, sum[0] / n,
         sum[1] / n, sum[2] / n);
  vlm_image_free(image);
  return 0;
}

int main(int argc, char **argv) {
  size_t max_tensors = 20;
  int did_something = 0, rc = 0;
  /* First pass: options that change how the rest is shown. */
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--max-tensors") == 0) {
      char *end = NULL;
      if (i + 1 >= argc || (max_tensors = strtoul(argv[i + 1], &end, 10), *end != '\0')) {
        fprintf(stderr, "vlm_inspect: --max-tensors needs a non-negative integer\n");
        return 2;
      }
      ++i;
    }
  }
  for (int i = 1; i < argc && rc == 0; ++i) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(arg, "--version") == 0) {
      printf("vlmrt %s (ABI %d)\n", vlm_version(), vlm_abi_version());
      did_something = 1;
    } else if (strcmp(arg, "--max-tensors") == 0) {
      ++i;
    } else if (strcmp(arg, "--model") == 0 || strcmp(arg, "--image") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "vlm_inspect: %s needs a value\n", arg);
        return 2;
      }
      rc = strcmp(arg, "--model") == 0 ? inspect_model(argv[++i], max_tensors) : inspect_image(argv[++i]);
      did_something = 1;
    } else {
      fprintf(stderr, "vlm_inspect: unknown argument '%s' (see --help)\n", arg);
      return 2;
    }
  }
  if (!did_something) {
    usage(stderr);
    return 2;
  }
  return rc;
}
