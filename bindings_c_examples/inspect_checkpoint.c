/* A minimal program using libvlmrt from C: lists the tensors of a checkpoint and decodes an image.
**
**   cc inspect_checkpoint.c $(pkg-config --cflags --libs vlmrt) -o inspect_checkpoint
**   ./inspect_checkpoint MODEL_FOLDER_OR_HUB_ID [IMAGE]
*/
#include <stdio.h>

#include <vlmrt.h>

int main(int argc, char **argv) {
  char *folder = NULL;
  vlm_checkpoint *checkpoint = NULL;
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [IMAGE]\n", argv[0]);
    return 2;
  }
  printf("vlmrt %s\n", vlm_version());
  if (vlm_model_locate(argv[1], &folder) != VLM_OK || vlm_checkpoint_open(folder, &checkpoint) != VLM_OK) {
    fprintf(stderr, "error: %s\n", vlm_last_error());
    vlm_string_free(folder);
    return 1;
  }
  for (size_t i = 0; i < vlm_checkpoint_tensor_count(checkpoint); ++i) {
    vlm_tensor_info info;
    if (vlm_checkpoint_tensor_info(checkpoint, i, &info) == VLM_OK) printf("%s %s\n", info.name, info.dtype);
  }
  vlm_checkpoint_free(checkpoint);
  vlm_string_free(folder);
  if (argc > 2) {
    vlm_image *image = NULL;
    if (vlm_image_load(argv[2], NULL, &image) != VLM_OK) {
      fprintf(stderr, "error: %s\n", vlm_last_error());
      return 1;
    }
    printf("image %ux%u\n", image->width, image->height);
    vlm_image_free(image);
  }
  return 0;
}
