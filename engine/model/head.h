/* The detector head interface. A head kind is one file defining
 * `const KdHeadKind kd_head_<name>` and one name in the head list of
 * engine/model/meson.build: it builds its layers on the neck's levels
 * ("head.*" names as torchvision's), runs them, turns its outputs into a
 * detection loss and into detections, and says what it exposes to
 * distillation (its outputs by name, its dense assignment, RoIs).
 * Each head owns its anchors and assignment, built from its own config,
 * so a teacher and a student may differ in both. */
#ifndef KD_HEAD_H
#define KD_HEAD_H

#include <stdint.h>

#include "detect/assigner.h"
#include "detect/postprocess.h"
#include "model/layers.h"
#include "model/levels.h"
#include "model/roi_head.h"
#include "model/rpn.h"

#define KD_HEAD_MAX_OUT 8
#define KD_HEAD_MAX_PARTS 4

/* GFL kinds: the side distributions and the ATSS assignment. */
typedef struct KdGflCfg {
  int reg_max; /* bins 0..reg_max per side (mmdet: 16) */
  int topk;    /* ATSS candidates per level (9) */
} KdGflCfg;

typedef struct KdHeadCfg {
  char kind[16];       /* a registered kind: "retinanet", "faster_rcnn", "gfl" */
  int num_classes;
  int convs;           /* convs per tower */
  int gn;              /* GroupNorm(32) after each tower conv */
  float prior_prob;    /* initial foreground probability of the class logits */
  KdAnchorCfg anchors; /* anchor-based kinds: shapes (the strides come from the levels) */
  KdAssignCfg assign;
  KdRpnCfg rpn;        /* two-stage kinds: the RPN (its own anchors and matcher) */
  KdRoiHeadCfg roi;    /* two-stage kinds: the RoI head (num_classes comes from above) */
  KdGflCfg gfl;        /* GFL kinds */
} KdHeadCfg;

/* The losses' settings; read from the run's config at every step (the
 * box weight is live). */
typedef struct KdDetLossCfg {
  float focal_alpha, focal_gamma;
  int giou;           /* box loss: 1 GIoU on decoded boxes, 0 smooth-L1 on deltas */
  float smooth_l1_beta;
  float box_weight;
  float qfl_beta;     /* GFL: Quality Focal Loss beta (2) */
  float dfl_weight;   /* GFL: Distribution Focal Loss weight (0.25) */
  /* Two-stage kinds sample anchors and RoIs from a stream of this seed
   * and step (the run's train.seed and the step about to be taken), so a
   * resumed run samples as the uninterrupted one did. */
  uint64_t seed;
  int step;
} KdDetLossCfg;

/* A two-stage forward's proposals and, where it ran, its RoI head's
 * outputs (c's arena; the proposals carry no gradient). */
typedef struct KdHeadRois {
  KdRpnProposals props;         /* per image, by score desc; n = 0: none */
  int nrois;                    /* RoIs the RoI head ran on, */
  const float *rois;            /* [nrois, 5]: image, x1, y1, x2, y2 */
  int ran;                      /* the RoI head ran on them (an evaluation forward, or roi_forward) */
  KdTensor *cls, *box;          /* nrois, K+1 and nrois, 4(K+1); NULL when it did not run or nrois = 0 */
  KdTensor *rep;                /* nrois, representation: the box head's output (the RoI features), as cls */
  KdTensor *fc[2];              /* the box head's first and last Linear outputs before their ReLU
                                   (kd_roi_head_forward_fc), as cls */
  KdTensor *feat[KD_MAX_LEVELS]; /* the features the head ran on (the RoI stage reads them) */
} KdHeadRois;

/* One forward's head outputs per level, in the order of the kind's
 * output names; tensors N,C,H,W on the neck's level sizes. */
typedef struct KdHeadOut {
  int nout;
  const char *const *names;
  KdTensor *lv[KD_HEAD_MAX_OUT][KD_MAX_LEVELS];
  KdHeadRois rois;              /* KD_HEAD_HAS_ROIS kinds */
} KdHeadOut;

/* The per-level tensors of output `name`, or NULL when the head has none. */
KdTensor *const *kd_head_out_find(const KdHeadOut *o, const char *name);

