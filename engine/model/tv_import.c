/* Importing torchvision detectors (tv_import.h). */
#include "model/tv_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN 192

struct KdTvImport {
  KdSafetensors *st;
  char path[1024];
  int n;                  /* tensors kept, after dropping num_batches_tracked */
  char (*name)[NAME_LEN]; /* normalised names */
  int *index;             /* their index in the file */
  int dropped, renamed, bn_counters_in_body;
};

static const struct {
  const char *name;
  const char *what;
} known[] = {
    {"retinanet_resnet50_fpn", "RetinaNet, ResNet-50, FPN 256 P3..P7 (P6/P7 from P5)"},
    {"retinanet_resnet50_fpn_v2", "RetinaNet, ResNet-50, FPN 256 P3..P7 (P6/P7 from C5), GroupNorm head"},
    {"fasterrcnn_resnet50_fpn", "Faster R-CNN, ResNet-50, FPN 256 P2..P6 (max pool), TwoMLPHead 1024"},
};

const char *kd_tv_known_archs(void) { return "retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2, fasterrcnn_resnet50_fpn"; }

/* ---- names ---- */

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* Older torchvision names into today's; returns 1 when renamed.
 * old_towers: the RetinaNet towers are Sequential(conv, ReLU, ...) (only
 * even indices; FCOS's conv, GroupNorm, ReLU has odd ones too). */
static int normalise(const char *in, char *out, size_t len, int old_towers) {
  if (!strncmp(in, "module.", 7)) in += 7;
  snprintf(out, len, "%s", in);
  int i, n = 0;
  /* FPN convs became Conv2dNormActivation (torchvision 0.13): x.i.weight -> x.i.0.weight */
  static const char *const fpn[] = {"backbone.fpn.inner_blocks.", "backbone.fpn.layer_blocks."};
  for (int k = 0; k < 2; k++) {
    size_t pl = strlen(fpn[k]);
    if (!strncmp(in, fpn[k], pl) && sscanf(in + pl, "%d.%n", &i, &n) == 1 && n > 0 &&
        (!strcmp(in + pl + n, "weight") || !strcmp(in + pl + n, "bias"))) {
      snprintf(out, len, "%s%d.0.%s", fpn[k], i, in + pl + n);
      return 1;
    }
  }
  /* RetinaNet towers were Sequential(conv, relu, ...): conv.2i.w -> conv.i.0.w */
  static const char *const tow[] = {"head.classification_head.conv.", "head.regression_head.conv."};
  for (int k = 0; k < 2 && old_towers; k++) {
    size_t pl = strlen(tow[k]);
    if (!strncmp(in, tow[k], pl) && sscanf(in + pl, "%d.%n", &i, &n) == 1 && n > 0 &&
        (!strcmp(in + pl + n, "weight") || !strcmp(in + pl + n, "bias"))) {
      snprintf(out, len, "%s%d.0.%s", tow[k], i / 2, in + pl + n);
      return 1;
    }
  }
  /* RPNHead's single conv became a list of Conv2dNormActivation (0.13) */
  if (!strcmp(in, "rpn.head.conv.weight") || !strcmp(in, "rpn.head.conv.bias")) {
    snprintf(out, len, "rpn.head.conv.0.0.%s", in + 14);
    return 1;
  }
  return 0;
}

KdTvImport *kd_tv_open(const char *path, KdError *err) {
  KdTvImport *t = calloc(1, sizeof *t);
  if (!t) return kd_error(err, "out of memory"), NULL;
  snprintf(t->path, sizeof t->path, "%s", path);
  t->st = kd_safetensors_open(path, err);
  if (!t->st) return free(t), NULL;
  int n = kd_safetensors_count(t->st);
  t->name = calloc((size_t)(n ? n : 1), sizeof *t->name);
  t->index = calloc((size_t)(n ? n : 1), sizeof *t->index);
  if (!t->name || !t->index) {
    kd_tv_close(t);
    return kd_error(err, "out of memory"), NULL;
  }
  int old_towers = 1;
  for (int i = 0; i < n; i++) {
    const char *nm = kd_safetensors_name(t->st, i);
    int k, m = 0;
    if (!strncmp(nm, "module.", 7)) nm += 7;
    if ((sscanf(nm, "head.classification_head.conv.%d.%n", &k, &m) == 1 ||
         sscanf(nm, "head.regression_head.conv.%d.%n", &k, &m) == 1) && m > 0 && (k % 2 || (nm[m] >= '0' && nm[m] <= '9')))
      old_towers = 0;
  }
  for (int i = 0; i < n; i++) {
    const char *nm = kd_safetensors_name(t->st, i);
    if (ends_with(nm, "num_batches_tracked")) {
      t->dropped++;
      t->bn_counters_in_body += !strncmp(nm, "backbone.body.", 14) || !strncmp(nm, "module.backbone.body.", 21);
      continue;
    }
    t->renamed += normalise(nm, t->name[t->n], NAME_LEN, old_towers);
    for (int j = 0; j < t->n; j++)
      if (!strcmp(t->name[j], t->name[t->n])) {
        kd_error(err, "%s: tensors \"%s\" and \"%s\" both mean \"%s\"", path, kd_safetensors_name(t->st, t->index[j]), nm,
                 t->name[j]);
        kd_tv_close(t);
        return NULL;
      }
    t->index[t->n++] = i;
  }
  return t;
}

void kd_tv_close(KdTvImport *t) {
  if (!t) return;
  kd_safetensors_close(t->st);
  free(t->name);
  free(t->index);
  free(t);
}

const char *kd_tv_meta_arch(const KdTvImport *t) {
  const char *a = kd_safetensors_meta(t->st, "arch");
  return a ? a : "";
}

static int find(const KdTvImport *t, const char *name) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->name[i], name)) return i;
  return -1;
}

