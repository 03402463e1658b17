/* The RoI head (model/roi_head.h). Without arguments: parameter names as
 * torchvision's, settings checks, the training sample (quotas, images
 * without GT, more GT than the quota, degenerate and off-image boxes,
 * reproducible draws), losses without RoIs or positives, decode by hand,
 * bad RoIs. With --oracle (its own test, exit 77 without torch): a
 * randomly initialised torchvision RoIHeads (TwoMLPHead, 4conv1fc with and
 * without GroupNorm) saved as safetensors and loaded here; box-head
 * outputs, the labels and targets of our sampled RoIs, fastrcnn_loss and
 * its gradients, and postprocess_detections must agree (1e-4 of the
 * peak). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/ops.h"
#include "model/roi_head.h"
#include "model/safetensors.h"

enum { NIMG = 3, CH = 32, IMG_H = 96, IMG_W = 128, NLEV = 4, NROI = 48 };

typedef struct {
  const char *what, *box_head;
  int K, rep, cc, gn;
  float s0;
  int k0;
} Case;

static KdLevels levels4(void) {
  KdLevels lv;
  kd_levels_from_strides(&lv, NLEV, (int[]){4, 8, 16, 32});
  return lv;
}

static KdRoiHead *make(const Case *k, KdParams **p, KdError *err) {
  KdRoiHeadCfg cfg;
  kd_roi_head_cfg_default(&cfg);
  cfg.num_classes = k->K, cfg.representation = k->rep, cfg.conv_channels = k->cc, cfg.conv_gn = k->gn;
  snprintf(cfg.box_head, sizeof cfg.box_head, "%s", k->box_head);
  cfg.pool.canonical_scale = k->s0, cfg.pool.canonical_level = k->k0;
  cfg.batch_per_image = 64;
  *p = kd_params_new();
  KdLevels lv = levels4();
  KdRoiHead *h = kd_roi_head_new(&cfg, CH, &lv, *p, err);
  if (h && kd_params_finalize(*p, err)) kd_roi_head_free(h), h = NULL;
  return h;
}

/* ---- scene: GT, proposals around it, RoIs, features ---- */

typedef struct {
  float gt[NIMG][16 * 4];
  int labels[NIMG][16], crowd[NIMG][16];
  KdGtImage g[NIMG];
  float props[NIMG * 80 * 4];
  int nprops[NIMG];
  float rois[NROI * 5];
} Scene;

static void scene(Scene *s, KdRng *r, int K) {
  static const int ngt[NIMG] = {4, 0, 7};
  memset(s, 0, sizeof *s);
  for (int i = 0; i < NIMG; i++) {
    for (int j = 0; j < ngt[i]; j++) {
      float w = kd_rng_range(r, 8, 70), h = kd_rng_range(r, 8, 60), *b = s->gt[i] + 4 * j;
      b[0] = kd_rng_range(r, 0, IMG_W - w), b[1] = kd_rng_range(r, 0, IMG_H - h), b[2] = b[0] + w, b[3] = b[1] + h;
      s->labels[i][j] = (int)kd_rng_below(r, (uint32_t)K);
    }
    s->g[i] = (KdGtImage){s->gt[i], s->labels[i], NULL, ngt[i]};
    /* half jittered GT (positives), half anywhere, some off the image */
    s->nprops[i] = 60 + 10 * i;
    for (int k = 0; k < s->nprops[i]; k++) {
      float *b = s->props + 4 * (i * 80 + k);
      if (ngt[i] && k % 2 == 0) {
        const float *q = s->gt[i] + 4 * (k / 2 % ngt[i]);
        float w = q[2] - q[0], h = q[3] - q[1];
        for (int c = 0; c < 4; c++) b[c] = q[c] + kd_rng_range(r, -0.15f, 0.15f) * (c % 2 ? h : w);
      } else {
        float w = kd_rng_range(r, 4, 90), h = kd_rng_range(r, 4, 80);
        b[0] = kd_rng_range(r, -20, IMG_W - 10), b[1] = kd_rng_range(r, -20, IMG_H - 10), b[2] = b[0] + w, b[3] = b[1] + h;
      }
    }
  }
  for (int k = 0; k < NROI; k++) { /* grouped by image, as torchvision concatenates them */
    float *q = s->rois + 5 * k;
    q[0] = (float)(k * NIMG / NROI);
    memcpy(q + 1, s->props + 4 * ((int)q[0] * 80 + k % 50), 4 * sizeof(float));
  }
}