typedef struct KdDetLoss {
  KdTensor *total;    /* the weighted sum of the parts */
  int nparts;
  struct {
    const char *name; /* "cls" -> logged as "det.cls" */
    KdTensor *value;  /* unweighted */
  } parts[KD_HEAD_MAX_PARTS];
  int num_pos;
  int has_assign;
  KdDenseAssign assign; /* the batch's dense assignment (KD_HEAD_HAS_ASSIGN) */
  /* Two-stage kinds: what the loss sampled (c's arena). */
  const signed char *rpn_sel; /* [n*A_total] anchors: 1 positive, 0 negative, -1 not sampled */
  KdRoiSample rois;           /* the RoIs the RoI head trained on */
} KdDetLoss;

/* What a head kind exposes to distillation (KdHeadInfo.provides). */
enum {
  KD_HEAD_HAS_LOGITS = 1 << 0, /* "cls": dense class logits N, A*K, H, W (channel a*K + k) */
  KD_HEAD_HAS_BOXES = 1 << 1,  /* "box": dense box deltas N, A*4, H, W */
  KD_HEAD_HAS_ASSIGN = 1 << 2, /* a dense anchor assignment with its loss */
  KD_HEAD_HAS_ROIS = 1 << 3,   /* proposals and an RoI head (two-stage kinds) */
  KD_HEAD_HAS_DIST = 1 << 4,   /* "dist": side distributions N, 4*(R+1), H, W (channel side*(R+1) + bin;
                                  sides l, t, r, b in strides from the location's point; GFL kinds) */
};

typedef struct KdHeadInfo {
  unsigned provides;
  int A, K; /* anchors per location and classes of the dense outputs */
  const KdAnchorCfg *anchors; /* the head's anchors (the RPN's for two-stage kinds), or NULL */
  float pos_iou;              /* the IoU that makes an anchor positive */
  int reg_max;                /* KD_HEAD_HAS_DIST: bins 0..reg_max per side */
} KdHeadInfo;

typedef struct KdHeadKind {
  const char *name;  /* "retinanet", the value of model.head */
  const char *label; /* "RetinaNet" */
  const char *const *outputs; /* names of KdHeadOut's entries */
  int noutputs;
  const char *const *param_prefixes; /* its parameters' name prefixes ("head."), NULL-terminated */
  /* Checks the config against the neck (lv NULL: before the neck is
   * built, level-dependent checks wait for build); names the field. */
  int (*check)(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdError *err);
  /* Registers "head.*" in p; returns the kind's state or NULL (err). */
  void *(*build)(const KdHeadCfg *cfg, int channels, const KdLevels *lv, KdParams *p, KdError *err);
  /* After the store is finalized: torchvision's init, from r. */
  void (*init)(void *h, KdRng *r);
  void (*destroy)(void *h);
  void (*info)(const void *h, KdHeadInfo *out);
  /* feat[levels] -> out; errors go to the ctx. training: the forward of
   * a training step (a two-stage kind then makes its training proposals
   * and leaves the RoI head to the loss; else it runs the RoI head on its
   * test proposals, for decode). */
  void (*forward)(void *h, KdCtx *c, KdTensor *const *feat, int training, KdHeadOut *out);
  /* The detection loss of n images on the tape (targets from c's arena). */
  int (*loss)(void *h, KdCtx *c, const KdHeadOut *o, const KdGtImage *gt, int n, const KdDetLossCfg *lc, KdDetLoss *out,
              KdError *err);
  /* Detections per image (kd_postprocess's contract: out[n*max_det]). */
  int (*decode)(void *h, const KdHeadOut *o, const KdPostCfg *pc, int n, const float *image_wh, KdDetection *out,
                int *count, KdError *err);
  /* The level a GT box belongs to (probes pool instance features there). */
  int (*box_level)(const void *h, const float *box);
  /* Two-stage kinds: the RoI head on given RoIs (NULL without one). */
  int (*roi_forward)(void *h, KdCtx *c, KdTensor *const *feat, const float *rois, int nrois, KdHeadOut *out,
                     KdError *err);
  /* FLOPs of the head's convs for level sizes lhw [2*levels]. */
  double (*flops)(const void *h, int n, const int *lhw);
} KdHeadKind;

/* The GFL kind's anchors (head_gfl.c): one square of anchors.size_mult x
 * stride per location, centred on the point (x, y) * stride as mmdet's
 * AnchorGenerator (center_offset 0, no rounding); lv NULL: shapes only. */
void kd_head_gfl_anchors(const KdHeadCfg *cfg, const KdLevels *lv, KdAnchorCfg *a);

/* ---- registry (heads.c) ---- */
int kd_head_kind_count(void);
const KdHeadKind *kd_head_kind_at(int i);
const KdHeadKind *kd_head_kind_find(const char *name);
/* "retinanet, ..." into buf, for messages. */
const char *kd_head_kind_names(char *buf, size_t len);

#endif