/* Shape of a normalised name: ndim, or -1 when absent. */
/* The first name starting with prefix, or NULL. */
static const char *with_prefix(const KdTvImport *t, const char *prefix) {
  for (int i = 0; i < t->n; i++)
    if (!strncmp(t->name[i], prefix, strlen(prefix))) return t->name[i];
  return NULL;
}

static int shape_of(const KdTvImport *t, const char *name, int *shape) {
  int i = find(t, name), nd = 0;
  if (i < 0) return -1;
  shape[0] = shape[1] = shape[2] = shape[3] = 1;
  if (kd_safetensors_shape(t->st, t->index[i], shape, &nd)) return -1;
  return nd;
}

static int has(const KdTvImport *t, const char *fmt, int a) {
  char nm[NAME_LEN];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  snprintf(nm, sizeof nm, fmt, a);
#pragma GCC diagnostic pop
  return find(t, nm) >= 0;
}

static int count_blocks(const KdTvImport *t, const char *fmt) {
  int n = 0;
  while (n < 1000 && has(t, fmt, n)) n++;
  return n;
}

static const char *shape_str(const int *s, int nd, char *buf, size_t len) {
  int o = snprintf(buf, len, "[");
  for (int d = 0; d < nd && o < (int)len; d++) o += snprintf(buf + o, len - (size_t)o, d ? ", %d" : "%d", s[d]);
  snprintf(buf + (o < (int)len ? o : (int)len - 1), len - (size_t)(o < (int)len ? o : (int)len - 1), "]");
  return buf;
}

/* ---- architecture ---- */