static KdTensor *feature(KdCtx *c, KdRng *r, int l) {
  KdTensor *x = kd_tensor4(c, NIMG, CH, IMG_H >> (2 + l), IMG_W >> (2 + l));
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_normal(r);
  x->requires_grad = 1;
  return x;
}

/* ---- without torch ---- */

static void test_names(void) {
  static const char *const mlp[] = {"roi_heads.box_head.fc6.weight", "roi_heads.box_head.fc6.bias",
                                    "roi_heads.box_head.fc7.weight", "roi_heads.box_head.fc7.bias",
                                    "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
                                    "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias"};
  KdError err;
  KdParams *p;
  KdRoiHead *h = make(&(Case){"", "twomlp", 3, 40, 0, 0, 224, 4}, &p, &err);
  CHECK_MSG(h != NULL, "%s", err.msg);
  CHECK(kd_params_count(p) == 8);
  for (int i = 0; i < 8 && h; i++) CHECK_MSG(!strcmp(kd_params_at(p, i)->name, mlp[i]), "%s", kd_params_at(p, i)->name);
  const KdTensor *fc6 = kd_params_find(p, "roi_heads.box_head.fc6.weight");
  const KdTensor *bb = kd_params_find(p, "roi_heads.box_predictor.bbox_pred.weight");
  CHECK(fc6 && fc6->shape[0] == 40 && fc6->shape[1] == CH * 49 && bb && bb->shape[0] == 16 && bb->shape[1] == 40);
  kd_roi_head_free(h), kd_params_free(p);
  /* FastRCNNConvFCHead: blocks 0..3 (conv, then GN as .1), Linear at 5 */
  h = make(&(Case){"", "4conv1fc", 2, 24, 32, 1, 224, 4}, &p, &err);
  CHECK_MSG(h != NULL, "%s", err.msg);
  CHECK(kd_params_find(p, "roi_heads.box_head.0.0.weight") && !kd_params_find(p, "roi_heads.box_head.0.0.bias"));
  CHECK(kd_params_find(p, "roi_heads.box_head.3.1.weight") && kd_params_find(p, "roi_heads.box_head.3.1.bias"));
  const KdTensor *fc = kd_params_find(p, "roi_heads.box_head.5.weight");
  CHECK(fc && fc->shape[0] == 24 && fc->shape[1] == 32 * 49 && kd_params_count(p) == 4 + 8 + 2 + 4);
  kd_roi_head_free(h), kd_params_free(p);
  h = make(&(Case){"", "4conv1fc", 2, 24, 16, 0, 224, 4}, &p, &err);
  CHECK(h && kd_params_find(p, "roi_heads.box_head.2.0.bias") && kd_params_count(p) == 8 + 2 + 4);
  kd_roi_head_free(h), kd_params_free(p);
}

#define BAD_CFG(stmt, field)                                                                          \
  do {                                                                                                \
    kd_roi_head_cfg_default(&cfg);                                                                    \
    stmt;                                                                                             \
    CHECK_MSG(kd_roi_head_cfg_check(&cfg, &err) == -1 && strstr(err.msg, field), "%s: %s", field, err.msg); \
  } while (0)

