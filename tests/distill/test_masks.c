/* Masks and attention of engine/distill/masks.h: DeFeat's level table and
 * rasterisation edge cases, FGD's scale masks (hand case, normalisation,
 * stride rule == the FGD code's img_shape rule on square inputs), the
 * Gaussian helper, attention and the fused squared distance: values and
 * gradients. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "distill/masks.h"
#include "gradcheck.h"

static float at(const KdTensor *m, int n, int y, int x) { return m->data[((size_t)n * m->shape[2] + y) * m->shape[3] + x]; }

static double plane_sum(const KdTensor *m, int n) {
  double s = 0;
  size_t p = (size_t)m->shape[2] * m->shape[3];
  for (size_t i = 0; i < p; i++) s += m->data[n * p + i];
  return s;
}

/* A square box of scale exactly s: sqrt((w+1)(h+1)) = s. */
static int level_of_scale(float s, float fs, int nlev) {
  float b[4] = {10, 20, 10 + s - 1, 20 + s - 1};
  return kd_defeat_level(b, fs, nlev);
}

static void test_levels(void) {
  /* DeFeat on COCO (fs 56, five levels): <112 P3, [112,224) P4, [224,448) P5,
   * [448,896) P6, >= 896 P7. The +1e-6 puts an exact 2^k on the upper level. */
  const float sc[] = {5, 111, 112, 223, 224, 447, 448, 895, 896, 3000};
  const int want5[] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4};
  for (int i = 0; i < 10; i++) CHECK_MSG(level_of_scale(sc[i], 56, 5) == want5[i], "scale %g", sc[i]);
  /* Three levels clamp everything from 224 on to P5. */
  CHECK(level_of_scale(448, 56, 3) == 2 && level_of_scale(3000, 56, 3) == 2);
  /* fashion-det preset (fs 11): <22 P3, [22,44) P4, >= 44 P5. */
  const float fsc[] = {6, 10, 21, 22, 30, 43, 44, 80};
  const int want3[] = {0, 0, 0, 1, 1, 1, 2, 2};
  for (int i = 0; i < 8; i++) CHECK_MSG(level_of_scale(fsc[i], 11, 3) == want3[i], "scale %g", fsc[i]);
  /* A real non-square box: 30x12 px -> sqrt(31*13) = 20.07 -> P3 at fs 11, P4 at fs 9. */
  float b[4] = {3, 4, 33, 16};
  CHECK(kd_defeat_level(b, 11, 3) == 0 && kd_defeat_level(b, 9, 3) == 1);
  /* Degenerate and NaN boxes go to the finest level, no UB. */
  float bad[4] = {10, 10, 5, 5}, nan4[4] = {NAN, 0, 1, 1};
  CHECK(kd_defeat_level(bad, 11, 3) == 0 && kd_defeat_level(nan4, 11, 3) == 0);
}