static int infer_backbone(const KdTvImport *t, KdTvArch *a, KdError *err) {
  int s[4], nd = shape_of(t, "backbone.body.conv1.weight", s);
  char b[64];
  if (nd < 0) {
    if (find(t, "fc.weight") >= 0 && find(t, "conv1.weight") >= 0) {
      nd = shape_of(t, "fc.weight", s);
      return kd_error(err, "%s: a classification checkpoint (fc.weight %s, no backbone.body.conv1.weight): kdscope import needs "
                      "a detector's state_dict (RetinaNet or Faster R-CNN)", t->path, shape_str(s, nd, b, sizeof b));
    }
    return kd_error(err, "%s: backbone.body.conv1.weight missing: not a torchvision ResNet-FPN detector", t->path);
  }
  if (nd != 4 || s[1] != 3 || s[2] != 7 || s[3] != 7)
    return kd_error(err, "%s: backbone.body.conv1.weight is %s, expected [width, 3, 7, 7]", t->path, shape_str(s, nd, b, sizeof b));
  a->model.backbone.width = s[0];
  int bottleneck = has(t, "backbone.body.layer1.%d.conv3.weight", 0);
  int blocks[4];
  for (int k = 0; k < 4; k++) {
    char fmt[64];
    snprintf(fmt, sizeof fmt, "backbone.body.layer%d.%%d.conv1.weight", k + 1);
    blocks[k] = count_blocks(t, fmt);
    if (!blocks[k]) return kd_error(err, "%s: backbone.body.layer%d.0.conv1.weight missing (a ResNet has four stages)", t->path, k + 1);
  }
  static const struct {
    int depth, bottleneck, blocks[4];
  } depths[] = {{10, 0, {1, 1, 1, 1}}, {18, 0, {2, 2, 2, 2}}, {34, 0, {3, 4, 6, 3}}, {50, 1, {3, 4, 6, 3}}, {101, 1, {3, 4, 23, 3}}};
  a->model.backbone.depth = 0;
  for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++)
    if (depths[k].bottleneck == bottleneck && !memcmp(depths[k].blocks, blocks, sizeof blocks)) a->model.backbone.depth = depths[k].depth;
  if (!a->model.backbone.depth)
    return kd_error(err, "%s: a ResNet with %s blocks of %d, %d, %d, %d per stage (backbone.body.layer*.N.conv1.weight): kdscope "
                    "has ResNet-10/18/34 (basic) and 50/101 (bottleneck)", t->path, bottleneck ? "bottleneck" : "basic",
                    blocks[0], blocks[1], blocks[2], blocks[3]);
  a->frozen_bn = t->bn_counters_in_body == 0;
  a->model.backbone.bn = a->frozen_bn ? KD_BN_FROZEN : KD_BN_EVAL;
  return 0;
}

/* Output channels of stage k (0..3 = C2..C5). */
static int stage_channels(const KdTvArch *a, int k) {
  return a->model.backbone.width * (1 << k) * (a->model.backbone.depth >= 50 ? 4 : 1);
}

static int infer_neck(const KdTvImport *t, KdTvArch *a, int two_stage, KdError *err) {
  int s[4], nd = shape_of(t, "backbone.fpn.inner_blocks.0.0.weight", s);
  char b[64];
  if (nd < 0) return kd_error(err, "%s: backbone.fpn.inner_blocks.0.0.weight missing: kdscope imports ResNet-FPN detectors", t->path);
  if (find(t, "backbone.fpn.inner_blocks.0.1.weight") >= 0)
    return kd_error(err, "%s: backbone.fpn.inner_blocks.0.1.weight: an FPN with normalisation layers (torchvision's *_v2 Faster "
                    "R-CNN) is not supported; kdscope's FPN has none", t->path);
  int first = s[1] == stage_channels(a, 0) ? 2 : s[1] == stage_channels(a, 1) ? 3 : 0;
  if (nd != 4 || !first)
    return kd_error(err, "%s: backbone.fpn.inner_blocks.0.0.weight is %s: its input is neither C2 (%d) nor C3 (%d) of the ResNet",
                    t->path, shape_str(s, nd, b, sizeof b), stage_channels(a, 0), stage_channels(a, 1));
  int F = s[0], inner = count_blocks(t, "backbone.fpn.inner_blocks.%d.0.weight");
  if (inner != 6 - first)
    return kd_error(err, "%s: %d backbone.fpn.inner_blocks, expected %d for levels P%d..P5", t->path, inner, 6 - first, first);
  a->model.neck.channels = F;
  a->model.neck.first_level = first;
  int p6[4], nd6 = shape_of(t, "backbone.fpn.extra_blocks.p6.weight", p6);
  int has7 = find(t, "backbone.fpn.extra_blocks.p7.weight") >= 0;
  if (nd6 < 0) {
    if (has7) return kd_error(err, "%s: backbone.fpn.extra_blocks.p7.weight without p6", t->path);
    /* LastLevelMaxPool has no parameters: Faster R-CNN's FPN has it, RetinaNet's never */
    a->model.neck.extra_levels = two_stage ? 1 : 0;
    a->model.neck.extra = KD_EXTRA_MAXPOOL;
    return 0;
  }
  /* torchvision's LastLevelP6P7 reads P5 when its input width is the FPN's */
  KdExtraKind ex = p6[1] == F ? KD_EXTRA_P6P7_P5 : p6[1] == stage_channels(a, 3) ? KD_EXTRA_P6P7_C5 : (KdExtraKind)-1;
  if (nd6 != 4 || p6[0] != F || (int)ex < 0)
    return kd_error(err, "%s: backbone.fpn.extra_blocks.p6.weight is %s, expected [%d, %d (P5) or %d (C5), 3, 3]", t->path,
                    shape_str(p6, nd6, b, sizeof b), F, F, stage_channels(a, 3));
  a->model.neck.extra = ex;
  a->model.neck.extra_levels = has7 ? 2 : 1;
  return 0;
}