static void test_cfg(void) {
  KdRoiHeadCfg cfg;
  KdError err;
  kd_roi_head_cfg_default(&cfg);
  CHECK(kd_roi_head_cfg_check(&cfg, &err) == 0);
  CHECK(cfg.batch_per_image == 512 && cfg.pos_fraction == 0.25f && cfg.box_weights[2] == 5.0f && cfg.pool.out_size == 7);
  CHECK(cfg.pool.sampling_ratio == 2 && cfg.pool.canonical_scale == 224 && cfg.representation == 1024);
  BAD_CFG(cfg.num_classes = 0, "roi.num_classes");
  BAD_CFG(strcpy(cfg.box_head, "mlp3"), "roi.box_head");
  BAD_CFG(cfg.representation = 0, "roi.representation");
  BAD_CFG((strcpy(cfg.box_head, "4conv1fc"), cfg.conv_gn = 1, cfg.conv_channels = 48), "roi.conv_gn");
  BAD_CFG(cfg.bg_iou = 0.6f, "roi.bg_iou");
  BAD_CFG(cfg.batch_per_image = 0, "roi.batch_per_image");
  BAD_CFG(cfg.pos_fraction = 0, "roi.pos_fraction");
  BAD_CFG(cfg.box_weights[3] = -1, "roi.box_weights[3]");
  BAD_CFG(cfg.score_thresh = 1, "roi.score_thresh");
  BAD_CFG(cfg.detections_per_img = 0, "roi.detections_per_img");
  BAD_CFG(cfg.pool.canonical_scale = -5, "roi.canonical_scale");
  /* the levels must be consecutive */
  KdParams *p = kd_params_new();
  KdLevels lv;
  kd_levels_from_strides(&lv, 2, (int[]){8, 32});
  kd_roi_head_cfg_default(&cfg);
  CHECK(kd_roi_head_new(&cfg, CH, &lv, p, &err) == NULL && strstr(err.msg, "consecutive"));
  kd_params_free(p);
}

/* Decoding a sampled RoI's target on the RoI gives its GT box back. */
static void check_targets(const KdRoiSample *s, const Scene *sc) {
  KdBoxCoder bc = {10, 10, 5, 5, kd_box_coder_default().clip};
  for (int k = 0; k < s->nrois; k++) {
    const int img = (int)s->rois[5 * k], m = s->matched[k], l = s->labels[k];
    for (int j = 0; j < 4; j++) CHECK(isfinite(s->targets[4 * k + j]));
    CHECK((m < 0) == (l == 0));
    if (m < 0) continue;
    CHECK(m < sc->g[img].n && l == sc->g[img].labels[m] + 1);
    float b[4];
    kd_box_decode(&bc, s->rois + 5 * k + 1, s->targets + 4 * k, b);
    for (int j = 0; j < 4; j++) CHECK_NEAR(b[j], sc->g[img].boxes[4 * m + j], 1e-3);
  }
}