static void test_defeat_raster(KdCtx *c) {
  /* 4x4 grid, stride 8 (32 px image); fs large so every box is on level 0. */
  const float boxes[] = {
      3,  5,  20, 27, /* cols [0,2) rows [0,3): 6 cells */
      33, 24, 40, 26, /* x1/s = 4 = w: single cell (3,4) is off the map -> nothing
                       * (unguarded, it would land on image 1's first cell) */
      17, 9,  23, 15, /* lx == rx == 2: single cell (1,2) */
      16, 17, 30, 22, /* ly == ry == 2, lx < rx: still only cell (2,2), not (2,3) */
      -5, 25, 10, 1e30f, /* negative x1 -> 0; huge y2 clipped: cols [0,1) rows [3,4) */
  };
  KdGtImage gt[2] = {{boxes, NULL, NULL, 5}, {NULL, NULL, NULL, 0}};
  KdMaskGrid g = {2, 4, 4, 8};
  KdTensor *m = kd_mask_defeat(c, gt, g, 0, 1, 1000.0f);
  CHECK(m && m->shape[0] == 2 && m->shape[1] == 1 && m->shape[2] == 4 && m->shape[3] == 4);
  if (!m) return;
  const float want[4][4] = {{1, 1, 0, 0}, {1, 1, 1, 0}, {1, 1, 1, 0}, {1, 0, 0, 0}};
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) CHECK_MSG(at(m, 0, y, x) == want[y][x], "cell (%d,%d) = %g", y, x, at(m, 0, y, x));
  CHECK(plane_sum(m, 1) == 0.0);
  /* Exclusive end at an exact multiple: [0,16) covers cols 0,1 only. */
  const float b2[] = {0, 0, 16, 16, 24, 24, 24, 24};
  KdGtImage g2 = {b2, NULL, NULL, 2};
  KdTensor *m2 = kd_mask_defeat(c, &g2, (KdMaskGrid){1, 4, 4, 8}, 0, 1, 1000.0f);
  CHECK(m2 && plane_sum(m2, 0) == 5.0 && at(m2, 0, 1, 1) == 1 && at(m2, 0, 2, 2) == 0 && at(m2, 0, 3, 3) == 1);
  /* Level split: a box goes to its one level only; crowd boxes nowhere. */
  const float b3[] = {0, 0, 6, 6,     /* scale 7 -> level 0 at fs 4 */
                      0, 0, 31, 31,   /* scale 32 -> level 2 (clamped from 3) */
                      16, 0, 27, 11}; /* scale 12 -> level 1, but crowd */
  const int crowd[] = {0, 0, 1};
  KdGtImage g3 = {b3, NULL, crowd, 3};
  KdTensor *l0 = kd_mask_defeat(c, &g3, (KdMaskGrid){1, 4, 4, 8}, 0, 3, 4.0f);
  KdTensor *l1 = kd_mask_defeat(c, &g3, (KdMaskGrid){1, 2, 2, 16}, 1, 3, 4.0f);
  KdTensor *l2 = kd_mask_defeat(c, &g3, (KdMaskGrid){1, 1, 1, 32}, 2, 3, 4.0f);
  CHECK(l0 && plane_sum(l0, 0) == 1.0 && at(l0, 0, 0, 0) == 1);
  CHECK(l1 && plane_sum(l1, 0) == 0.0);
  CHECK(l2 && plane_sum(l2, 0) == 1.0);
  /* A bad grid is a ctx error, not a crash. */
  CHECK(kd_mask_defeat(c, gt, (KdMaskGrid){0, 4, 4, 8}, 0, 1, 56) == NULL && kd_ctx_failed(c));
  kd_ctx_clear_error(c);
}

static void test_fgd_hand(KdCtx *c) {
  /* 4x4 grid, stride 8. Box A [4,4,12,12] -> x' 0.5..1.5 -> cells 0..2 (inclusive
   * floor/ceil), area 1/9. Box B [12,12,16,16] -> 1.5..2 -> cells 1..2, 1/4;
   * the overlap keeps the max. Box C [20,20,40,40] -> 2.5..5 -> cells 2..5,
   * area 1/16 counting the two rows/cols off the map, drawn on 2..3. */
  const float boxes[] = {4, 4, 12, 12, 12, 12, 16, 16, 20, 20, 40, 40};
  KdGtImage gt[3] = {{boxes, NULL, NULL, 2}, {NULL, NULL, NULL, 0}, {boxes + 8, NULL, NULL, 1}};
  KdTensor *fg, *bg;
  CHECK(kd_mask_fgd(c, gt, (KdMaskGrid){3, 4, 4, 8}, NULL, &fg, &bg) == 0);
  if (kd_ctx_failed(c)) return;
  const float a = 1.0f / 9, q = 0.25f;
  const float want[4][4] = {{a, a, a, 0}, {a, q, q, 0}, {a, q, q, 0}, {0, 0, 0, 0}};
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) {
      CHECK_NEAR(at(fg, 0, y, x), want[y][x], 1e-7);
      CHECK_NEAR(at(bg, 0, y, x), want[y][x] == 0 ? 1.0 / 7 : 0.0, 1e-7);
    }
  /* Normalisation: bg sums to 1 per image with background; no box -> uniform. */
  CHECK_NEAR(plane_sum(bg, 0), 1.0, 1e-6);
  CHECK_NEAR(plane_sum(bg, 1), 1.0, 1e-6);
  CHECK_NEAR(at(bg, 1, 2, 3), 1.0 / 16, 1e-7);
  CHECK(plane_sum(fg, 1) == 0.0);
  CHECK_NEAR(at(fg, 2, 2, 2), 1.0 / 16, 1e-7);
  CHECK_NEAR(at(fg, 2, 3, 3), 1.0 / 16, 1e-7);
  CHECK(at(fg, 2, 1, 1) == 0.0f);
  CHECK_NEAR(plane_sum(bg, 2), 1.0, 1e-6);
  /* A box over the whole map leaves no background: bg stays 0, no division. */
  const float whole[] = {0, 0, 32, 32};
  KdGtImage gw = {whole, NULL, NULL, 1};
  CHECK(kd_mask_fgd(c, &gw, (KdMaskGrid){1, 4, 4, 8}, NULL, &fg, &bg) == 0);
  CHECK(plane_sum(bg, 0) == 0.0 && fabs(at(fg, 0, 0, 0) - 1.0 / 25) < 1e-8);
}