static int infer_retinanet(const KdTvImport *t, KdTvArch *a, KdError *err) {
  KdHeadCfg *h = &a->model.head;
  char b[64];
  if (find(t, "head.regression_head.bbox_ctrness.weight") >= 0)
    return kd_error(err, "%s: head.regression_head.bbox_ctrness.weight: an FCOS head, not supported (RetinaNet and Faster R-CNN are)",
                    t->path);
  int c[4], r[4], ncd = shape_of(t, "head.classification_head.cls_logits.weight", c),
              nrd = shape_of(t, "head.regression_head.bbox_reg.weight", r);
  if (nrd < 0) return kd_error(err, "%s: head.regression_head.bbox_reg.weight missing", t->path);
  if (nrd != 4 || r[0] % 4 || r[1] != a->model.neck.channels)
    return kd_error(err, "%s: head.regression_head.bbox_reg.weight is %s, expected [4 x anchors, %d, 3, 3]", t->path,
                    shape_str(r, nrd, b, sizeof b), a->model.neck.channels);
  int A = r[0] / 4;
  KdAnchorCfg ac;
  kd_anchor_cfg_default(&ac);
  if (A != kd_anchors_per_loc(&ac))
    return kd_error(err, "%s: head.regression_head.bbox_reg.weight has %d anchors per location; kdscope's RetinaNet has %d (3 "
                    "scales x 3 ratios)", t->path, A, kd_anchors_per_loc(&ac));
  if (ncd != 4 || c[0] % A || c[1] != a->model.neck.channels)
    return kd_error(err, "%s: head.classification_head.cls_logits.weight is %s, expected [%d x classes, %d, 3, 3]", t->path,
                    shape_str(c, ncd, b, sizeof b), A, a->model.neck.channels);
  snprintf(h->kind, sizeof h->kind, "retinanet");
  a->file_classes = h->num_classes = c[0] / A;
  h->convs = count_blocks(t, "head.classification_head.conv.%d.0.weight");
  int rc = count_blocks(t, "head.regression_head.conv.%d.0.weight");
  if (rc != h->convs)
    return kd_error(err, "%s: %d head.classification_head.conv.*.0.weight but %d head.regression_head.conv.*.0.weight: kdscope's "
                    "towers are of one depth", t->path, h->convs, rc);
  h->gn = h->convs > 0 && find(t, "head.classification_head.conv.0.1.weight") >= 0;
  return 0;
}

