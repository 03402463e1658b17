/* libFuzzer target: JPEG decoding of arbitrary bytes with one long-lived
 * codec (handle reuse after errors is part of what is tested), then the
 * image pipeline on whatever decodes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "data/jpeg.h"
#include "data/transform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static KdJpeg *codec;
static KdPrepScratch scratch;
static float out[3 * 32 * 32];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!codec && !(codec = kd_jpeg_new())) return 0;
  KdError err;
  int w, h;
  if (kd_jpeg_header(codec, data, size, &w, &h, &err) != 0) {
    if (!err.msg[0]) __builtin_trap();
    return 0;
  }
  /* Huge images are legal but make the fuzzer slow, not smarter. */
  if ((long)w * h > (1L << 22)) return 0;
  KdImage im = {0};
  int min = size & 1 ? 32 : 0; /* exercise the decoder's downscaling too */
  if (kd_jpeg_decode(codec, data, size, min, min, &im, &err) == 0) {
    if (im.w <= 0 || im.h <= 0 || im.w > w || im.h > h) __builtin_trap();
    KdImageCfg cfg;
    kd_image_cfg_default(&cfg);
    cfg.size = 32;
    cfg.resize = size & 2 ? KD_RESIZE_STRETCH : KD_RESIZE_LETTERBOX;
    KdRng rng;
    kd_rng_seed(&rng, size, 0);
    KdAugment aug = kd_augment_draw(&cfg, &rng);
    KdXform xf;
    if (kd_image_prepare(&cfg, &im, w, h, &aug, out, &xf, &scratch, &err) != 0) __builtin_trap();
  } else if (!err.msg[0]) {
    __builtin_trap();
  }
  kd_image_free(&im);
  return 0;
}
