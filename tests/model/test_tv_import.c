/* kdscope import (engine/model/tv_import.c, app/cli_import.c).
 *
 * Without torch: kdscope's own detectors saved under torchvision's names
 * (ResNet-10/18/34/50/101, P2/P3 first, P6/P7 from P5 or C5, max pool,
 * GroupNorm head, Faster R-CNN) are inferred back to their config and load
 * bit for bit; older torchvision names, a DataParallel prefix and
 * num_batches_tracked are normalised; bad inputs name the tensor: a
 * classification checkpoint, a missing tensor, a wrong shape, an unused
 * tensor, a truncated file, an --arch that disagrees; the verb writes a
 * config + checkpoint that load as kdscope eval loads them, with classes
 * sliced to a list of ids.
 *
 * --oracle (exit 77 without torch/torchvision): random torchvision
 * retinanet_resnet50_fpn and a ResNet-18-width-64 RetinaNet exported with
 * tools/export_torchvision.py, imported with the verb, run at 512x512 and
 * 320x480: FPN features, head outputs and final detections against
 * torchvision's (tests/model/tv_import_oracle.py); the ResNet-18 one
 * imported with 5 of its 91 classes; a ResNet-18-width-64 Faster R-CNN
 * (FPN and RPN outputs, final detections at 512x512 and 384x512); and
 * architecture inference on every detection builder of the installed
 * torchvision; data.resize=torchvision against torchvision's transform.
 * A COCO folder through import + eval against torchvision's whole model.
 * A third argument runs one case (r50, r18, frcnn, variants, image, folder, folder_wide). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/config.h"
#include "core/rng.h"
#include "data/transform.h"
#include "model/detector.h"
#include "model/safetensors.h"
#include "model/tv_import.h"
#include "parity.h"
#include "train/checkpoint.h"
#include "train/session.h"
#include "train/settings.h"

static const char *kdscope;
static char tmpdir[256];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- torch-free ---- */

typedef struct {
  const char *what, *kind;
  int depth, first, extra_levels, gn;
  KdExtraKind extra;
  KdBnMode bn;
} Build;

static KdModel *build(const Build *b, KdError *err) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  snprintf(mc.head.kind, sizeof mc.head.kind, "%s", b->kind);
  mc.backbone = (KdBackboneCfg){.depth = b->depth, .width = 16, .bn = b->bn};
  mc.neck = (KdNeckCfg){.channels = 32, .first_level = b->first, .extra_levels = b->extra_levels, .extra = b->extra};
  mc.head.gn = b->gn, mc.head.convs = 2, mc.head.num_classes = 7;
  mc.head.roi.representation = 64;
  KdModel *m = kd_model_new(&mc, 11, err);
  KdRng r;
  kd_rng_seed(&r, 4, 4);
  if (m) parity_perturb_norms(kd_model_params(m), &r); /* statistics that differ from the init's */
  return m;
}

/* Writes the store's tensors under names given by rename (NULL: drop it). */
static int save_renamed(const char *path, KdParams *p, const char *(*rename)(const char *, char *), KdError *err) {
  int n = kd_params_count(p), k = 0, ok;
  const char **names = calloc((size_t)n + 1, sizeof *names);
  const float **data = calloc((size_t)n + 1, sizeof *data);
  int *ndims = calloc((size_t)n + 1, sizeof *ndims);
  int(*shapes)[4] = calloc((size_t)n + 1, sizeof *shapes);
  char(*buf)[192] = calloc((size_t)n + 1, sizeof *buf);
  for (int i = 0; i < n; i++) {
    KdTensor *t = kd_params_at(p, i);
    const char *nm = rename ? rename(t->name, buf[k]) : t->name;
    if (!nm) continue;
    names[k] = nm, data[k] = t->data, ndims[k] = t->ndim;
    for (int d = 0; d < t->ndim; d++) shapes[k][d] = t->shape[d];
    k++;
  }
  ok = kd_safetensors_write(path, k, names, data, ndims, (const int(*)[4])shapes, NULL, err);
  free(names), free(data), free(ndims), free(shapes), free(buf);
  return ok;
}

static int same_cfg(const KdModelCfg *a, const KdModelCfg *b) {
  return a->backbone.depth == b->backbone.depth && a->backbone.width == b->backbone.width && a->backbone.bn == b->backbone.bn &&
         a->neck.channels == b->neck.channels && a->neck.first_level == b->neck.first_level &&
         a->neck.extra_levels == b->neck.extra_levels && (a->neck.extra_levels == 0 || a->neck.extra == b->neck.extra) &&
         !strcmp(a->head.kind, b->head.kind) && a->head.num_classes == b->head.num_classes &&
         (strcmp(a->head.kind, "retinanet") || (a->head.gn == b->head.gn && a->head.convs == b->head.convs));
}

/* Import of a file into a fresh model of the inferred config; returns the
 * model (NULL with err) and fills arch. */
