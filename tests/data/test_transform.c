/* Image pipeline: the box transform and the pixels agree under letterbox,
 * stretch, flip and decoder downscaling; inverse mapping; normalisation;
 * jitter keeps padding and geometry; antialiased resampling. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/transform.h"

#define S 128

static KdImage make_image(int w, int h, int rx0, int ry0, int rx1, int ry1) {
  KdImage im = {.w = w, .h = h, .file_w = w, .file_h = h, .rgb = malloc((size_t)w * h * 3)};
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = im.rgb + 3 * ((size_t)y * w + x);
      int in = x >= rx0 && x < rx1 && y >= ry0 && y < ry1;
      p[0] = in ? 255 : 128, p[1] = in ? 0 : 128, p[2] = in ? 0 : 128;
    }
  return im;
}

/* Checks that pixels clearly inside box b (input coords) are red, pixels
 * clearly outside but inside the content are grey, padding is 0. */
static void check_pixels(const float *dst, const KdImageCfg *c, const KdXform *t, const float *b, const char *what) {
  float red = (1 - c->mean[0]) / c->std[0], grey = (128 / 255.f - c->mean[0]) / c->std[0];
  float cx0 = t->ox, cx1 = t->ox + t->sx * (float)t->orig_w, cy0 = t->oy, cy1 = t->oy + t->sy * (float)t->orig_h;
  if (t->flipped) {
    float f0 = S - cx1, f1 = S - cx0;
    cx0 = f0, cx1 = f1;
  }
  int bad_in = 0, bad_out = 0, bad_pad = 0, n_in = 0;
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++) {
      float u = (float)x + 0.5f, v = (float)y + 0.5f, r = dst[y * S + x];
      int in_content = u > cx0 && u < cx1 && v > cy0 && v < cy1;
      if (!in_content) {
        bad_pad += dst[y * S + x] != 0 || dst[S * S + y * S + x] != 0;
        continue;
      }
      if (u > b[0] + 1.5f && u < b[2] - 1.5f && v > b[1] + 1.5f && v < b[3] - 1.5f) bad_in += fabsf(r - red) > 0.05f, n_in++;
      else if ((u < b[0] - 1.5f || u > b[2] + 1.5f || v < b[1] - 1.5f || v > b[3] + 1.5f) &&
               u > cx0 + 1.5f && u < cx1 - 1.5f && v > cy0 + 1.5f && v < cy1 - 1.5f)
        bad_out += fabsf(r - grey) > 0.05f;
    }
  CHECK_MSG(n_in > 20 && bad_in == 0 && bad_out == 0 && bad_pad == 0, "%s: %d inside, %d/%d/%d wrong", what, n_in,
            bad_in, bad_out, bad_pad);
}