static void test_sample(void) {
  KdError err;
  KdParams *p;
  KdRoiHead *h = make(&(Case){"", "twomlp", 5, 16, 0, 0, 224, 4}, &p, &err);
  KdCtx *c = kd_ctx_new(8 << 20);
  KdRng r;
  kd_rng_seed(&r, 1, 1);
  Scene sc;
  scene(&sc, &r, 5);
  KdRoiSample s, s2;
  kd_rng_seed(&r, 7, 7);
  CHECK_MSG(kd_roi_head_sample(h, c, sc.props, sc.nprops, 80, sc.g, NIMG, &r, &s, &err) == 0, "%s", err.msg);
  /* at most 64 a image, at most 16 positives; image 1 has no GT: 64 of its 70 proposals, background */
  int pos[NIMG] = {0}, tot[NIMG] = {0}, gt_in = 0;
  for (int k = 0; k < s.nrois; k++) {
    int img = (int)s.rois[5 * k];
    CHECK(k == 0 || img >= (int)s.rois[5 * (k - 1)]);
    tot[img]++, pos[img] += s.labels[k] > 0;
    for (int j = 0; j < sc.g[img].n; j++) gt_in += !memcmp(s.rois + 5 * k + 1, sc.g[img].boxes + 4 * j, 16);
  }
  for (int i = 0; i < NIMG; i++) CHECK(tot[i] == s.count[i] && tot[i] <= 64 && pos[i] <= 16);
  CHECK(tot[1] == 64 && pos[1] == 0 && pos[0] > 0 && pos[2] == 16 && gt_in > 0);
  CHECK(s.num_pos == pos[0] + pos[2]);
  check_targets(&s, &sc);
  printf("sample: %d RoIs (%d/%d/%d positive), %d of them GT boxes\n", s.nrois, pos[0], pos[1], pos[2], gt_in);
  /* the same seed draws the same RoIs */
  kd_rng_seed(&r, 7, 7);
  CHECK(kd_roi_head_sample(h, c, sc.props, sc.nprops, 80, sc.g, NIMG, &r, &s2, &err) == 0);
  CHECK(s2.nrois == s.nrois && !memcmp(s.rois, s2.rois, (size_t)s.nrois * 20) && !memcmp(s.labels, s2.labels, (size_t)s.nrois * 4));
  /* more GT than the quota, 8 of them degenerate (background: they
   * overlap nothing), no proposals at all: 16 of 32 positives, 8 negatives */
  float many[40 * 4];
  int ml[40];
  for (int j = 0; j < 40; j++) {
    float *b = many + 4 * j;
    b[0] = (float)(3 * j % 100), b[1] = (float)(7 * j % 80), b[2] = b[0] + 10 + j % 7, b[3] = b[1] + (j % 5 ? 12 : 0);
    ml[j] = j % 5;
  }
  KdGtImage g[2] = {{many, ml, NULL, 40}, {NULL, NULL, NULL, 0}};
  int np[2] = {0, 0};
  CHECK(kd_roi_head_sample(h, c, NULL, np, 0, g, 2, &r, &s, &err) == 0);
  CHECK(s.count[0] == 24 && s.count[1] == 0 && s.num_pos == 16);
  for (int k = 0; k < s.nrois * 4; k++) CHECK(isfinite(s.targets[k]));
  /* bad labels and counts name the image */
  ml[3] = 5;
  CHECK(kd_roi_head_sample(h, c, NULL, np, 0, g, 2, &r, &s, &err) == -1 && strstr(err.msg, "image 0 box 3"));
  ml[3] = 0;
  np[1] = 3;
  CHECK(kd_roi_head_sample(h, c, NULL, np, 0, g, 2, &r, &s, &err) == -1 && strstr(err.msg, "image 1 has 3"));
  kd_ctx_free(c);
  kd_roi_head_free(h), kd_params_free(p);
}

/* Losses stay finite and defined without RoIs, without positives, and on
 * RoIs outside the image. */
static void test_loss_edges(void) {
  KdError err;
  KdParams *p;
  KdRoiHead *h = make(&(Case){"", "twomlp", 3, 16, 0, 0, 224, 4}, &p, &err);
  KdRng r;
  kd_rng_seed(&r, 2, 2);
  kd_roi_head_init(h, &r);
  KdCtx *c = kd_ctx_new(8 << 20);
  KdTensor *f[NLEV];
  for (int l = 0; l < NLEV; l++) f[l] = feature(c, &r, l);
  KdRoiSample none = {0};
  KdTensor *lc, *lb, *cls, *box;
  CHECK(kd_roi_head_loss(h, c, NULL, NULL, &none, &lc, &lb, &err) == 0 && lc->data[0] == 0 && lb->data[0] == 0);
  /* background only, RoIs partly or wholly off the image, one degenerate */
  float rois[4 * 5] = {0, -50, -40, -10, -5, 1, 100, 80, 300, 200, 2, 10, 10, 10, 30, 0, -5, -5, 200, 200};
  int labels[4] = {0, 0, 0, 0};
  float targets[16] = {0};
  KdRoiSample s = {.nrois = 4, .rois = rois, .labels = labels, .targets = targets};
  CHECK(kd_roi_head_forward(h, c, f, rois, 4, &cls, &box, NULL, &err) == 0);
  CHECK(kd_roi_head_loss(h, c, cls, box, &s, &lc, &lb, &err) == 0);
  CHECK(isfinite(lc->data[0]) && lc->data[0] > 0 && lb->data[0] == 0);
  CHECK(kd_backward(c, kd_add(c, lc, lb)) == 0);
  double gs = 0;
  for (int l = 0; l < NLEV; l++)
    for (size_t i = 0; i < f[l]->numel; i++) gs += f[l]->grad ? fabs(f[l]->grad[i]) : 0;
  CHECK(isfinite(gs) && gs > 0);
  /* a wrong label is an error, not a read out of bounds */
  labels[2] = 4;
  CHECK(kd_roi_head_loss(h, c, cls, box, &s, &lc, &lb, &err) == -1 && strstr(err.msg, "RoI 2 has label 4"));
  kd_ctx_free(c);
  kd_roi_head_free(h), kd_params_free(p);
}