/* On our letterboxed square inputs img_shape == pad_shape, so the FGD code's
 * box / img_w * W equals box / stride exactly: random boxes, all levels. */
static void test_fgd_rules_agree(KdCtx *c) {
  KdRng r;
  kd_rng_seed(&r, 5, 1);
  enum { N = 4, B = 6 };
  float boxes[N][B * 4];
  KdGtImage gt[N];
  for (int n = 0; n < N; n++) {
    for (int j = 0; j < B; j++) {
      float x = kd_rng_range(&r, 0, 110), y = kd_rng_range(&r, 0, 110);
      float w = kd_rng_range(&r, 1, 128 - x), h = kd_rng_range(&r, 1, 128 - y);
      if (j == 0) x = 8, y = 16, w = 24, h = 40; /* integer, stride-aligned edges */
      float *b = &boxes[n][4 * j];
      b[0] = x, b[1] = y, b[2] = x + w, b[3] = y + h;
    }
    gt[n] = (KdGtImage){boxes[n], NULL, NULL, B};
  }
  const int strides[3] = {8, 16, 32}, img[2] = {128, 128};
  for (int l = 0; l < 3; l++) {
    int hw = 128 / strides[l];
    KdTensor *f1, *b1, *f2, *b2;
    KdMaskGrid g = {N, hw, hw, strides[l]};
    CHECK(kd_mask_fgd(c, gt, g, NULL, &f1, &b1) == 0 && kd_mask_fgd(c, gt, g, img, &f2, &b2) == 0);
    if (kd_ctx_failed(c)) return;
    CHECK_MSG(!memcmp(f1->data, f2->data, f1->numel * 4) && !memcmp(b1->data, b2->data, b1->numel * 4),
              "level %d: stride rule and img_shape rule differ", l);
  }
  /* Where the image was padded (a 100 px image in a 128 px input) the two
   * differ: the FGD code stretches boxes by 128/100. */
  const int small[2] = {100, 100};
  KdTensor *f1, *b1, *f2, *b2;
  KdMaskGrid g = {N, 16, 16, 8};
  CHECK(kd_mask_fgd(c, gt, g, NULL, &f1, &b1) == 0 && kd_mask_fgd(c, gt, g, small, &f2, &b2) == 0);
  CHECK(memcmp(f1->data, f2->data, f1->numel * 4) != 0);
}

