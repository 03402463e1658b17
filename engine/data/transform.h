/* The image pipeline from decoded RGB8 to the network input: resize
 * (letterbox or stretch) with an antialiasing filter, horizontal flip,
 * colour jitter, per-channel normalisation, and the box transform that goes
 * with it, both ways. Coordinates are continuous pixels: (0,0) is the top-left
 * corner of the top-left pixel, (w,h) the bottom-right corner of the image. */
#ifndef KD_TRANSFORM_H
#define KD_TRANSFORM_H

#include "core/rng.h"
#include "data/jpeg.h"

typedef enum KdResize {
  KD_RESIZE_LETTERBOX = 0, /* keep aspect, centre, pad to size x size */
  KD_RESIZE_STRETCH = 1,   /* scale each axis to size */
  /* torchvision's detection transform: scale min(min_size / short side,
   * max_size / long side), bilinear without antialiasing, top-left, zero
   * padded (after normalisation) to size x size */
  KD_RESIZE_TORCHVISION = 2,
} KdResize;

typedef struct KdImageCfg {
  int size;         /* network input is size x size; default 128 */
  KdResize resize;  /* default letterbox */
  int min_size, max_size; /* torchvision: 800, 1333 (content clipped to size) */
  float hflip_prob; /* default 0.5 */
  /* Colour jitter strengths, torchvision ColorJitter-like, applied in this
   * fixed order: brightness factor in [1-b, 1+b], contrast [1-c, 1+c],
   * saturation [1-s, 1+s], hue shift in [-h, h] turns (h <= 0.5). Defaults
   * 0.2, 0.2, 0.2, 0.02; 0 disables one. */
  float brightness, contrast, saturation, hue;
  /* Normalisation on 0..1 RGB: (v - mean) / std. Default ImageNet. Padding
   * is written as 0 after normalisation (the mean colour). */
  float mean[3], std[3];
} KdImageCfg;

void kd_image_cfg_default(KdImageCfg *c);
/* 0 if usable, else -1 with a message naming the field. */
int kd_image_cfg_check(const KdImageCfg *c, KdError *err);

/* How one image went from original pixels (the json's width x height
 * frame) to network-input pixels:
 *   u = x * sx + ox,  v = y * sy + oy,  then if flipped u = in_w - u. */
typedef struct KdXform {
  float sx, sy, ox, oy;
  int flipped;
  int in_w, in_h;     /* network input size */
  int orig_w, orig_h; /* original frame (json width/height) */
} KdXform;

KdXform kd_xform_make(const KdImageCfg *c, int orig_w, int orig_h, int flipped);
/* n boxes x1,y1,x2,y2; in and out may alias. to_input clips to the input
 * and keeps x1 <= x2 under flips; to_orig is its inverse (no clipping). */
void kd_xform_boxes_to_input(const KdXform *t, const float *in, float *out, int n);
void kd_xform_boxes_to_orig(const KdXform *t, const float *in, float *out, int n);

/* The random choices for one sample, drawn from its own RNG stream. */
typedef struct KdAugment {
  int flip;
  float brightness, contrast, saturation, hue; /* factors; hue in turns */
} KdAugment;

/* Identity augmentation (no flip, factors 1, hue 0). */
KdAugment kd_augment_none(void);
/* Draws flip then the four jitter factors, always the same number of draws. */
KdAugment kd_augment_draw(const KdImageCfg *c, KdRng *rng);

/* Reusable buffers for kd_image_prepare (one per thread); zero-initialise. */
typedef struct KdPrepScratch {
  float *tmp, *img, *wx, *wy;
  int *x0, *nx, *y0, *ny;
  size_t tmp_cap, img_cap, wx_cap, wy_cap, x_cap, y_cap;
} KdPrepScratch;
void kd_prep_scratch_free(KdPrepScratch *s);

/* src (any size; it is taken to cover the orig_w x orig_h frame, so a
 * decoder-downscaled image works) -> dst [3, size, size] normalised.
 * Returns -1 only when out of memory. */
int kd_image_prepare(const KdImageCfg *c, const KdImage *src, int orig_w, int orig_h,
                     const KdAugment *aug, float *dst, KdXform *xf, KdPrepScratch *s,
                     KdError *err);

/* Separable resample of interleaved float pixels (ch channels) with a
 * triangle filter widened when shrinking (no aliasing). Used by the
 * data-set builder too. */
int kd_resample_f32(const float *src, int sw, int sh, int ch, float *dst, int dw, int dh,
                    KdPrepScratch *s);

#endif