/* Decode by hand: zero deltas give the RoI (clipped), the arg-max class,
 * background and low scores dropped, overlapping boxes of one class
 * suppressed, other classes kept. */
static void test_decode(void) {
  KdError err;
  KdParams *p;
  KdRoiHead *h = make(&(Case){"", "twomlp", 2, 8, 0, 0, 224, 4}, &p, &err);
  float rois[4 * 5] = {0, 10, 10, 50, 50, 0, 12, 12, 52, 52, 1, -10, 20, 40, 150, 0, 60, 60, 60, 90};
  float cls[4 * 3] = {0, 5, 0, 0, 4, 0, 0, 0, 6, 0, 9, 0}, box[4 * 12] = {0};
  float wh[4] = {128, 96, 128, 96};
  KdDetection out[2 * 100];
  int count[2];
  CHECK(kd_roi_head_decode(h, cls, box, rois, 4, 2, wh, out, count, &err) == 0);
  CHECK(count[0] == 1 && count[1] == 1);
  CHECK(out[0].label == 0 && out[0].x1 == 10 && out[0].x2 == 50 && out[0].score > 0.9f);
  CHECK(out[100].label == 1 && out[100].x1 == 0 && out[100].y2 == 96);
  /* RoI 3 is empty: every class drops as a small box; RoI 1 is suppressed by RoI 0 */
  rois[5] = 3;
  CHECK(kd_roi_head_decode(h, cls, box, rois, 4, 2, wh, out, count, &err) == -1 && strstr(err.msg, "RoI 1 names image 3"));
  CHECK(kd_roi_head_decode(h, NULL, NULL, NULL, 0, 2, wh, out, count, &err) == 0 && count[0] == 0 && count[1] == 0);
  kd_roi_head_free(h), kd_params_free(p);
}

/* ---- against torchvision ---- */

/* Named arrays for one safetensors file. */
typedef struct {
  int n;
  const char *names[16];
  const float *data[16];
  int ndims[16];
  int shapes[16][4];
} Arrays;

static void put(Arrays *a, const char *name, const float *data, int ndim, const int *shape) {
  a->names[a->n] = name, a->data[a->n] = data, a->ndims[a->n] = ndim;
  memcpy(a->shapes[a->n], shape, (size_t)ndim * sizeof(int));
  a->n++;
}

/* An output of the oracle as floats (malloc'd), NULL (and a failed
 * check) when absent or of another size; want 0 takes any size. */
static float *get(KdSafetensors *st, const char *name, size_t want, size_t *n) {
  int i = kd_safetensors_find(st, name);
  size_t m = i >= 0 ? kd_safetensors_numel(st, i) : 0;
  CHECK_MSG(i >= 0 && (!want || m == want), "oracle output %s: %zu values, expected %zu", name, m, want);
  if (i < 0 || (want && m != want)) return NULL;
  float *v = malloc((m ? m : 1) * sizeof *v);
  KdError err;
  if (kd_safetensors_read_f32(st, name, v, m, &err)) {
    CHECK_MSG(0, "%s", err.msg);
    free(v);
    return NULL;
  }
  if (n) *n = m;
  return v;
}