static void test_gaussian(KdCtx *c) {
  /* Box centred on cell (1,2)'s centre (20, 12), 16x8 px, sigma 0.25 of
   * the sides: sx = 4, sy = 2. Cell (1,3) is 8 px right: exp(-0.5*4) = e^-2;
   * cell (2,2) is 8 px down: exp(-0.5*16) = e^-8. */
  const float boxes[] = {12, 8, 28, 16, 100, 100, 101, 101};
  KdGtImage gt = {boxes, NULL, NULL, 2};
  KdTensor *m = kd_mask_gaussian(c, &gt, (KdMaskGrid){1, 4, 4, 8}, 0.25f);
  CHECK(m != NULL);
  if (!m) return;
  CHECK_NEAR(at(m, 0, 1, 2), 1.0, 1e-6);
  CHECK_NEAR(at(m, 0, 1, 3), exp(-2.0), 1e-6);
  CHECK_NEAR(at(m, 0, 1, 1), exp(-2.0), 1e-6);
  CHECK_NEAR(at(m, 0, 2, 2), exp(-8.0), 1e-7);
  for (size_t i = 0; i < m->numel; i++) CHECK(m->data[i] >= 0.0f && m->data[i] <= 1.0f);
  /* Max over boxes: a second box centred on cell (3,0) gives 1 there. */
  const float two[] = {12, 8, 28, 16, 0, 24, 8, 32};
  KdGtImage g2 = {two, NULL, NULL, 2};
  KdTensor *m2 = kd_mask_gaussian(c, &g2, (KdMaskGrid){1, 4, 4, 8}, 0.25f);
  CHECK(m2 && fabs(at(m2, 0, 3, 0) - 1.0) < 1e-6 && fabs(at(m2, 0, 1, 2) - 1.0) < 1e-6);
}

static void test_attention_values(KdCtx *c) {
  /* x (1,2,2,2); mean_c|x| = [1.5, 1, 0.5, 2], /0.5 -> [3, 2, 1, 4]; spatial =
   * 4*softmax; mean_hw|x| = [1.5, 1] -> 2*softmax([3, 2]). numpy:
   * sp = [0.94753127 0.34857727 0.12823441 2.57565704], ch = [1.46211716 0.53788284] */
  float v[8] = {1, -2, 0, 3, 2, 0, -1, 1};
  int shape[4] = {1, 2, 2, 2};
  KdTensor *x = kd_tensor_wrap(c, v, 4, shape);
  KdTensor *sp = kd_attention_spatial(c, x, 0.5f), *ch = kd_attention_channel(c, x, 0.5f);
  CHECK(sp && ch && sp->shape[1] == 1 && sp->shape[2] == 2 && ch->shape[1] == 2 && ch->shape[2] == 1);
  if (!sp || !ch) return;
  const double wsp[4] = {0.94753127, 0.34857727, 0.12823441, 2.57565704}, wch[2] = {1.46211716, 0.53788284};
  for (int i = 0; i < 4; i++) CHECK_NEAR(sp->data[i], wsp[i], 1e-6);
  for (int i = 0; i < 2; i++) CHECK_NEAR(ch->data[i], wch[i], 1e-6);
  /* Sums H*W and C per image on a random map. */
  KdRng r;
  kd_rng_seed(&r, 3, 3);
  int s2[4] = {3, 5, 4, 6};
  KdTensor *y = kd_tensor_new(c, 4, s2);
  for (size_t i = 0; i < y->numel; i++) y->data[i] = kd_rng_normal(&r);
  KdTensor *a = kd_attention_spatial(c, y, 0.7f), *b = kd_attention_channel(c, y, 0.7f);
  for (int n = 0; n < 3; n++) {
    double sa = 0, sb = 0;
    for (int i = 0; i < 24; i++) sa += a->data[n * 24 + i];
    for (int i = 0; i < 5; i++) sb += b->data[n * 5 + i];
    CHECK_NEAR(sa, 24.0, 1e-4);
    CHECK_NEAR(sb, 5.0, 1e-5);
  }
  CHECK(kd_attention_spatial(c, y, 0.0f) == NULL && kd_ctx_failed(c));
  kd_ctx_clear_error(c);
}

static KdTensor *fwd_sp(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_attention_spatial(c, in[0], 0.5f);
}

static KdTensor *fwd_ch(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_attention_channel(c, in[0], 0.8f);
}