static int infer_frcnn(const KdTvImport *t, KdTvArch *a, KdError *err) {
  KdHeadCfg *h = &a->model.head;
  char b[64];
  static const char *const branches[][2] = {{"roi_heads.mask_", "Mask R-CNN's mask branch"},
                                            {"roi_heads.keypoint_", "Keypoint R-CNN's keypoint branch"}};
  for (int i = 0; i < 2; i++) {
    const char *nm = with_prefix(t, branches[i][0]);
    if (nm) return kd_error(err, "%s: %s: %s is not supported (kdscope's Faster R-CNN has boxes only)", t->path, nm, branches[i][1]);
  }
  int s[4], nd = shape_of(t, "rpn.head.cls_logits.weight", s);
  snprintf(h->kind, sizeof h->kind, "faster_rcnn");
  if (nd != 4 || s[0] != h->rpn.nratios) /* one anchor size per level: A = the aspect ratios */
    return kd_error(err, "%s: rpn.head.cls_logits.weight is %s, expected [%d, %d, 1, 1]", t->path, shape_str(s, nd, b, sizeof b),
                    h->rpn.nratios, a->model.neck.channels);
  h->rpn.conv_depth = count_blocks(t, "rpn.head.conv.%d.0.weight");
  int c[4], ncd = shape_of(t, "roi_heads.box_predictor.cls_score.weight", c);
  if (ncd != 2 || c[0] < 2)
    return kd_error(err, "%s: roi_heads.box_predictor.cls_score.weight %s, expected [classes + 1, representation]", t->path,
                    ncd < 0 ? "missing" : shape_str(c, ncd, b, sizeof b));
  a->file_classes = h->num_classes = c[0] - 1;
  int f6[4], n6 = shape_of(t, "roi_heads.box_head.fc6.weight", f6);
  if (n6 == 2) {
    snprintf(h->roi.box_head, sizeof h->roi.box_head, "twomlp");
    h->roi.representation = f6[0];
  } else if (has(t, "roi_heads.box_head.%d.0.weight", 0)) {
    snprintf(h->roi.box_head, sizeof h->roi.box_head, "4conv1fc");
    int cv[4], fc[4];
    if (shape_of(t, "roi_heads.box_head.0.0.weight", cv) != 4 || shape_of(t, "roi_heads.box_head.5.weight", fc) != 2)
      return kd_error(err, "%s: roi_heads.box_head.5.weight (the 4conv1fc head's fc) missing or not 2-d", t->path);
    h->roi.conv_channels = cv[0];
    h->roi.representation = fc[0];
    h->roi.conv_gn = find(t, "roi_heads.box_head.0.1.weight") >= 0;
  } else
    return kd_error(err, "%s: roi_heads.box_head.fc6.weight missing (nor a 4conv1fc box head)", t->path);
  return 0;
}

static void describe(KdTvArch *a) {
  const KdModelCfg *m = &a->model;
  int v1 = m->neck.extra == KD_EXTRA_P6P7_P5 && !m->head.gn, v2 = m->neck.extra == KD_EXTRA_P6P7_C5 && m->head.gn;
  int tv_body = m->backbone.depth == 50 && m->backbone.width == 64 && m->neck.channels == 256;
  a->known = 0;
  if (!strcmp(m->head.kind, "retinanet") && tv_body && m->neck.first_level == 3 && m->neck.extra_levels == 2 &&
      m->head.convs == 4 && (v1 || v2)) {
    snprintf(a->name, sizeof a->name, "retinanet_resnet50_fpn%s", v2 ? "_v2" : "");
    a->known = 1;
  } else if (!strcmp(m->head.kind, "faster_rcnn") && tv_body && m->neck.first_level == 2 && m->neck.extra == KD_EXTRA_MAXPOOL &&
             m->neck.extra_levels == 1 && m->head.rpn.conv_depth == 1 && !strcmp(m->head.roi.box_head, "twomlp") &&
             m->head.roi.representation == 1024) {
    snprintf(a->name, sizeof a->name, "fasterrcnn_resnet50_fpn");
    a->known = 1;
  } else
    snprintf(a->name, sizeof a->name, "%s_resnet%d_w%d_fpn%d", !strcmp(m->head.kind, "retinanet") ? "retinanet" : "fasterrcnn",
             m->backbone.depth, m->backbone.width, m->neck.channels);
}