/* max|ours - torchvision| <= tol * max(1e-3, max|torchvision|). */
static void compare(KdSafetensors *st, const char *what, const char *name, const float *ours, size_t n, double tol) {
  float *ref = get(st, name, n, NULL);
  if (!ref) return;
  double peak = 1e-3, err = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) peak = fmax(peak, fabs(ref[i]));
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)ours[i] - ref[i]);
    if (e > err || e != e) err = e, at = i;
  }
  printf("  %-10s %-44s %7zu values  max|diff|/peak %.2e\n", what, name, n, err / peak);
  CHECK_MSG(err <= tol * peak, "%s %s[%zu]: ours %.8g torchvision %.8g (peak %.3g)", what, name, at, ours[at], ref[at], peak);
  free(ref);
}

typedef struct {
  char in[64], w[64], out[64];
  KdParams *p;
  KdRoiHead *h;
  KdTensor *f[NLEV];
  KdRoiSample s;
  Scene sc;
} Job;

static int prepare(Job *j, const Case *k, KdCtx *c, KdRng *r) {
  KdError err;
  j->h = make(k, &j->p, &err);
  CHECK_MSG(j->h != NULL, "%s", err.msg);
  if (!j->h) return -1;
  scene(&j->sc, r, k->K);
  for (int l = 0; l < NLEV; l++) j->f[l] = feature(c, r, l);
  CHECK_MSG(kd_roi_head_sample(j->h, c, j->sc.props, j->sc.nprops, 80, j->sc.g, NIMG, r, &j->s, &err) == 0, "%s", err.msg);
  float *lab = kd_ctx_alloc(c, (size_t)j->s.nrois * 2 * sizeof(float)), *mat = lab + j->s.nrois;
  for (int i = 0; i < j->s.nrois; i++) lab[i] = (float)j->s.labels[i], mat[i] = (float)j->s.matched[i];
  float *gtb = kd_ctx_alloc(c, 64 * 4 * sizeof(float)), *gtl = kd_ctx_alloc(c, 64 * sizeof(float)), cnt[NIMG];
  int G = 0;
  for (int i = 0; i < NIMG; i++) {
    cnt[i] = (float)j->sc.g[i].n;
    for (int m = 0; m < j->sc.g[i].n; m++, G++)
      memcpy(gtb + 4 * G, j->sc.g[i].boxes + 4 * m, 16), gtl[G] = (float)j->sc.g[i].labels[m];
  }
  float meta[12] = {(float)k->K, (float)k->rep, (float)!strcmp(k->box_head, "4conv1fc"), (float)k->cc, (float)k->gn,
                    NLEV, IMG_H, IMG_W, k->s0, (float)k->k0, NIMG, 5};
  Arrays a = {0};
  static const char *const fn[NLEV] = {"feat0", "feat1", "feat2", "feat3"};
  put(&a, "meta", meta, 1, (int[]){12});
  for (int l = 0; l < NLEV; l++) put(&a, fn[l], j->f[l]->data, 4, j->f[l]->shape);
  put(&a, "rois", j->sc.rois, 2, (int[]){NROI, 5});
  put(&a, "sample_rois", j->s.rois, 2, (int[]){j->s.nrois, 5});
  put(&a, "sample_labels", lab, 1, &j->s.nrois);
  put(&a, "sample_matched", mat, 1, &j->s.nrois);
  put(&a, "gt_boxes", gtb, 2, (int[]){G, 4});
  put(&a, "gt_labels", gtl, 1, &G);
  put(&a, "gt_count", cnt, 1, (int[]){NIMG});
  snprintf(j->in, sizeof j->in, "/tmp/kd_roi_in_XXXXXX");
  snprintf(j->w, sizeof j->w, "/tmp/kd_roi_w_XXXXXX");
  snprintf(j->out, sizeof j->out, "/tmp/kd_roi_out_XXXXXX");
  close(mkstemp(j->in)), close(mkstemp(j->w)), close(mkstemp(j->out));
  CHECK_MSG(kd_safetensors_write(j->in, a.n, a.names, a.data, a.ndims, (const int(*)[4])a.shapes, NULL, &err) == 0, "%s",
            err.msg);
  return 0;
}

