/* Detection losses against PyTorch (float64 autograd): focal loss
 * (torchvision.ops.sigmoid_focal_loss) for three (alpha, gamma) settings,
 * smooth-L1 (beta 0.11) and L1 (beta 0), and GIoU
 * (torchvision.ops.generalized_box_iou_loss after BoxCoder.decode_single,
 * one dw past the clamp) on 3 levels, 2 images, A = 3, K = 4. The Python
 * side rebuilds the flat anchor order with torchvision's permute, so this
 * also checks the layout convention. Loss and every gradient element must
 * agree to 1e-4 relative. Skips (77) without torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "core/rng.h"
#include "detect/anchors.h"
#include "detect/assign.h"
#include "detect/detloss.h"
#include "oracle.h"

enum { N = 2, A = 3, K = 4, NLEV = 3 };
static const int HW[NLEV * 2] = {4, 5, 2, 3, 1, 1};
static int At;

static int close_rel(double a, double b) { return fabs(a - b) <= 1e-4 * fabs(b) + 1e-7; }

/* One loss evaluated here and by torch. */
typedef struct {
  const char *mode;
  KdCtx *c;
  KdTensor *lv[NLEV], *loss;
  Oracle o;
} Case;

/* Compares loss + grads of a case with torch's. */
static void compare(Case *k) {
  size_t n;
  const double *ref = oracle_get(&k->o, "loss", &n);
  CHECK_MSG(ref && close_rel(k->loss->data[0], ref[0]), "%s: loss %.9g vs torch %.9g", k->mode, k->loss->data[0],
            ref ? ref[0] : NAN);
  for (int l = 0; l < NLEV; l++) {
    char name[16];
    snprintf(name, sizeof name, "grad%d", l);
    ref = oracle_get(&k->o, name, &n);
    CHECK(ref && n == k->lv[l]->numel);
    int bad = 0;
    size_t worst = 0;
    for (size_t i = 0; ref && i < n; i++)
      if (!close_rel(k->lv[l]->grad[i], ref[i])) {
        if (!bad) worst = i;
        bad++;
      }
    CHECK_MSG(bad == 0, "%s: level %d: %d gradients differ, first [%zu] %.9g vs torch %.9g", k->mode, l, bad, worst,
              k->lv[l]->grad[worst], ref[worst]);
  }
}

static void write_levels(Oracle *o, const char *prefix, KdTensor **lv) {
  for (int l = 0; l < NLEV; l++) {
    char name[16];
    snprintf(name, sizeof name, "%s%d", prefix, l);
    oracle_f(o, name, lv[l]->data, lv[l]->numel);
  }
}

static void make_levels(KdCtx *c, KdRng *r, int per, float sd, KdTensor **lv) {
  for (int l = 0; l < NLEV; l++) {
    lv[l] = kd_tensor4(c, N, A * per, HW[2 * l], HW[2 * l + 1]);
    for (size_t i = 0; i < lv[l]->numel; i++) lv[l]->data[i] = sd * kd_rng_normal(r);
    lv[l]->requires_grad = 1;
  }
}