static KdModel *import_file(const char *path, KdTvArch *a, const int *keep, int nkeep, KdError *err) {
  KdTvImport *t = kd_tv_open(path, err);
  if (!t) return NULL;
  KdModel *m = NULL;
  if (!kd_tv_infer(t, a, err)) {
    KdModelCfg mc = a->model;
    if (keep) mc.head.num_classes = nkeep;
    m = kd_model_new(&mc, 0, err);
    if (m && kd_tv_load(t, a, keep, nkeep, kd_model_params(m), err)) kd_model_free(m), m = NULL;
  }
  kd_tv_close(t);
  return m;
}

static int bit_equal(KdParams *a, KdParams *b) {
  if (kd_params_count(a) != kd_params_count(b)) return 0;
  for (int i = 0; i < kd_params_count(a); i++) {
    KdTensor *x = kd_params_at(a, i), *y = kd_params_find(b, x->name);
    if (!y || y->numel != x->numel || memcmp(x->data, y->data, x->numel * sizeof(float))) return 0;
  }
  return 1;
}

static void roundtrip_builds(void) {
  static const Build builds[] = {
      {"ResNet-18, P3..P7 from P5", "retinanet", 18, 3, 2, 0, KD_EXTRA_P6P7_P5, KD_BN_EVAL},
      {"ResNet-10, P3..P5, GN head", "retinanet", 10, 3, 0, 1, KD_EXTRA_P6P7_P5, KD_BN_EVAL},
      {"ResNet-34, P3..P6 from C5", "retinanet", 34, 3, 1, 0, KD_EXTRA_P6P7_C5, KD_BN_EVAL},
      {"ResNet-50, P3..P7 from C5, GN head", "retinanet", 50, 3, 2, 1, KD_EXTRA_P6P7_C5, KD_BN_EVAL},
      {"ResNet-101, P3..P7 from P5", "retinanet", 101, 3, 2, 0, KD_EXTRA_P6P7_P5, KD_BN_EVAL},
      {"ResNet-18, Faster R-CNN P2..P6 (max pool)", "faster_rcnn", 18, 2, 1, 0, KD_EXTRA_MAXPOOL, KD_BN_EVAL},
  };
  for (size_t i = 0; i < sizeof builds / sizeof builds[0]; i++) {
    KdError err;
    KdModel *m = build(&builds[i], &err);
    CHECK_MSG(m != NULL, "%s: %s", builds[i].what, err.msg);
    if (!m) continue;
    char path[300];
    snprintf(path, sizeof path, "%s/b%zu.safetensors", tmpdir, i);
    /* kdscope's store has no num_batches_tracked: torchvision's frozen BN */
    CHECK(kd_safetensors_save(path, kd_model_params(m), NULL, &err) == 0);
    KdTvArch a;
    KdModel *g = import_file(path, &a, NULL, 0, &err);
    CHECK_MSG(g != NULL, "%s: %s", builds[i].what, err.msg);
    if (g) {
      KdModelCfg want = *kd_model_cfg(m);
      want.backbone.bn = KD_BN_FROZEN;
      CHECK_MSG(same_cfg(&a.model, &want), "%s: inferred %s (depth %d, first P%d, %d extra, gn %d)", builds[i].what, a.name,
                a.model.backbone.depth, a.model.neck.first_level, a.model.neck.extra_levels, a.model.head.gn);
      CHECK_MSG(bit_equal(kd_model_params(m), kd_model_params(g)), "%s: tensors differ after import", builds[i].what);
      printf("  %-44s -> %s\n", builds[i].what, a.name);
    }
    kd_model_free(g);
    kd_model_free(m);
    unlink(path);
  }
}

/* Older torchvision's names, a DataParallel prefix, plus counters. */
static const char *old_names(const char *nm, char *buf) {
  int i, n = 0;
  const char *fpn = "backbone.fpn.inner_blocks.", *tow = "head.classification_head.conv.", *reg = "head.regression_head.conv.";
  if (!strncmp(nm, fpn, strlen(fpn)) && sscanf(nm + strlen(fpn), "%d.0.%n", &i, &n) == 1 && n)
    snprintf(buf, 192, "module.%s%d.%s", fpn, i, nm + strlen(fpn) + n);
  else if (!strncmp(nm, tow, strlen(tow)) && sscanf(nm + strlen(tow), "%d.0.%n", &i, &n) == 1 && n)
    snprintf(buf, 192, "%s%d.%s", tow, 2 * i, nm + strlen(tow) + n);
  else if (!strncmp(nm, reg, strlen(reg)) && sscanf(nm + strlen(reg), "%d.0.%n", &i, &n) == 1 && n)
    snprintf(buf, 192, "%s%d.%s", reg, 2 * i, nm + strlen(reg) + n);
  else
    snprintf(buf, 192, "%s", nm);
  return buf;
}

static const char *drop_one(const char *nm, char *buf) {
  (void)buf;
  return strcmp(nm, "backbone.body.layer2.1.conv2.weight") ? nm : NULL;
}

static void expect_error(const char *what, const char *path, const char *arch, const char *needle) {
  KdError err = {0};
  KdTvArch a;
  KdModel *m = import_file(path, &a, NULL, 0, &err);
  int archbad = 0;
  if (m && arch) archbad = kd_tv_check_arch(&a, arch, &err) != 0;
  CHECK_MSG((!m || archbad) && strstr(err.msg, needle), "%s: expected an error naming %s, got: %s", what, needle,
            m && !archbad ? "success" : err.msg);
  printf("  %-22s %s\n", what, err.msg);
  kd_model_free(m);
}

