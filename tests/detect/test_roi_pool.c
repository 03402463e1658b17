/* Multi-scale RoI Align (detect/roi_pool.c): the level mapper on hand-made
 * boxes, the pooled rows against RoI Align on each level alone, bad
 * settings. With --oracle (its own test, exit 77 without torch): RoI
 * Align forward and input gradient against torchvision.ops.roi_align
 * (aligned 0/1, sampling 0/1/2, RoIs off the map, tiny, empty, reversed),
 * and multi-scale pooling against torchvision's MultiScaleRoIAlign with
 * the default and a non-default canonical scale, to 1e-5 of the peak. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "detect/roi_pool.h"
#include "oracle.h"

static const int k_strides[4] = {4, 8, 16, 32};

static void test_levels(void) {
  KdRoiPoolCfg cfg;
  kd_roi_pool_cfg_default(&cfg);
  /* sqrt(area) 111 -> floor(4 + log2(111/224)) = 2 (P2); 112 -> 3; 224 -> 4; 448 -> 5 */
  const struct {
    float side;
    int want;
  } cases[] = {{1, 0}, {111, 0}, {112, 1}, {223, 1}, {224, 2}, {447, 2}, {448, 3}, {5000, 3}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    float b[4] = {10, 20, 10 + cases[i].side, 20 + cases[i].side};
    CHECK_MSG(kd_roi_pool_level(&cfg, k_strides, 4, b) == cases[i].want, "side %g", cases[i].side);
  }
  float flat[4] = {5, 5, 5, 40}, reversed[4] = {50, 50, 10, 10}, wide[4] = {0, 0, 448, 112}; /* sqrt = 224 */
  CHECK(kd_roi_pool_level(&cfg, k_strides, 4, flat) == 0);
  CHECK(kd_roi_pool_level(&cfg, k_strides, 4, reversed) == 0);
  CHECK(kd_roi_pool_level(&cfg, k_strides, 4, wide) == 2);
  /* levels P3..P5 only: k_min = 3 */
  float small[4] = {0, 0, 8, 8};
  CHECK(kd_roi_pool_level(&cfg, k_strides + 1, 3, small) == 0);
  /* a canonical scale for 128 px inputs: 32 px at P4 */
  cfg.canonical_scale = 32;
  float b16[4] = {0, 0, 16, 16}, b15[4] = {0, 0, 15.9f, 16}, b64[4] = {0, 0, 64, 64};
  CHECK(kd_roi_pool_level(&cfg, k_strides, 4, b16) == 1);
  CHECK(kd_roi_pool_level(&cfg, k_strides, 4, b15) == 0);
  CHECK(kd_roi_pool_level(&cfg, k_strides, 4, b64) == 3);
}

static void test_bad(void) {
  KdError err;
  KdRoiPoolCfg cfg;
  kd_roi_pool_cfg_default(&cfg);
  CHECK(kd_roi_pool_cfg_check(&cfg, &err) == 0);
  cfg.canonical_scale = 0;
  CHECK(kd_roi_pool_cfg_check(&cfg, &err) == -1 && strstr(err.msg, "roi.canonical_scale"));
  kd_roi_pool_cfg_default(&cfg);
  cfg.out_size = 0;
  CHECK(kd_roi_pool_cfg_check(&cfg, &err) == -1 && strstr(err.msg, "roi.pool_size"));
  CHECK(kd_roi_pool_check_strides((int[]){4, 16}, 2, &err) == -1 && strstr(err.msg, "consecutive"));
  CHECK(kd_roi_pool_check_strides((int[]){6}, 1, &err) == -1 && strstr(err.msg, "power of two"));
  CHECK(kd_roi_pool_check_strides(k_strides, 4, &err) == 0);
  kd_roi_pool_cfg_default(&cfg);
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *f[2] = {kd_tensor_zeros(c, 4, (int[]){1, 2, 8, 8}), kd_tensor_zeros(c, 4, (int[]){1, 3, 4, 4})};
  const float roi[5] = {0, 0, 0, 8, 8};
  CHECK(kd_roi_pool(c, &cfg, f, k_strides, 2, roi, 1, NULL) == NULL && strstr(kd_ctx_error(c), "level 1"));
  kd_ctx_clear_error(c);
  CHECK(kd_roi_pool(c, &cfg, f, k_strides, 1, roi, 0, NULL) == NULL && strstr(kd_ctx_error(c), "0 RoIs"));
  kd_ctx_free(c);
}