int kd_tv_infer(KdTvImport *t, KdTvArch *a, KdError *err) {
  memset(a, 0, sizeof *a);
  kd_model_cfg_default(&a->model);
  a->renamed = t->renamed, a->dropped = t->dropped;
  int retina = find(t, "head.classification_head.cls_logits.weight") >= 0 || find(t, "head.regression_head.bbox_reg.weight") >= 0;
  int two = find(t, "rpn.head.cls_logits.weight") >= 0;
  if (infer_backbone(t, a, err)) return -1;
  if (!retina && !two)
    return kd_error(err, "%s: neither head.classification_head.cls_logits.weight (RetinaNet) nor rpn.head.cls_logits.weight "
                    "(Faster R-CNN): a backbone without a detection head", t->path);
  if (retina && two)
    return kd_error(err, "%s: both a RetinaNet head (head.*) and an RPN (rpn.*)", t->path);
  if (infer_neck(t, a, two, err)) return -1;
  if (retina ? infer_retinanet(t, a, err) : infer_frcnn(t, a, err)) return -1;
  describe(a);
  /* torchvision's RetinaNet keeps 300 detections per image (100 in two-stage) */
  return kd_model_cfg_check(&a->model, err) ? kd_error_prefix(err, "%s: the inferred architecture: ", t->path) : 0;
}

int kd_tv_check_arch(const KdTvArch *a, const char *want, KdError *err) {
  int ok = 0;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(known[i].name, want);
  if (!ok) return kd_error(err, "--arch %s: expected one of %s", want, kd_tv_known_archs());
  if (strcmp(a->name, want)) {
    const char *what = "";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
      if (!strcmp(known[i].name, want)) what = known[i].what;
    const KdModelCfg *m = &a->model;
    static const char *const ex[] = {"P5", "C5", "max pool"};
    return kd_error(err, "--arch %s (%s), but the file holds %s: ResNet-%d width %d, FPN %d P%d..P%d (extra from %s), %s head%s", want,
                    what, a->name, m->backbone.depth, m->backbone.width, m->neck.channels, m->neck.first_level,
                    5 + m->neck.extra_levels, ex[m->neck.extra], m->head.kind, m->head.gn ? " with GroupNorm" : "");
  }
  return 0;
}

/* ---- loading ---- */

/* Class-row layout of a tensor: rows of `group` values per (anchor, class)
 * block; 0 = not class-indexed. */
typedef struct {
  int per;    /* rows per class (1, or 4 for box deltas) */
  int blocks; /* blocks of K0 classes (RetinaNet: A) */
  int bg;     /* a background class at 0, kept first (Faster R-CNN) */
} Rows;

static Rows class_rows(const KdTvArch *a, const char *name) {
  if (!strcmp(a->model.head.kind, "retinanet")) {
    if (!strncmp(name, "head.classification_head.cls_logits.", 36)) return (Rows){1, 9, 0};
  } else {
    if (!strncmp(name, "roi_heads.box_predictor.cls_score.", 34)) return (Rows){1, 1, 1};
    if (!strncmp(name, "roi_heads.box_predictor.bbox_pred.", 34)) return (Rows){4, 1, 1};
  }
  return (Rows){0, 0, 0};
}

static void report(char *buf, size_t len, int *count, const char *fmt, const char *a1, const char *a2, const char *a3) {
  if ((*count)++ >= 6) return;
  size_t o = strlen(buf);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  if (o < len) snprintf(buf + o, len - o, fmt, *count > 1 ? "; " : "", a1, a2, a3);
#pragma GCC diagnostic pop
}

