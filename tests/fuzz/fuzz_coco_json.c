/* libFuzzer target: the COCO json loader on arbitrary bytes. Anything may
 * be rejected; nothing may crash, leak or read out of bounds. Accepted
 * data sets are walked entirely so bad internal state would show. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  KdDataset *ds = NULL;
  KdError err;
  if (kd_dataset_parse((const char *)data, size, "fuzz.json", NULL, &ds, &err) != 0) {
    if (!err.msg[0]) __builtin_trap(); /* every failure must say why */
    return 0;
  }
  volatile double sink = 0;
  for (int c = 0; c < kd_dataset_num_classes(ds); c++) {
    sink += (double)strlen(kd_dataset_class_name(ds, c));
    if (kd_dataset_class_index(ds, kd_dataset_class_coco_id(ds, c)) != c) __builtin_trap();
  }
  for (int i = 0; i < kd_dataset_num_images(ds); i++) {
    KdDatasetImage im = kd_dataset_image(ds, i);
    sink += (double)strlen(im.file_name);
    if (kd_dataset_image_index(ds, im.id) != i) __builtin_trap();
    for (int b = 0; b < im.n_boxes; b++) {
      const float *x = im.boxes + 4 * b;
      if (!(x[0] >= 0 && x[2] > x[0] && x[2] <= (float)im.width && x[3] > x[1] && x[3] <= (float)im.height))
        __builtin_trap(); /* clipping and dropping must hold */
      if (im.labels[b] < 0 || im.labels[b] >= kd_dataset_num_classes(ds)) __builtin_trap();
      sink += im.crowd[b] + im.areas[b];
    }
  }
  sink += (double)strlen(kd_dataset_summary(ds));
  if (sink < 0) __builtin_trap();
  kd_dataset_free(ds);
  return 0;
}