/* n random RoIs of images 0..nimg-1, grouped by image, sides lo..hi px. */
static void random_rois(KdRng *r, float *rois, int n, int nimg, float img_w, float img_h, float lo, float hi) {
  for (int i = 0; i < n; i++) {
    float w = kd_rng_range(r, lo, hi), h = kd_rng_range(r, lo, hi);
    float x1 = kd_rng_range(r, -0.1f * img_w, img_w - 0.5f * w), y1 = kd_rng_range(r, -0.1f * img_h, img_h - 0.5f * h);
    float *q = rois + 5 * i;
    q[0] = (float)(i * nimg / n), q[1] = x1, q[2] = y1, q[3] = x1 + w, q[4] = y1 + h;
  }
}

static KdTensor *random_map(KdCtx *c, KdRng *r, int n, int ch, int h, int w) {
  KdTensor *x = kd_tensor4(c, n, ch, h, w);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_normal(r);
  x->requires_grad = 1;
  return x;
}

/* Every pooled row equals RoI Align of its level alone, bit for bit. */
static void test_rows(void) {
  KdRng r;
  kd_rng_seed(&r, 3, 3);
  KdCtx *c = kd_ctx_new(8 << 20);
  KdTensor *f[4];
  for (int l = 0; l < 4; l++) f[l] = random_map(c, &r, 2, 3, 32 >> l, 24 >> l);
  enum { R = 40 };
  float rois[R * 5], sub[R * 5];
  random_rois(&r, rois, R, 2, 96, 128, 3, 120);
  KdRoiPoolCfg cfg;
  kd_roi_pool_cfg_default(&cfg);
  cfg.canonical_scale = 40;
  int level[R], hist[4] = {0};
  KdTensor *y = kd_roi_pool(c, &cfg, f, k_strides, 4, rois, R, level);
  CHECK(y && y->shape[0] == R && y->shape[1] == 3 && y->shape[2] == 7 && y->shape[3] == 7);
  for (int l = 0; y && l < 4; l++) {
    int idx[R], m = 0;
    for (int i = 0; i < R; i++)
      if (level[i] == l) memcpy(sub + 5 * m, rois + 5 * i, 5 * sizeof(float)), idx[m++] = i;
    hist[l] = m;
    if (!m) continue;
    KdTensor *one = kd_roi_align(c, f[l], sub, m, 7, 7, 1.0f / (float)k_strides[l], 2, 0);
    const size_t row = 3 * 49;
    for (int j = 0; one && j < m; j++)
      CHECK_MSG(!memcmp(one->data + j * row, y->data + idx[j] * row, row * sizeof(float)), "RoI %d (level %d)", idx[j], l);
  }
  printf("roi_pool rows: %d %d %d %d RoIs on P2..P5 (canonical scale 40), each equal to its level's roi_align\n", hist[0],
         hist[1], hist[2], hist[3]);
  CHECK(hist[0] > 0 && hist[1] > 0 && hist[2] > 0 && hist[3] > 0);
  kd_ctx_free(c);
}

/* max|ours - ref| <= 1e-5 * max(1, max|ref|). */
static void compare(const char *what, const float *ours, const Oracle *o, const char *name, size_t n) {
  size_t m = 0;
  const double *ref = oracle_get(o, name, &m);
  CHECK_MSG(ref && m == n, "%s: %s has %zu values, expected %zu", what, name, m, n);
  if (!ref || m != n) return;
  double peak = 1, err = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) peak = fmax(peak, fabs(ref[i]));
  for (size_t i = 0; i < n; i++) {
    double e = fabs(ours[i] - ref[i]);
    if (e > err || e != e) err = e, at = i;
  }
  printf("  %-28s %-6s %7zu values  max|diff| %.2e (peak %.2f)\n", what, name, n, err, peak);
  CHECK_MSG(err <= 1e-5 * peak, "%s %s[%zu]: ours %.8g torchvision %.8g", what, name, at, ours[at], ref[at]);
}