static void bad_inputs(void) {
  KdError err;
  Build b = {"r18", "retinanet", 18, 3, 2, 0, KD_EXTRA_P6P7_P5, KD_BN_EVAL};
  KdModel *m = build(&b, &err);
  CHECK(m != NULL);
  if (!m) return;
  KdParams *p = kd_model_params(m);
  char path[300];
  snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);

  /* old names + counters: imported, renamed, dropped, same values */
  CHECK(save_renamed(path, p, old_names, &err) == 0);
  KdTvArch a;
  KdModel *g = import_file(path, &a, NULL, 0, &err);
  CHECK_MSG(g && a.renamed == 2 * 3 + 2 * 2 * 2, /* weight + bias of 3 FPN inner convs and 2 convs of each tower */ "old names: %s (renamed %d)", g ? "imported" : err.msg, g ? a.renamed : -1);
  if (g) CHECK(bit_equal(p, kd_model_params(g)));
  kd_model_free(g);

  /* a classification ResNet */
  {
    const char *names[2] = {"conv1.weight", "fc.weight"};
    static float w[64 * 3 * 49], fc[1000 * 512];
    const float *data[2] = {w, fc};
    int nd[2] = {4, 2}, sh[2][4] = {{64, 3, 7, 7}, {1000, 512}};
    CHECK(kd_safetensors_write(path, 2, names, data, nd, (const int(*)[4])sh, NULL, &err) == 0);
    expect_error("classification", path, NULL, "fc.weight [1000, 512]");
  }
  CHECK(save_renamed(path, p, drop_one, &err) == 0);
  expect_error("missing tensor", path, NULL, "backbone.body.layer2.1.conv2.weight missing");

  /* a wrong shape: the class logits of another anchor count */
  KdTensor *cl = kd_params_find(p, "head.classification_head.cls_logits.weight");
  int keep0 = cl->shape[1];
  cl->shape[1] = 16; /* as if the FPN were 16 wide */
  CHECK(save_renamed(path, p, NULL, &err) == 0);
  cl->shape[1] = keep0;
  expect_error("wrong shape", path, NULL, "head.classification_head.cls_logits.weight");

  /* a tensor the model does not have */
  {
    KdParams *q = kd_params_new();
    int s1[1] = {4};
    for (int i = 0; i < kd_params_count(p); i++) {
      KdTensor *t = kd_params_at(p, i);
      kd_params_add(q, t->name, t->ndim, t->shape, kd_params_kind(p, i));
    }
    kd_params_add(q, "roi_heads.mask_predictor.mask_fcn_logits.bias", 1, s1, KD_PARAM_TRAIN);
    CHECK(kd_params_finalize(q, &err) == 0);
    CHECK(kd_safetensors_save(path, q, NULL, &err) == 0);
    kd_params_free(q);
    expect_error("unused tensor", path, NULL, "roi_heads.mask_predictor.mask_fcn_logits.bias is in the file but not in");
  }

  /* truncated */
  CHECK(kd_safetensors_save(path, p, NULL, &err) == 0);
  struct stat sb;
  stat(path, &sb);
  CHECK(truncate(path, sb.st_size - 1000) == 0);
  expect_error("truncated", path, NULL, path);

  /* --arch that disagrees */
  CHECK(kd_safetensors_save(path, p, NULL, &err) == 0);
  expect_error("--arch mismatch", path, "retinanet_resnet50_fpn_v2", "ResNet-18 width 16");
  unlink(path);
  kd_model_free(m);
}

/* Loads DIR's config + checkpoint as kdscope eval does. */
static KdModel *load_imported(const char *dir, KdConfig **cfg_out) {
  char cp[400], wp[400];
  snprintf(cp, sizeof cp, "%s/config.json", dir);
  snprintf(wp, sizeof wp, "%s/model.safetensors", dir);
  KdError err;
  KdConfig *cfg = kd_config_new();
  KdModelCfg mc;
  KdModel *m = NULL;
  int ok = cfg && !kd_settings_register_all(cfg) && !kd_config_load_file(cfg, cp, &err) && !kd_settings_model(cfg, &mc, &err);
  CHECK_MSG(ok, "%s: %s", cp, err.msg);
  if (ok) m = kd_model_new(&mc, 0, &err);
  KdParams *st = m ? kd_model_params(m) : NULL;
  CHECK_MSG(m && kd_checkpoint_load(wp, &st, 1, 1, &err) == 0, "%s: %s", wp, err.msg);
  *cfg_out = cfg;
  return m;
}