/* Detections of torchvision's logits, decoded here, against its own. */
static void compare_decode(Job *j, KdSafetensors *st, const float *cls, const float *box) {
  float wh[2 * NIMG];
  for (int i = 0; i < NIMG; i++) wh[2 * i] = IMG_W, wh[2 * i + 1] = IMG_H;
  KdDetection *out = malloc(NIMG * 100 * sizeof *out);
  int count[NIMG], total = 0;
  double worst_box = 0, worst_score = 0;
  KdError err;
  CHECK_MSG(kd_roi_head_decode(j->h, cls, box, j->sc.rois, NROI, NIMG, wh, out, count, &err) == 0, "%s", err.msg);
  for (int i = 0; i < NIMG; i++) {
    char nm[16];
    snprintf(nm, sizeof nm, "ndet%d", i);
    float *nd = get(st, nm, 1, NULL);
    CHECK_MSG(nd && (int)nd[0] == count[i], "image %d: %d detections, torchvision %g", i, count[i], nd ? nd[0] : -1);
    if (nd && nd[0] > 0 && (int)nd[0] == count[i]) {
      snprintf(nm, sizeof nm, "det%d", i);
      float *ref = get(st, nm, (size_t)count[i] * 6, NULL);
      for (int d = 0; ref && d < count[i]; d++) {
        const KdDetection *o = &out[i * 100 + d];
        const float *q = ref + 6 * d, mine[5] = {o->x1, o->y1, o->x2, o->y2, o->score};
        for (int v = 0; v < 4; v++) worst_box = fmax(worst_box, fabs(mine[v] - q[v]));
        worst_score = fmax(worst_score, fabs(mine[4] - q[4]));
        CHECK_MSG(fabs(mine[0] - q[0]) + fabs(mine[1] - q[1]) + fabs(mine[2] - q[2]) + fabs(mine[3] - q[3]) <= 1e-3 &&
                      fabs(mine[4] - q[4]) <= 1e-5,
                  "image %d det %d: (%g %g %g %g) %g, torchvision (%g %g %g %g) %g", i, d, mine[0], mine[1], mine[2],
                  mine[3], mine[4], q[0], q[1], q[2], q[3], q[4]);
        CHECK_MSG(o->label == (int)q[5] - 1, "image %d det %d: label %d, torchvision %g", i, d, o->label, q[5]);
      }
      free(ref);
    }
    free(nd);
    total += count[i];
  }
  printf("  decode     %d detections (%d/%d/%d) as torchvision's: boxes within %.2g px, scores %.2g\n", total,
         count[0], count[1], count[2], worst_box, worst_score);
  CHECK(total > 3);
  free(out);
}