/* RoIs that exercise the edges, appended to random ones (image pixels,
 * stride 4 on a 17x13 map of 68x52 px). */
static const float k_edge_rois[] = {
    1, -20, -12, 20, 16,  0, 50, 40, 90, 70, 1, 30, 30, 30.8f, 30.4f, 0, 10, 10, 10, 10,
    1, 40, 5, 20, 30,     0, -60, -60, -30, -30, 1, 0, 0, 68, 52,
};

enum { RA_JOBS = 6, RA_N = 2, RA_C = 4, RA_H = 13, RA_W = 17, RA_R = 33 };

typedef struct {
  int sr, aligned, oh, ow;
  KdTensor *y, *x;
  float *gx; /* x's gradient (the next backward clears step grads) */
} RaJob;

static float *keep_grad(KdCtx *c, const KdTensor *x) {
  float *g = kd_ctx_alloc(c, x->numel * sizeof(float));
  memcpy(g, x->grad, x->numel * sizeof(float));
  return g;
}

static void roi_align_job(KdCtx *c, KdRng *r, RaJob *j, Oracle *o, const float *rois) {
  j->x = random_map(c, r, RA_N, RA_C, RA_H, RA_W);
  j->y = kd_roi_align(c, j->x, rois, RA_R, j->oh, j->ow, 0.25f, j->sr, j->aligned);
  KdTensor *g = kd_tensor_like(c, j->y);
  for (size_t i = 0; i < g->numel; i++) g->data[i] = kd_rng_normal(r);
  CHECK(kd_backward(c, kd_sum_all(c, kd_mul(c, j->y, g))) == 0);
  j->gx = keep_grad(c, j->x);
  float meta[9] = {RA_N, RA_C, RA_H, RA_W, (float)j->oh, (float)j->ow, (float)j->sr, (float)j->aligned, 0.25f};
  oracle_f(o, "meta", meta, 9);
  oracle_f(o, "feat", j->x->data, j->x->numel);
  oracle_f(o, "rois", rois, RA_R * 5);
  oracle_f(o, "gout", g->data, g->numel);
}

enum { MS_N = 2, MS_C = 5, MS_R = 60 };

typedef struct {
  float s0;
  KdTensor *y, *f[4];
  float *gf[4];
  int level[MS_R];
} MsJob;

static void msroi_job(KdCtx *c, KdRng *r, MsJob *j, Oracle *o, const float *rois) {
  KdRoiPoolCfg cfg;
  kd_roi_pool_cfg_default(&cfg);
  cfg.canonical_scale = j->s0;
  int hw[8];
  for (int l = 0; l < 4; l++) {
    hw[2 * l] = 128 / k_strides[l], hw[2 * l + 1] = 96 / k_strides[l];
    j->f[l] = random_map(c, r, MS_N, MS_C, hw[2 * l], hw[2 * l + 1]);
  }
  j->y = kd_roi_pool(c, &cfg, j->f, k_strides, 4, rois, MS_R, j->level);
  KdTensor *g = kd_tensor_like(c, j->y);
  for (size_t i = 0; i < g->numel; i++) g->data[i] = kd_rng_normal(r);
  CHECK(kd_backward(c, kd_sum_all(c, kd_mul(c, j->y, g))) == 0);
  for (int l = 0; l < 4; l++) j->gf[l] = keep_grad(c, j->f[l]);
  float meta[9] = {MS_N, MS_C, 4, 128, 96, 7, 2, 4, j->s0};
  float hwf[8];
  for (int i = 0; i < 8; i++) hwf[i] = (float)hw[i];
  oracle_f(o, "meta", meta, 9);
  oracle_f(o, "hw", hwf, 8);
  char nm[16];
  for (int l = 0; l < 4; l++) {
    snprintf(nm, sizeof nm, "feat%d", l);
    oracle_f(o, nm, j->f[l]->data, j->f[l]->numel);
  }
  oracle_f(o, "rois", rois, MS_R * 5);
  oracle_f(o, "gout", g->data, g->numel);
}

