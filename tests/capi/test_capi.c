/* The public C API used from C99: status codes, error messages, NULL handling, struct_size checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vlmrt.h"


static int contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

static void test_versions(void) {
  CHECK(strcmp(vlm_version(), VLMRT_VERSION_STRING) == 0);
  CHECK(vlm_version_number() == VLMRT_VERSION_MAJOR * 10000 + VLMRT_VERSION_MINOR * 100 + VLMRT_VERSION_PATCH);
  CHECK(vlm_abi_version() == VLMRT_ABI_VERSION);
  CHECK(strcmp(vlm_status_name(VLM_ERR_NOT_FOUND), "not found") == 0);
  CHECK(strcmp(vlm_status_name((vlm_status)12345), "unknown status") == 0);
}

static void test_null_arguments(void) {
  char *path = NULL;
  vlm_image *image = NULL;
  vlm_checkpoint *ckpt = NULL;
  vlm_tensor_info info;
  CHECK(vlm_model_locate(NULL, &path) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(contains(vlm_last_error(), "model must not be NULL"));
  CHECK(vlm_model_locate("x", NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_image_load(NULL, NULL, &image) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_image_load(VLM_FIXTURES_DIR "/image/rgb8.png", NULL, NULL) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_image_decode(NULL, 10, NULL, &image) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_open(NULL, &ckpt) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_tensor_info(NULL, 0, &info) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(vlm_checkpoint_tensor_count(NULL) == 0);
  CHECK(image == NULL && ckpt == NULL && path == NULL); /* outputs untouched on failure */
  /* Free functions accept NULL. */
  vlm_image_free(NULL);
  vlm_checkpoint_free(NULL);
  vlm_string_free(NULL);
  vlm_image_load_options_init(NULL);
}

static void test_images(void) {
  vlm_image_load_options options;
  vlm_image *image = NULL;
  vlm_image_load_options_init(&options);
  CHECK(options.struct_size == sizeof options);
  CHECK(options.max_pixels == 178956970u);
  CHECK(options.apply_exif_orientation == 1);
  CHECK(vlm_image_load(VLM_FIXTURES_DIR "/image/rgb8.png", &options, &image) == VLM_OK);
  CHECK(strcmp(vlm_last_error(), "") == 0);
  if (image != NULL) {
    CHECK(image->width == 23 && image->height == 13);
    vlm_image_free(image);
    image = NULL;
  }
  options.max_pixels = 10;
  CHECK(vlm_image_load(VLM_FIXTURES_DIR "/image/rgb8.png", &options, &image) == VLM_ERR_LIMIT_EXCEEDED);
  CHECK(contains(vlm_last_error(), "rgb8.png"));
  options.struct_size = 3;
  CHECK(vlm_image_load(VLM_FIXTURES_DIR "/image/rgb8.png", &options, &image) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(contains(vlm_last_error(), "struct_size"));
  CHECK(vlm_image_load(VLM_FIXTURES_DIR "/image/truncated.jpg", NULL, &image) == VLM_ERR_CORRUPT_DATA);
  CHECK(vlm_image_load(VLM_FIXTURES_DIR "/image/does-not-exist.png", NULL, &image) == VLM_ERR_NOT_FOUND);
  CHECK(image == NULL);
  {
    static const unsigned char not_an_image[] = "plain text";
    CHECK(vlm_image_decode(not_an_image, sizeof not_an_image, NULL, &image) == VLM_ERR_UNSUPPORTED);
  }
}

static void test_checkpoints(void) {
  vlm_checkpoint *ckpt = NULL;
  vlm_tensor_info info;
  char *folder = NULL;
  CHECK(vlm_model_locate(VLM_FIXTURES_DIR "/io/sharded", &folder) == VLM_OK);
  CHECK(folder != NULL && contains(folder, "sharded"));
  vlm_string_free(folder);
  CHECK(vlm_checkpoint_open(VLM_FIXTURES_DIR "/io/sharded", &ckpt) == VLM_OK);
  CHECK(vlm_checkpoint_tensor_count(ckpt) == 5);
  CHECK(vlm_checkpoint_tensor_info(ckpt, 0, &info) == VLM_OK);
  CHECK(strcmp(info.name, "model.embed_tokens.weight") == 0);
  CHECK(strcmp(info.dtype, "BF16") == 0);
  CHECK(info.ndim == 2 && info.shape[0] == 16 && info.shape[1] == 8 && info.nbytes == 256);
  CHECK(vlm_checkpoint_tensor_info(ckpt, 5, &info) == VLM_ERR_INVALID_ARGUMENT);
  CHECK(contains(vlm_last_error(), "out of range"));
  vlm_checkpoint_free(ckpt);
  ckpt = NULL;
  CHECK(vlm_checkpoint_open(VLM_FIXTURES_DIR "/image", &ckpt) == VLM_ERR_NOT_FOUND);
  CHECK(vlm_model_locate("Nobody/Nothing-Here", &folder) == VLM_ERR_NOT_FOUND);
  CHECK(contains(vlm_last_error(), "never downloads"));
}

int main(void) {
  test_versions();
  test_null_arguments();
  test_images();
  test_checkpoints();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