int kd_tv_load(KdTvImport *t, const KdTvArch *a, const int *keep, int nkeep, KdParams *p, KdError *err) {
  const int K0 = a->file_classes, bg = !strcmp(a->model.head.kind, "faster_rcnn");
  for (int i = 0; keep && i < nkeep; i++)
    if (keep[i] < bg || keep[i] >= K0 + bg)
      return kd_error(err, "class %d: outside the %d classes of %s (%d..%d)", keep[i], K0, t->path, bg, K0 + bg - 1);
  char problems[768] = "";
  int nprob = 0;
  char *used = calloc((size_t)(t->n ? t->n : 1), 1);
  if (!used) return kd_error(err, "out of memory");
  /* First every check, then the data: a bad file changes nothing. */
  for (int pass = 0; pass < 2 && !nprob; pass++)
    for (int i = 0; i < kd_params_count(p); i++) {
      KdTensor *dst = kd_params_at(p, i);
      int fi = find(t, dst->name), fs[4] = {1, 1, 1, 1}, nd = 0;
      char want[64], got[64];
      if (fi < 0) {
        report(problems, sizeof problems, &nprob, "%s%s missing%s%s", dst->name, "", "");
        continue;
      }
      used[fi] = 1;
      kd_safetensors_shape(t->st, t->index[fi], fs, &nd);
      Rows r = class_rows(a, dst->name);
      int rows0 = fs[0];
      if (r.per && keep) {
        if (fs[0] != r.blocks * (K0 + r.bg) * r.per) {
          report(problems, sizeof problems, &nprob, "%s%s has %s rows, expected %s (the classes of cls_logits)", dst->name,
                 shape_str(fs, 1, got, sizeof got), shape_str((int[]){r.blocks * (K0 + r.bg) * r.per}, 1, want, sizeof want));
          continue;
        }
        fs[0] = r.blocks * (nkeep + r.bg) * r.per;
      }
      int same = nd == dst->ndim || (nd == 0 && dst->numel == 1);
      for (int d = 0; same && d < nd; d++) same = fs[d] == dst->shape[d];
      if (!same) {
        report(problems, sizeof problems, &nprob, "%s%s is %s in the file, the model's is %s", dst->name,
               shape_str(fs, nd, got, sizeof got), shape_str(dst->shape, dst->ndim, want, sizeof want));
        continue;
      }
      if (pass == 0) continue;
      const char *nm = kd_safetensors_name(t->st, t->index[fi]);
      size_t n0 = kd_safetensors_numel(t->st, t->index[fi]);
      if (!r.per || !keep) {
        if (kd_safetensors_read_f32(t->st, nm, dst->data, dst->numel, err)) goto fail;
        continue;
      }
      float *all = malloc(n0 * sizeof(float));
      if (!all || kd_safetensors_read_f32(t->st, nm, all, n0, err)) {
        if (!all) kd_error(err, "out of memory");
        free(all);
        goto fail;
      }
      size_t row = n0 / (size_t)rows0; /* values per row */
      int K = nkeep + r.bg, dr = 0;
      for (int b = 0; b < r.blocks; b++)
        for (int k = 0; k < K; k++) {
          int src = r.bg && k == 0 ? 0 : keep[k - r.bg];
          for (int q = 0; q < r.per; q++, dr++)
            memcpy(dst->data + (size_t)dr * row, all + ((size_t)(b * (K0 + r.bg) + src) * (size_t)r.per + (size_t)q) * row,
                   row * sizeof(float));
        }
      free(all);
    }
  for (int i = 0; i < t->n && !nprob; i++)
    if (!used[i]) report(problems, sizeof problems, &nprob, "%s%s is in the file but not in a %s%s", t->name[i], a->name, "");
  free(used);
  if (nprob)
    return kd_error(err, "%s: %d tensor%s do%s not fit %s: %s%s", t->path, nprob, nprob > 1 ? "s" : "", nprob > 1 ? "" : "es", a->name,
                    problems, nprob > 6 ? "; ..." : "");
  return 0;
fail:
  free(used);
  return kd_error_prefix(err, "%s: ", t->path);
}