static int test_torch(void) {
  KdRng r;
  kd_rng_seed(&r, 17, 4);
  KdCtx *c = kd_ctx_new(32 << 20);
  float ra_rois[RA_R * 5], ms_rois[MS_R * 5];
  const int nedge = (int)(sizeof k_edge_rois / sizeof k_edge_rois[0] / 5);
  random_rois(&r, ra_rois, RA_R - nedge, RA_N, 68, 52, 1, 50);
  memcpy(ra_rois + 5 * (RA_R - nedge), k_edge_rois, sizeof k_edge_rois);
  random_rois(&r, ms_rois, MS_R, MS_N, 96, 128, 3, 120);
  Oracle o[RA_JOBS + 2], *os[RA_JOBS + 2];
  const char *modes[RA_JOBS + 2];
  RaJob ra[RA_JOBS];
  MsJob ms[2] = {{.s0 = 224}, {.s0 = 48}};
  for (int i = 0; i < RA_JOBS; i++) {
    ra[i] = (RaJob){.sr = i % 3, .aligned = i / 3, .oh = i == 4 ? 3 : 7, .ow = i == 4 ? 4 : 7};
    CHECK(oracle_open(&o[i]) == 0);
    roi_align_job(c, &r, &ra[i], &o[i], ra_rois);
    os[i] = &o[i], modes[i] = "roialign";
  }
  for (int i = 0; i < 2; i++) {
    CHECK(oracle_open(&o[RA_JOBS + i]) == 0);
    msroi_job(c, &r, &ms[i], &o[RA_JOBS + i], ms_rois);
    os[RA_JOBS + i] = &o[RA_JOBS + i], modes[RA_JOBS + i] = "msroi";
  }
  CHECK(!kd_ctx_failed(c));
  int rc = oracle_run_many(os, modes, RA_JOBS + 2, "torch_ref.py");
  CHECK_MSG(rc == 0 || rc == 77, "oracle failed with status %d", rc);
  char what[64];
  for (int i = 0; rc == 0 && i < RA_JOBS; i++) {
    snprintf(what, sizeof what, "roi_align aligned%d sr%d %dx%d", ra[i].aligned, ra[i].sr, ra[i].oh, ra[i].ow);
    compare(what, ra[i].y->data, &o[i], "out", ra[i].y->numel);
    compare(what, ra[i].gx, &o[i], "grad", ra[i].x->numel);
  }
  for (int i = 0; rc == 0 && i < 2; i++) {
    const Oracle *q = &o[RA_JOBS + i];
    size_t m = 0;
    const double *lv = oracle_get(q, "level", &m);
    int diff = 0, hist[4] = {0};
    for (int k = 0; lv && k < MS_R; k++) diff += (int)lv[k] != ms[i].level[k], hist[ms[i].level[k]]++;
    CHECK_MSG(lv && m == MS_R && diff == 0, "s0 %g: %d levels differ from torchvision's LevelMapper", ms[i].s0, diff);
    snprintf(what, sizeof what, "multiscale s0 %g (%d/%d/%d/%d)", ms[i].s0, hist[0], hist[1], hist[2], hist[3]);
    compare(what, ms[i].y->data, q, "out", ms[i].y->numel);
    char nm[16];
    for (int l = 0; l < 4; l++) {
      snprintf(nm, sizeof nm, "grad%d", l);
      compare(what, ms[i].gf[l], q, nm, ms[i].f[l]->numel);
    }
  }
  for (int i = 0; i < RA_JOBS + 2; i++) oracle_close(&o[i]);
  kd_ctx_free(c);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return check_oracle_status("test_roi_pool", test_torch());
  test_levels();
  test_bad();
  test_rows();
  return check_status("test_roi_pool");
}