static void check_job(Job *j, const Case *k, KdCtx *c) {
  KdError err;
  printf("%s\n", k->what);
  CHECK_MSG(kd_safetensors_load(j->w, j->p, 1, &err) == 0, "%s", err.msg);
  KdSafetensors *st = kd_safetensors_open(j->out, &err);
  CHECK_MSG(st != NULL, "%s", err.msg);
  if (!st) return;
  const int K1 = k->K + 1;
  /* the head on given RoIs */
  KdTensor *cls, *box;
  int g = kd_ctx_set_grad(c, 0);
  CHECK(kd_roi_head_forward(j->h, c, j->f, j->sc.rois, NROI, &cls, &box, NULL, &err) == 0);
  kd_ctx_set_grad(c, g);
  compare(st, "forward", "cls", cls->data, (size_t)NROI * K1, 1e-4);
  compare(st, "forward", "box", box->data, (size_t)NROI * 4 * K1, 1e-4);
  float *tcls = get(st, "cls", (size_t)NROI * K1, NULL), *tbox = get(st, "box", (size_t)NROI * 4 * K1, NULL);
  if (tcls && tbox) compare_decode(j, st, tcls, tbox);
  free(tcls), free(tbox);
  /* the sample's labels and (positive) targets as torchvision assigns them */
  const KdRoiSample *s = &j->s;
  float *lab = get(st, "labels", (size_t)s->nrois, NULL), *tg = get(st, "targets", (size_t)s->nrois * 4, NULL);
  int bad = 0;
  for (int i = 0; lab && tg && i < s->nrois; i++) {
    bad += (int)lab[i] != s->labels[i];
    for (int v = 0; s->labels[i] > 0 && v < 4; v++) bad += !(fabs(tg[4 * i + v] - s->targets[4 * i + v]) <= 1e-4);
  }
  CHECK_MSG(lab && tg && bad == 0, "%d labels/targets of the sampled RoIs differ from torchvision's", bad);
  printf("  sample     %d RoIs, %d positive: labels and targets as torchvision's\n", s->nrois, s->num_pos);
  free(lab), free(tg);
  /* fastrcnn_loss and its gradients */
  kd_params_zero_grad(j->p);
  KdTensor *lc, *lb;
  CHECK(kd_roi_head_forward(j->h, c, j->f, s->rois, s->nrois, &cls, &box, NULL, &err) == 0);
  CHECK(kd_roi_head_loss(j->h, c, cls, box, s, &lc, &lb, &err) == 0);
  CHECK(kd_backward(c, kd_add(c, lc, lb)) == 0);
  compare(st, "loss", "loss_cls", lc->data, 1, 1e-5);
  compare(st, "loss", "loss_box", lb->data, 1, 1e-5);
  char nm[96];
  for (int l = 0; l < NLEV; l++) {
    snprintf(nm, sizeof nm, "grad.feat%d", l);
    compare(st, "gradient", nm, j->f[l]->grad, j->f[l]->numel, 1e-4);
  }
  for (int i = 0; i < kd_params_count(j->p); i++) {
    const KdTensor *t = kd_params_at(j->p, i);
    snprintf(nm, sizeof nm, "grad.%s", t->name);
    compare(st, "gradient", nm, t->grad, t->numel, 1e-4);
  }
  kd_safetensors_close(st);
}

static int test_torch(void) {
  const char *root = getenv("KD_SOURCE_ROOT");
  if (access("/usr/bin/python3", X_OK) != 0 || !root) {
    printf("oracle: /usr/bin/python3 or KD_SOURCE_ROOT missing\n");
    return 77;
  }
  static const Case cases[] = {
      {"TwoMLPHead, 3 classes, canonical scale 48", "twomlp", 3, 40, 0, 0, 48, 4},
      {"4conv1fc with GroupNorm, 2 classes, canonical 32 at level 3", "4conv1fc", 2, 24, 32, 1, 32, 3},
      {"4conv1fc with conv bias, 4 classes, default mapper", "4conv1fc", 4, 20, 16, 0, 224, 4},
  };
  enum { NC = sizeof cases / sizeof cases[0] };
  KdCtx *c = kd_ctx_new(64 << 20);
  KdRng r;
  kd_rng_seed(&r, 21, 2);
  Job jobs[NC];
  char cmd[2048];
  int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model/roi_head_ref.py", root);
  memset(jobs, 0, sizeof jobs);
  for (int i = 0; i < NC; i++) {
    if (prepare(&jobs[i], &cases[i], c, &r)) return 1;
    len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s %s %s", jobs[i].in, jobs[i].w, jobs[i].out);
  }
  int st = system(cmd), rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  CHECK_MSG(rc == 0 || rc == 77, "oracle failed (%d)", rc);
  for (int i = 0; i < NC && rc == 0; i++) check_job(&jobs[i], &cases[i], c);
  kd_ctx_free(c); /* its tape holds the heads' parameters */
  for (int i = 0; i < NC; i++) {
    unlink(jobs[i].in), unlink(jobs[i].w), unlink(jobs[i].out);
    kd_roi_head_free(jobs[i].h), kd_params_free(jobs[i].p);
  }
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--oracle")) return check_oracle_status("test_roi_head", test_torch());
  test_names();
  test_cfg();
  test_sample();
  test_loss_edges();
  test_decode();
  return check_status("test_roi_head");
}