static int run_cmd(const char *cmd) {
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The verb on a kdscope-built file, with classes 2 and 5 of its 7 kept. */
static void verb(void) {
  KdError err;
  Build b = {"r18", "retinanet", 18, 3, 2, 0, KD_EXTRA_P6P7_P5, KD_BN_EVAL};
  KdModel *m = build(&b, &err);
  char in[300], ids[300], out[300], cmd[1400];
  snprintf(in, sizeof in, "%s/verb.safetensors", tmpdir);
  snprintf(ids, sizeof ids, "%s/ids.txt", tmpdir);
  snprintf(out, sizeof out, "%s/verb", tmpdir);
  CHECK(m && kd_safetensors_save(in, kd_model_params(m), NULL, &err) == 0);
  FILE *f = fopen(ids, "w");
  fputs("# two classes\n2\n5\n", f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s import --in %s --classes %s --out %s --set eval.max_dets=50", kdscope, in, ids, out);
  CHECK(run_cmd(cmd) == 0);
  KdConfig *cfg = NULL;
  KdModel *g = load_imported(out, &cfg);
  if (g) {
    CHECK(kd_model_cfg(g)->head.num_classes == 2 && kd_config_int(cfg, "eval.max_dets") == 50);
    KdTensor *src = kd_params_find(kd_model_params(m), "head.classification_head.cls_logits.bias"),
             *dst = kd_params_find(kd_model_params(g), "head.classification_head.cls_logits.bias");
    int rows_ok = 1;
    for (int an = 0; an < 9; an++)
      rows_ok &= dst->data[an * 2] == src->data[an * 7 + 2] && dst->data[an * 2 + 1] == src->data[an * 7 + 5];
    CHECK_MSG(rows_ok, "class rows a*K0+id not kept");
  }
  /* an id outside the file's classes */
  f = fopen(ids, "w");
  fputs("7\n", f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s import --in %s --classes %s --out %s 2>/dev/null", kdscope, in, ids, out);
  CHECK(run_cmd(cmd) == 1);
  kd_config_free(cfg);
  kd_model_free(g);
  kd_model_free(m);
  snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", out, in, ids);
  run_cmd(cmd);
}

/* data.resize=torchvision by hand: sizes (torch's float32 scale: 200 px
 * to 256 gives 255), top-left placement, zero padding, the box transform
 * both ways, and a 1:1 case that is the normalisation alone. */
static void resize_by_hand(void) {
  KdImageCfg ic;
  kd_image_cfg_default(&ic);
  ic.resize = KD_RESIZE_TORCHVISION, ic.min_size = 256, ic.max_size = 400, ic.size = 384;
  KdError err;
  CHECK(kd_image_cfg_check(&ic, &err) == 0);
  KdXform t = kd_xform_make(&ic, 300, 200, 0);
  CHECK_MSG(lroundf(t.sx * 300) == 383 && lroundf(t.sy * 200) == 255 && t.ox == 0 && t.oy == 0, "300x200 -> %ldx%ld at (%g, %g)",
            lroundf(t.sx * 300), lroundf(t.sy * 200), (double)t.ox, (double)t.oy);
  t = kd_xform_make(&ic, 400, 120, 0); /* the long side limits (400/400), then the 384 square: 384x115 */
  CHECK_MSG(lroundf(t.sx * 400) == 384 && lroundf(t.sy * 120) == 115, "400x120 -> %ldx%ld", lroundf(t.sx * 400), lroundf(t.sy * 120));
  float box[4] = {10, 20, 110, 70}, in[4], back[4];
  t = kd_xform_make(&ic, 300, 200, 0);
  kd_xform_boxes_to_input(&t, box, in, 1);
  kd_xform_boxes_to_orig(&t, in, back, 1);
  CHECK(fabsf(in[0] - 10 * 383.f / 300) < 1e-4f && fabsf(in[3] - 70 * 255.f / 200) < 1e-4f && fabsf(back[2] - 110) < 1e-4f);
  ic.min_size = ic.max_size = 64, ic.size = 96;
  KdImage im = {.w = 64, .h = 64, .file_w = 64, .file_h = 64, .rgb = malloc(64 * 64 * 3), .cap = 64 * 64 * 3};
  for (int i = 0; i < 64 * 64 * 3; i++) im.rgb[i] = (uint8_t)(i * 7);
  float *dst = malloc(3 * 96 * 96 * sizeof(float));
  KdPrepScratch scr = {0};
  CHECK(kd_image_prepare(&ic, &im, 64, 64, NULL, dst, &t, &scr, &err) == 0);
  double worst = 0, pad = 0;
  for (int k = 0; k < 3; k++)
    for (int y = 0; y < 96; y++)
      for (int x = 0; x < 96; x++) {
        float v = dst[(k * 96 + y) * 96 + x];
        if (x < 64 && y < 64)
          worst = fmax(worst, fabs(v - (im.rgb[(y * 64 + x) * 3 + k] / 255.f - ic.mean[k]) / ic.std[k]));
        else
          pad = fmax(pad, fabs(v));
      }
  CHECK_MSG(worst < 1e-5 && pad == 0, "1:1 torchvision resize: worst %.3g, padding %.3g", worst, pad);
  printf("  300x200 -> 383x255, 400x120 -> 384x115 (fits the square), 1:1 normalisation only (worst %.2g), padding 0\n", worst);
  kd_prep_scratch_free(&scr);
  free(dst), free(im.rgb);
}

/* ---- against torchvision ---- */

/* Our detections against torchvision's: every torchvision detection has
 * one of ours of its label with the box within tol of the image side and
 * the score within tol; counts equal. */
static void compare_dets(KdSafetensors *st, const KdDetection *d, int n, float side, const int *label_map) {
  int D = kd_safetensors_find(st, "det.scores");
  size_t nd = D >= 0 ? kd_safetensors_numel(st, D) : 0;
  float *boxes = malloc((nd * 4 + 1) * sizeof(float)), *scores = malloc((nd + 1) * sizeof(float)),
        *labels = malloc((nd + 1) * sizeof(float));
  KdError err;
  CHECK(kd_safetensors_read_f32(st, "det.boxes", boxes, nd * 4, &err) == 0);
  CHECK(kd_safetensors_read_f32(st, "det.scores", scores, nd, &err) == 0);
  CHECK(kd_safetensors_read_f32(st, "det.labels", labels, nd, &err) == 0);
  int matched = 0;
  double worst_box = 0, worst_score = 0;
  for (size_t i = 0; i < nd; i++) {
    int best = -1;
    double bd = 1e30;
    for (int j = 0; j < n; j++) {
      int lab = label_map ? label_map[d[j].label] : d[j].label;
      if (lab != (int)labels[i]) continue;
      double e = fmax(fmax(fabs(d[j].x1 - boxes[4 * i]), fabs(d[j].y1 - boxes[4 * i + 1])),
                      fmax(fabs(d[j].x2 - boxes[4 * i + 2]), fabs(d[j].y2 - boxes[4 * i + 3])));
      e = fmax(e / side, fabs(d[j].score - scores[i]));
      if (e < bd) bd = e, best = j;
    }
    if (best >= 0 && bd < 1e-3) {
      matched++;
      worst_box = fmax(worst_box, bd);
      worst_score = fmax(worst_score, fabs(d[best].score - scores[i]));
    }
  }
  /* the last few places can swap with near-equal scores at the 300 cut */
  CHECK_MSG(nd > 0 && matched >= (int)nd - 2 && abs(n - (int)nd) <= 2, "detections: %d of torchvision's %zu matched, we have %d",
            matched, nd, n);
  CHECK_MSG(worst_box <= 1e-4, "detections: worst box/score difference %.3g", worst_box);
  printf("  %-16s %d of torchvision's %zu matched (ours %d), worst |box| / side or |score| %.2g, |score| %.2g\n", "detections",
         matched, nd, n, worst_box, worst_score);
  free(boxes), free(scores), free(labels);
}

typedef struct {
  const char *name, *arch;
  const char *classes; /* ids kept, or NULL */
  const char *sizes[2];
  int two_stage;       /* Faster R-CNN: RPN outputs, labels 1..K */
} TorchCase;

/* ours against torchvision's selected rows, relative to their peak */
static void compare_rows(const char *nm, const float *want, const float *ours, size_t n, double tol) {
  double peak = 0, worst = 0;
  for (size_t i = 0; i < n; i++) peak = fmax(peak, fabs(want[i]));
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(want[i] - ours[i]) / (peak + 1e-12));
  CHECK_MSG(worst <= tol, "%s: worst difference %.3g of the peak %.3g", nm, worst, peak);
  printf("  %-16s max |ours - torchvision rows a*91+id| / peak = %.2g\n", nm, worst);
}

/* The import of DIR/model.safetensors (classes: keep, or all) against the
 * oracle's outputs at both sizes. */
static void compare_import(const char *dir, const TorchCase *k, const int *keep, int nkeep, const char *ids) {
  const char *const *sizes = k->sizes;
  char cmd[2000], imp[450];
  snprintf(imp, sizeof imp, "%s/imp%d", dir, nkeep);
  snprintf(cmd, sizeof cmd, "%s import --in %s/model.safetensors --out %s%s%s%s%s >/dev/null", kdscope, dir, imp,
           k->arch ? " --arch " : "", k->arch ? k->arch : "", nkeep ? " --classes " : "", nkeep ? ids : "");
  double t1 = now();
  CHECK_MSG(run_cmd(cmd) == 0, "%s failed", cmd);
  printf(" import%s %.2f s\n", nkeep ? " with 5 classes kept" : "", now() - t1);
  KdConfig *cfg = NULL;
  KdModel *m = load_imported(imp, &cfg);
  for (int s = 0; m && s < 2; s++) {
    char path[500];
    KdError err;
    snprintf(path, sizeof path, "%s/in_%s.safetensors", dir, sizes[s]);
    KdSafetensors *in = kd_safetensors_open(path, &err);
    snprintf(path, sizeof path, "%s/out_%s.safetensors", dir, sizes[s]);
    KdSafetensors *out = kd_safetensors_open(path, &err);
    CHECK(in && out);
    if (!in || !out) {
      kd_safetensors_close(in), kd_safetensors_close(out);
      break;
    }
    int shape[4], nd;
    kd_safetensors_shape(in, 0, shape, &nd);
    KdCtx *c = kd_ctx_new(256u << 20);
    kd_ctx_set_grad(c, 0);
    KdTensor *x = kd_tensor4(c, 1, 3, shape[2], shape[3]);
    CHECK(kd_safetensors_read_f32(in, "input", x->data, x->numel, &err) == 0);
    double f0 = now();
    KdDetOut o;
    CHECK(kd_model_forward(m, c, x, 0, &o) == 0);
    printf(" %s (our forward %.2f s)\n", sizes[s], now() - f0);
    KdTensor *const *cls = kd_det_out(&o, k->two_stage ? "objectness" : "cls"),
                    *const *box = kd_det_out(&o, k->two_stage ? "rpn_box" : "box");
    for (int l = 0; l < o.nlev; l++) {
      char nm[32];
      snprintf(nm, sizeof nm, "feat.%s", o.levels->name[l]);
      parity_tensor(out, nm, o.feat[l], 1e-4);
      if (k->two_stage) {
        snprintf(nm, sizeof nm, "obj.%s", o.levels->name[l]);
        parity_tensor(out, nm, cls[l], 1e-4);
        snprintf(nm, sizeof nm, "rpn_box.%s", o.levels->name[l]);
        parity_tensor(out, nm, box[l], 1e-4);
        continue;
      }
      snprintf(nm, sizeof nm, "box.%s", o.levels->name[l]);
      parity_tensor(out, nm, box[l], 1e-4);
      snprintf(nm, sizeof nm, "cls.%s", o.levels->name[l]);
      if (!nkeep) {
        parity_tensor(out, nm, cls[l], 1e-4);
        continue;
      }
      /* torchvision's rows a*91+id against ours a*nkeep+i */
      int fi = kd_safetensors_find(out, nm), K0 = 91, hw = cls[l]->shape[2] * cls[l]->shape[3];
      size_t n0 = kd_safetensors_numel(out, fi);
      float *all = malloc(n0 * sizeof(float)), *sel = malloc(cls[l]->numel * sizeof(float));
      CHECK(kd_safetensors_read_f32(out, nm, all, n0, &err) == 0);
      for (int an = 0; an < 9; an++)
        for (int i = 0; i < nkeep; i++)
          memcpy(sel + (size_t)(an * nkeep + i) * (size_t)hw, all + (size_t)(an * K0 + keep[i]) * (size_t)hw, (size_t)hw * sizeof(float));
      compare_rows(nm, sel, cls[l]->data, cls[l]->numel, 1e-4);
      free(all), free(sel);
    }
    if (!nkeep) {
      KdPostCfg pc;
      CHECK(kd_settings_post(cfg, &pc, &err) == 0);
      KdDetection *d = malloc(sizeof *d * (size_t)pc.max_det);
      int count = 0;
      float wh[2] = {(float)shape[3], (float)shape[2]};
      CHECK_MSG(kd_model_decode(m, &o, &pc, 1, wh, d, &count, &err) == 0, "%s", err.msg);
      int map[1001]; /* our contiguous label -> torchvision's (Faster R-CNN: 0 is the background) */
      for (int i = 0; i < 1001; i++) map[i] = i + k->two_stage;
      compare_dets(out, d, count, (float)(shape[2] > shape[3] ? shape[2] : shape[3]), map);
      free(d);
    }
    kd_ctx_free(c);
    kd_safetensors_close(in);
    kd_safetensors_close(out);
  }
  kd_config_free(cfg);
  kd_model_free(m);
}

/* tv_import_oracle.py CASE in tmpdir/CASE (into dir) with extra args;
 * returns its status (77: no torch). */
static int run_oracle(const char *root, const char *kase, const char *args, char *dir, size_t len) {
  char cmd[1500];
  snprintf(dir, len, "%s/%s", tmpdir, kase);
  mkdir(dir, 0777);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model/tv_import_oracle.py %s %s %s", root, kase, dir, args);
  int rc = run_cmd(cmd);
  if (rc != 77) CHECK_MSG(rc == 0, "oracle %s failed (%d)", kase, rc);
  return rc;
}

static int torch_case(const char *root, const TorchCase *k) {
  char dir[400], cmd[2000], args[64];
  printf("%s\n", k->name);
  double t0 = now();
  snprintf(args, sizeof args, "%s %s", k->sizes[0], k->sizes[1]);
  int rc = run_oracle(root, k->name, args, dir, sizeof dir);
  if (rc == 77) return 77;
  printf(" oracle (torchvision model, export, outputs) %.1f s\n", now() - t0);
  compare_import(dir, k, NULL, 0, NULL);
  if (k->classes) {
    int keep[16], nkeep = 0;
    char ids[500];
    snprintf(ids, sizeof ids, "%s/ids.txt", dir);
    FILE *f = fopen(ids, "w");
    for (const char *p = k->classes; *p && nkeep < 16;) {
      char *e;
      keep[nkeep++] = (int)strtol(p, &e, 10);
      fprintf(f, "%d\n", keep[nkeep - 1]);
      p = *e ? e + 1 : e;
    }
    fclose(f);
    compare_import(dir, k, keep, nkeep, ids);
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run_cmd(cmd);
  return 1;
}

/* data.resize=torchvision against GeneralizedRCNNTransform's resize and
 * normalisation on RGB8 images (up, down, limited by max_size); the
 * padding of our square input is zero, as torchvision's batch padding. */
static int images(const char *root) {
  char dir[400], cmd[1000];
  int rc = run_oracle(root, "image", "", dir, sizeof dir);
  if (rc == 77) return 77;
  printf("data.resize=torchvision against GeneralizedRCNNTransform\n");
  for (int i = 0; i < 3; i++) {
    char path[500];
    KdError err;
    snprintf(path, sizeof path, "%s/image_%d.safetensors", dir, i);
    KdSafetensors *st = kd_safetensors_open(path, &err);
    CHECK_MSG(st != NULL, "%s", err.msg);
    if (!st) break;
    int rs[4], ts[4], nd;
    float cfgv[2];
    kd_safetensors_shape(st, kd_safetensors_find(st, "rgb"), rs, &nd);
    kd_safetensors_shape(st, kd_safetensors_find(st, "tv"), ts, &nd);
    size_t nrgb = (size_t)rs[0] * rs[1] * 3, ntv = (size_t)ts[0] * ts[1] * ts[2];
    float *rgbf = malloc(nrgb * sizeof(float)), *tv = malloc(ntv * sizeof(float));
    CHECK(kd_safetensors_read_f32(st, "rgb", rgbf, nrgb, &err) == 0 && kd_safetensors_read_f32(st, "tv", tv, ntv, &err) == 0 &&
          kd_safetensors_read_f32(st, "cfg", cfgv, 2, &err) == 0);
    KdImage im = {.w = rs[1], .h = rs[0], .file_w = rs[1], .file_h = rs[0], .rgb = malloc(nrgb), .cap = nrgb};
    for (size_t j = 0; j < nrgb; j++) im.rgb[j] = (uint8_t)rgbf[j];
    KdImageCfg ic;
    kd_image_cfg_default(&ic);
    ic.resize = KD_RESIZE_TORCHVISION, ic.min_size = (int)cfgv[0], ic.max_size = (int)cfgv[1];
    ic.size = ((ts[1] > ts[2] ? ts[1] : ts[2]) + 31) / 32 * 32;
    CHECK(kd_image_cfg_check(&ic, &err) == 0);
    int S = ic.size;
    float *dst = malloc((size_t)3 * S * S * sizeof(float));
    KdXform xf;
    KdPrepScratch scr = {0};
    CHECK(kd_image_prepare(&ic, &im, im.w, im.h, NULL, dst, &xf, &scr, &err) == 0);
    int cw = (int)lroundf(xf.sx * (float)im.w), ch = (int)lroundf(xf.sy * (float)im.h);
    CHECK_MSG(cw == ts[2] && ch == ts[1] && xf.ox == 0 && xf.oy == 0, "image %d: %dx%d at (%g, %g), torchvision %dx%d", i, cw, ch,
              (double)xf.ox, (double)xf.oy, ts[2], ts[1]);
    double worst = 0, pad = 0;
    for (int k = 0; k < 3; k++)
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
          float v = dst[((size_t)k * S + y) * S + x];
          if (y < ts[1] && x < ts[2] && cw == ts[2] && ch == ts[1])
            worst = fmax(worst, fabs(v - tv[((size_t)k * ts[1] + y) * ts[2] + x]));
          else if (y >= ch || x >= cw)
            pad = fmax(pad, fabs(v));
        }
    /* float weights there, double-built ones here: 3e-4 is 1/60 of one 8-bit level after /std */
    CHECK_MSG(worst <= 3e-4 && pad == 0, "image %d: worst %.3g, padding %.3g", i, worst, pad);
    printf("  %dx%d -> %dx%d (min %d, max %d) in %dx%d: max |ours - torchvision| = %.2g, padding 0\n", im.w, im.h, cw, ch,
           ic.min_size, ic.max_size, S, S, worst);
    kd_prep_scratch_free(&scr);
    free(dst), free(im.rgb), free(rgbf), free(tv);
    kd_safetensors_close(st);
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run_cmd(cmd);
  return 1;
}

/* A COCO-layout folder end to end: kdscope import, then kdscope eval
 * --dets-out at torchvision's resize against torchvision's whole model on
 * the same JPEGs (the oracle compares the COCO results). "folder": square
 * images at min = max = 256; "folder_wide": non-square ones at min 256,
 * max 384 in a 384 square input, which the evaluation runs image by image
 * at torchvision's own padding (a multiple of 32). */
static int folder(const char *root, const char *which, const char *sets) {
  char dir[400], cmd[3000];
  int rc = run_oracle(root, which, "", dir, sizeof dir);
  if (rc == 77) return 77;
  printf("a COCO folder (%s): kdscope eval against torchvision's model\n", which);
  snprintf(cmd, sizeof cmd, "%s import --in %s/model.safetensors --out %s/imp %s >/dev/null", kdscope, dir, dir, sets);
  CHECK(run_cmd(cmd) == 0);
  snprintf(cmd, sizeof cmd,
           "%s eval --config %s/imp/config.json --checkpoint %s/imp/model.safetensors --data %s/data --strict --dets-out "
           "%s/ours.json --json >/dev/null",
           kdscope, dir, dir, dir, dir);
  CHECK(run_cmd(cmd) == 0);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/model/tv_import_oracle.py check %s %s/ours.json", root, dir, dir);
  CHECK_MSG(run_cmd(cmd) == 0, "kdscope eval's detections differ from torchvision's");
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run_cmd(cmd);
  return 1;
}

/* Every detection builder of this torchvision: the supported ones are
 * inferred as themselves, the others refused naming what decided. */
static int variants(const char *root) {
  static const struct {
    const char *builder, *expect; /* the inferred name, or a piece of the error */
  } want[] = {
      {"retinanet_resnet50_fpn", "retinanet_resnet50_fpn"},
      {"retinanet_resnet50_fpn_v2", "retinanet_resnet50_fpn_v2"},
      {"fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn"},
      {"fasterrcnn_resnet50_fpn_v2", "backbone.fpn.inner_blocks.0.1.weight"},
      {"fasterrcnn_mobilenet_v3_large_fpn", "backbone.body.conv1.weight missing"},
      {"fasterrcnn_mobilenet_v3_large_320_fpn", "backbone.body.conv1.weight missing"},
      {"maskrcnn_resnet50_fpn", "roi_heads.mask_head"},
      {"maskrcnn_resnet50_fpn_v2", "backbone.fpn.inner_blocks.0.1.weight"},
      {"keypointrcnn_resnet50_fpn", "roi_heads.keypoint_head"},
      {"fcos_resnet50_fpn", "head.regression_head.bbox_ctrness.weight"},
      {"ssd300_vgg16", "backbone.body.conv1.weight missing"},
      {"ssdlite320_mobilenet_v3_large", "backbone.body.conv1.weight missing"},
  };
  char dir[400], cmd[1000], list[450];
  int rc = run_oracle(root, "variants", "", dir, sizeof dir);
  if (rc == 77) return 77;
  snprintf(list, sizeof list, "%s/variants.txt", dir);
  FILE *f = fopen(list, "r");
  char name[128], path[512];
  int seen = 0;
  printf("architecture inference on torchvision's builders\n");
  while (f && fscanf(f, "%127s %511s", name, path) == 2) {
    const char *expect = NULL;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
      if (!strcmp(want[i].builder, name)) expect = want[i].expect;
    CHECK_MSG(expect != NULL, "%s: a builder this test does not know: add what kdscope import must say", name);
    KdError err = {0};
    KdTvArch a;
    KdTvImport *t = kd_tv_open(path, &err);
    int ok = t && kd_tv_infer(t, &a, &err) == 0;
    /* a supported name must be inferred and must load (checking every shape) */
    if (ok && expect && !strcmp(a.name, expect)) {
      KdModel *m = kd_model_new(&a.model, 0, &err);
      ok = m && kd_tv_load(t, &a, NULL, 0, kd_model_params(m), &err) == 0;
      kd_model_free(m);
    }
    const char *said = ok ? a.name : err.msg;
    if (expect) CHECK_MSG(ok ? !strcmp(a.name, expect) : strstr(err.msg, expect) != NULL, "%s: expected %s, got %s", name, expect, said);
    printf("  %-38s %s\n", name, said);
    kd_tv_close(t);
    seen++;
  }
  if (f) fclose(f);
  CHECK(seen >= 3);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run_cmd(cmd);
  return 1;
}

int main(int argc, char **argv) {
  kdscope = argc > 1 ? argv[1] : NULL;
  int oracle = argc > 2 && !strcmp(argv[2], "--oracle");
  if (!kdscope) {
    fprintf(stderr, "usage: test_tv_import KDSCOPE [--oracle [CASE]]\n");
    return 1;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kd_tvi_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  int rc = 0;
  if (!oracle) {
    printf("kdscope builds under torchvision names, inferred back\n");
    roundtrip_builds();
    printf("bad inputs\n");
    bad_inputs();
    printf("the verb, classes sliced\n");
    verb();
    printf("data.resize=torchvision\n");
    resize_by_hand();
  } else {
    const char *root = getenv("KD_SOURCE_ROOT");
    if (access("/usr/bin/python3", X_OK) != 0 || !root) {
      printf("skipped: /usr/bin/python3 or KD_SOURCE_ROOT missing\n");
      rmdir(tmpdir);
      return 77;
    }
    static const TorchCase cases[] = {
        {"r50", "retinanet_resnet50_fpn", NULL, {"512x512", "320x480"}, 0},
        {"r18", NULL, "1,3,18,44,90", {"512x512", "320x480"}, 0},
        /* multiples of 64, the max-pool P6's stride: torchvision takes strides as image // feature */
        {"frcnn", NULL, NULL, {"512x512", "384x512"}, 1},
    };
    const char *only = argc > 3 ? argv[3] : NULL; /* one case: r50, r18, frcnn, variants, image, folder, folder_wide */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && rc != 77; i++)
      if (!only || !strcmp(only, cases[i].name)) rc = torch_case(root, &cases[i]);
    if (rc != 77 && (!only || !strcmp(only, "variants"))) rc = variants(root);
    if (rc != 77 && (!only || !strcmp(only, "image"))) rc = images(root);
    if (rc != 77 && (!only || !strcmp(only, "folder")))
      rc = folder(root, "folder", "--set data.size=256 --set data.min_size=256 --set data.max_size=256");
    if (rc != 77 && (!only || !strcmp(only, "folder_wide")))
      rc = folder(root, "folder_wide", "--set data.size=384 --set data.min_size=256 --set data.max_size=384");
  }
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  run_cmd(cmd);
  if (rc == 77) {
    printf("skipped: torch/torchvision not installed\n");
    return 77;
  }
  return check_status("tv_import");
}