/* kd_sqdist_sums against the plain sum, and its gradients (x, y, b). */
static void test_sqdist_values(KdCtx *c) {
  KdRng r;
  kd_rng_seed(&r, 8, 2);
  int s4[4] = {2, 3, 4, 5}, nc[4] = {2, 3, 1, 1}, map[4] = {2, 1, 4, 5};
  KdTensor *x = kd_tensor_new(c, 4, s4), *y = kd_tensor_new(c, 4, s4), *b = kd_tensor_new(c, 4, nc),
           *cw = kd_tensor_new(c, 4, nc), *p0 = kd_tensor_new(c, 4, map), *p1 = kd_tensor_new(c, 4, map);
  KdTensor *all[6] = {x, y, b, cw, p0, p1};
  for (int k = 0; k < 6; k++)
    for (size_t i = 0; i < all[k]->numel; i++) all[k]->data[i] = kd_rng_normal(&r);
  double want[2] = {0, 0}, plain = 0;
  for (int n = 0; n < 2; n++)
    for (int ch = 0; ch < 3; ch++)
      for (int p = 0; p < 20; p++) {
        size_t i = ((size_t)n * 3 + ch) * 20 + p;
        double d = (double)x->data[i] - y->data[i] + b->data[n * 3 + ch];
        want[0] += cw->data[n * 3 + ch] * p0->data[n * 20 + p] * d * d;
        want[1] += cw->data[n * 3 + ch] * p1->data[n * 20 + p] * d * d;
        plain += ((double)x->data[i] - y->data[i]) * ((double)x->data[i] - y->data[i]);
      }
  KdTensor *pw[2] = {p0, p1};
  KdTensor *o2 = kd_sqdist_sums(c, x, y, b, cw, pw, 2), *o0 = kd_sqdist_sums(c, x, y, NULL, NULL, NULL, 0);
  CHECK(o2 && o2->numel == 2 && o0 && o0->numel == 1);
  if (!o2 || !o0) return;
  CHECK_NEAR(o2->data[0], want[0], 1e-5 * fabs(want[0]) + 1e-6);
  CHECK_NEAR(o2->data[1], want[1], 1e-5 * fabs(want[1]) + 1e-6);
  CHECK_NEAR(o0->data[0], plain, 1e-5 * plain);
  /* Shape mismatch: a ctx error. */
  CHECK(kd_sqdist_sums(c, x, cw, NULL, NULL, NULL, 0) == NULL && kd_ctx_failed(c));
  kd_ctx_clear_error(c);
}

static KdTensor *fwd_sq(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  KdTensor *pw[2] = {in[4], in[5]};
  return kd_sqdist_sums(c, in[0], in[1], in[2], in[3], pw, 2);
}

static KdTensor *fwd_sq0(KdCtx *c, KdTensor **in, void *u) {
  (void)u;
  return kd_sqdist_sums(c, in[0], in[1], in[2], NULL, NULL, 0);
}

int main(void) {
  KdCtx *c = kd_ctx_new(8u << 20);
  test_levels();
  test_defeat_raster(c);
  test_fgd_hand(c);
  test_fgd_rules_agree(c);
  test_gaussian(c);
  test_attention_values(c);
  test_sqdist_values(c);
  CHECK(!kd_ctx_failed(c));
  kd_ctx_free(c);

  Gc *g = gc_new("attention/spatial", fwd_sp, NULL);
  gc_input(g, GC_CHECK | GC_AWAY_ZERO, 4, (int[]){2, 3, 3, 4});
  check_failures += gc_run(g);
  g = gc_new("attention/channel", fwd_ch, NULL);
  gc_input(g, GC_CHECK | GC_AWAY_ZERO, 4, (int[]){2, 5, 3, 2});
  check_failures += gc_run(g);
  g = gc_new("sqdist_sums/2 maps", fwd_sq, NULL);
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4, 5});
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 4, 5});
  gc_input(g, GC_CHECK, 4, (int[]){2, 3, 1, 1});
  gc_input(g, GC_CONST, 4, (int[]){2, 3, 1, 1});
  gc_input(g, GC_CONST, 4, (int[]){2, 1, 4, 5});
  gc_input(g, GC_CONST, 4, (int[]){2, 1, 4, 5});
  check_failures += gc_run(g);
  g = gc_new("sqdist_sums/plain+bias", fwd_sq0, NULL);
  gc_input(g, GC_CHECK, 4, (int[]){3, 2, 3, 3});
  gc_input(g, GC_CONST, 4, (int[]){3, 2, 3, 3});
  gc_input(g, GC_CHECK | GC_PARAM, 4, (int[]){3, 2, 1, 1});
  check_failures += gc_run(g);
  return check_status("distill_masks");
}