int main(void) {
  KdImageCfg c;
  kd_image_cfg_default(&c);
  KdError e;
  CHECK(kd_image_cfg_check(&c, &e) == 0);
  KdPrepScratch s = {0};
  float *dst = malloc(3 * S * S * sizeof(float));

  /* Letterbox of 200x100: scale 0.64, content 128x64, 32 px pad top/bottom. */
  KdXform t = kd_xform_make(&c, 200, 100, 0);
  CHECK_NEAR(t.sx, 0.64, 1e-6); CHECK_NEAR(t.sy, 0.64, 1e-6);
  CHECK_NEAR(t.ox, 0, 0); CHECK_NEAR(t.oy, 32, 0);
  const float box[4] = {20, 10, 60, 50};
  float in[4], back[4];
  kd_xform_boxes_to_input(&t, box, in, 1);
  CHECK_NEAR(in[0], 12.8, 1e-4); CHECK_NEAR(in[1], 38.4, 1e-4);
  CHECK_NEAR(in[2], 38.4, 1e-4); CHECK_NEAR(in[3], 64, 1e-4);
  t = kd_xform_make(&c, 200, 100, 1);
  kd_xform_boxes_to_input(&t, box, in, 1);
  CHECK_NEAR(in[0], 128 - 38.4, 1e-4); CHECK_NEAR(in[2], 128 - 12.8, 1e-4);
  CHECK(in[0] < in[2]);
  kd_xform_boxes_to_orig(&t, in, back, 1);
  for (int k = 0; k < 4; k++) CHECK_NEAR(back[k], box[k], 1e-4);
  /* Tall image: padding left/right. */
  t = kd_xform_make(&c, 50, 100, 0);
  CHECK_NEAR(t.ox, 32, 0); CHECK_NEAR(t.oy, 0, 0); CHECK_NEAR(t.sy, 1.28, 1e-6);
  /* Stretch: each axis on its own. */
  c.resize = KD_RESIZE_STRETCH;
  t = kd_xform_make(&c, 200, 100, 0);
  CHECK_NEAR(t.sx, 0.64, 1e-6); CHECK_NEAR(t.sy, 1.28, 1e-6); CHECK_NEAR(t.oy, 0, 0);
  c.resize = KD_RESIZE_LETTERBOX;

  /* Pixels follow the boxes: a red rectangle in a grey 200x100 image. */
  const float rect[4] = {40, 20, 120, 70};
  KdImage im = make_image(200, 100, 40, 20, 120, 70);
  for (int mode = 0; mode < 2; mode++)
    for (int flip = 0; flip < 2; flip++) {
      c.resize = mode ? KD_RESIZE_STRETCH : KD_RESIZE_LETTERBOX;
      KdAugment a = kd_augment_none();
      a.flip = flip;
      CHECK(kd_image_prepare(&c, &im, 200, 100, &a, dst, &t, &s, &e) == 0);
      CHECK(t.flipped == flip);
      kd_xform_boxes_to_input(&t, rect, in, 1);
      check_pixels(dst, &c, &t, in, mode ? (flip ? "stretch+flip" : "stretch") : (flip ? "letterbox+flip" : "letterbox"));
    }
  c.resize = KD_RESIZE_LETTERBOX;

  /* A decoder-downscaled image (100x50 for a declared 200x100) lands in
   * the same place: it is taken to cover the declared frame. */
  KdImage half = make_image(100, 50, 20, 10, 60, 35);
  KdAugment a = kd_augment_none();
  a.flip = 1;
  CHECK(kd_image_prepare(&c, &half, 200, 100, &a, dst, &t, &s, &e) == 0);
  kd_xform_boxes_to_input(&t, rect, in, 1);
  check_pixels(dst, &c, &t, in, "downscaled source");

  /* Normalisation is exact on a flat image; padding is exactly 0. */
  KdImage flat = make_image(64, 32, 0, 0, 0, 0);
  a = kd_augment_none();
  CHECK(kd_image_prepare(&c, &flat, 64, 32, &a, dst, &t, &s, &e) == 0);
  for (int k = 0; k < 3; k++) CHECK_NEAR(dst[k * S * S + 64 * S + 64], (128 / 255.f - c.mean[k]) / c.std[k], 1e-5);
  CHECK(dst[0] == 0 && dst[2 * S * S + S * S - 1] == 0);

  /* Jitter: brightness scales, saturation 0 makes grey, geometry and
   * padding untouched. */
  a = kd_augment_none();
  a.brightness = 1.5f;
  CHECK(kd_image_prepare(&c, &flat, 64, 32, &a, dst, &t, &s, &e) == 0);
  CHECK_NEAR(dst[64 * S + 64], (128 / 255.f * 1.5f - c.mean[0]) / c.std[0], 1e-4);
  CHECK(dst[0] == 0);
  a = kd_augment_none();
  a.saturation = 0;
  CHECK(kd_image_prepare(&c, &im, 200, 100, &a, dst, &t, &s, &e) == 0);
  kd_xform_boxes_to_input(&t, rect, in, 1);
  int px = (int)((in[0] + in[2]) / 2), py = (int)((in[1] + in[3]) / 2);
  float r = dst[py * S + px] * c.std[0] + c.mean[0], g = dst[S * S + py * S + px] * c.std[1] + c.mean[1];
  CHECK_NEAR(r, g, 1e-4);
  CHECK_NEAR(r, 0.299, 0.01);
  a = kd_augment_none();
  a.hue = 0.5f, a.contrast = 1.3f;
  CHECK(kd_image_prepare(&c, &flat, 64, 32, &a, dst, &t, &s, &e) == 0);
  CHECK_NEAR(dst[64 * S + 64], (128 / 255.f - c.mean[0]) / c.std[0], 2e-3); /* grey has no hue or contrast */

  /* Draws: flip rate follows hflip_prob; zero strengths give identity. */
  KdRng rng;
  kd_rng_seed(&rng, 3, 0);
  int flips = 0;
  for (int i = 0; i < 1000; i++) flips += kd_augment_draw(&c, &rng).flip;
  CHECK_MSG(flips > 420 && flips < 580, "%d flips", flips);
  KdImageCfg z = c;
  z.hflip_prob = 0, z.brightness = z.contrast = z.saturation = z.hue = 0;
  for (int i = 0; i < 50; i++) {
    KdAugment d = kd_augment_draw(&z, &rng);
    CHECK(d.flip == 0 && d.brightness == 1 && d.contrast == 1 && d.saturation == 1 && d.hue == 0);
  }

  /* Bad configs are refused with the field named. */
  z = c, z.size = 2;
  CHECK(kd_image_cfg_check(&z, &e) == -1 && strstr(e.msg, "image.size"));
  z = c, z.std[1] = 0;
  CHECK(kd_image_cfg_check(&z, &e) == -1 && strstr(e.msg, "image.std[1]"));
  z = c, z.hflip_prob = 2;
  CHECK(kd_image_cfg_check(&z, &e) == -1 && strstr(e.msg, "hflip_prob"));

  /* Shrinking a 1-px checkerboard averages it instead of aliasing. */
  float *cb = malloc(64 * 64 * sizeof(float)), out[16 * 16];
  for (int y = 0; y < 64; y++)
    for (int x = 0; x < 64; x++) cb[y * 64 + x] = (float)((x + y) & 1);
  CHECK(kd_resample_f32(cb, 64, 64, 1, out, 16, 16, &s) == 0);
  float lo = 1, hi = 0;
  for (int i = 0; i < 256; i++) lo = fminf(lo, out[i]), hi = fmaxf(hi, out[i]);
  CHECK_MSG(lo > 0.45f && hi < 0.55f, "range %g..%g", lo, hi);
  /* Same size is an exact copy. */
  float same[64 * 64];
  CHECK(kd_resample_f32(cb, 64, 64, 1, same, 64, 64, &s) == 0 && memcmp(same, cb, sizeof same) == 0);

  free(cb), free(dst), free(im.rgb), free(half.rgb), free(flat.rgb);
  kd_prep_scratch_free(&s);
  return check_status("test_transform");
}