int main(void) {
  At = (20 + 6 + 1) * A;
  KdRng r;
  kd_rng_seed(&r, 2024, 5);
  int *tc = malloc((size_t)N * At * sizeof *tc);
  for (int i = 0; i < N * At; i++) {
    float u = kd_rng_uniform(&r);
    tc[i] = u < 0.15f ? KD_MATCH_IGNORE : (u < 0.35f ? (int)kd_rng_below(&r, K) : KD_MATCH_NEG);
  }
  int npos = 0;
  for (int i = 0; i < N * At; i++) npos += tc[i] >= 0;
  float norm = (float)npos;
  enum { NCASE = 6 };
  Case cases[NCASE];
  int nc = 0;

  /* ---- focal, three (alpha, gamma) settings ---- */
  const float settings[3][2] = {{0.25f, 2.0f}, {-1.0f, 0.0f}, {0.6f, 1.5f}};
  for (int s = 0; s < 3; s++) {
    Case *k = &cases[nc++];
    k->mode = "focal";
    k->c = kd_ctx_new(1 << 20);
    make_levels(k->c, &r, K, 2.0f, k->lv);
    k->lv[0]->data[3] = 40.0f; /* saturated logits */
    k->lv[1]->data[5] = -40.0f;
    k->loss = kd_focal_loss(k->c, k->lv, NLEV, A, tc, settings[s][0], settings[s][1], norm);
    CHECK(k->loss && kd_backward(k->c, k->loss) == 0);
    CHECK(oracle_open(&k->o) == 0);
    double meta[7] = {N, A, K, NLEV, settings[s][0], settings[s][1], norm};
    oracle_d(&k->o, "meta", meta, 7);
    oracle_i(&k->o, "hw", HW, NLEV * 2);
    oracle_i(&k->o, "target", tc, (size_t)N * At);
    write_levels(&k->o, "cls", k->lv);
  }

  /* ---- smooth L1 and L1 ---- */
  float *td = malloc((size_t)N * At * 4 * sizeof *td);
  for (int i = 0; i < N * At * 4; i++) td[i] = 0.5f * kd_rng_normal(&r);
  const float betas[2] = {0.11f, 0.0f};
  for (int s = 0; s < 2; s++) {
    Case *k = &cases[nc++];
    k->mode = "smoothl1";
    k->c = kd_ctx_new(1 << 20);
    make_levels(k->c, &r, 4, 0.5f, k->lv);
    k->loss = kd_smooth_l1_loss(k->c, k->lv, NLEV, A, td, tc, betas[s], norm);
    CHECK(k->loss && kd_backward(k->c, k->loss) == 0);
    CHECK(oracle_open(&k->o) == 0);
    double meta[5] = {N, A, NLEV, betas[s], norm};
    oracle_d(&k->o, "meta", meta, 5);
    oracle_i(&k->o, "hw", HW, NLEV * 2);
    oracle_i(&k->o, "target", tc, (size_t)N * At);
    oracle_f(&k->o, "tdelta", td, (size_t)N * At * 4);
    write_levels(&k->o, "box", k->lv);
  }

  /* ---- GIoU on real anchors (1 scale x 3 ratios) ---- */
  KdAnchorCfg acfg;
  kd_anchor_cfg_default(&acfg);
  acfg.nscales = 1;
  float *anchors = malloc((size_t)At * 4 * sizeof *anchors);
  CHECK(kd_anchors_total(&acfg, HW) == At);
  CHECK(kd_anchors_generate(&acfg, HW, anchors, NULL, NULL) == 0);
  float *tb = malloc((size_t)N * At * 4 * sizeof *tb);
  for (int i = 0; i < N * At; i++) {
    const float *an = anchors + 4 * (i % At);
    float w = an[2] - an[0], h = an[3] - an[1], *t = tb + 4 * i;
    t[0] = an[0] + w * kd_rng_range(&r, -0.6f, 0.6f);
    t[1] = an[1] + h * kd_rng_range(&r, -0.6f, 0.6f);
    t[2] = t[0] + w * kd_rng_range(&r, 0.3f, 1.8f);
    t[3] = t[1] + h * kd_rng_range(&r, 0.3f, 1.8f);
  }
  {
    Case *k = &cases[nc++];
    k->mode = "giou";
    k->c = kd_ctx_new(1 << 20);
    make_levels(k->c, &r, 4, 0.4f, k->lv);
    /* a clamped dw on a positive anchor of level 0 */
    for (int i = 0; i < 20 * A; i++)
      if (tc[i] >= 0) {
        int hw = i / A, a = i % A;
        k->lv[0]->data[(a * 4 + 2) * 20 + hw] = 5.0f;
        break;
      }
    KdBoxCoder bc = kd_box_coder_default();
    k->loss = kd_giou_loss(k->c, k->lv, NLEV, A, anchors, tb, tc, &bc, norm);
    CHECK(k->loss && kd_backward(k->c, k->loss) == 0);
    CHECK(oracle_open(&k->o) == 0);
    double meta[4] = {N, A, NLEV, norm};
    oracle_d(&k->o, "meta", meta, 4);
    oracle_i(&k->o, "hw", HW, NLEV * 2);
    oracle_i(&k->o, "target", tc, (size_t)N * At);
    oracle_f(&k->o, "anchors", anchors, (size_t)At * 4);
    oracle_f(&k->o, "tboxes", tb, (size_t)N * At * 4);
    write_levels(&k->o, "box", k->lv);
  }

  Oracle *os[NCASE];
  const char *modes[NCASE];
  for (int i = 0; i < nc; i++) os[i] = &cases[i].o, modes[i] = cases[i].mode;
  int rc = oracle_run_many(os, modes, nc, "torch_ref.py");
  CHECK_MSG(rc == 0 || rc == 77, "oracle failed with status %d", rc);
  for (int i = 0; i < nc; i++) {
    if (rc == 0) compare(&cases[i]);
    oracle_close(&cases[i].o);
    kd_ctx_free(cases[i].c);
  }
  free(anchors);
  free(tb);
  free(td);
  free(tc);
  if (rc == 77 && check_failures == 0) {
    printf("test_detloss_torch: skipped (no torch)\n");
    return 77;
  }
  return check_status("test_detloss_torch");
}
