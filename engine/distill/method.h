/* The distillation method framework. A method is one file that declares
 * (a) its hyperparameters as a typed params struct and descriptors bound
 * to its fields (keys "<method>.<field>", read by the JSON config, --set,
 * the run log and the UI sliders alike; the loss reads the struct, which
 * is refilled when a setting changes) and (b) a loss over what the teacher
 * and student produced this step, as a scalar tensor on the student's tape
 * plus named parts.
 *
 * Methods compose shared pieces (masks.h, norms.h) rather than copying
 * them. Learnable parts (adapters, GcBlocks) are registered in the
 * distillation parameter store at init and train with the student.
 * Several methods can be active at once, each scaled by "<method>.weight".
 * A method sees each side through a KdDistillSide and the levels of the
 * two sides through a stride-pairing table; it declares what it reads
 * (needs) so that a run that cannot give it is refused up front. */
#ifndef KD_DISTILL_METHOD_H
#define KD_DISTILL_METHOD_H

#include "core/config.h"
#include "core/error.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "detect/targets.h"
#include "model/detector.h"
#include "model/layers.h"

#define KD_DISTILL_MAX_LEVELS KD_MAX_LEVELS
#define KD_DISTILL_MAX_PARTS 8
#define KD_DISTILL_MAX_MASKS 40 /* LD: 4 a level */
#define KD_DISTILL_MAX_GAPS KD_DISTILL_MAX_LEVELS
#define KD_DISTILL_MAX_STATS 4
#define KD_DISTILL_MAX_TABLES 40 /* gk: 1 + 6 a level */

/* What a method reads (KdMethod.needs). A method whose needs a run cannot
 * meet is refused when the run opens and on a live `set` (needs.h), with a
 * message naming the method and the missing input, never mid-run. */
enum {
  KD_NEED_FEAT = 1 << 0,        /* neck features of both sides, levels paired by stride */
  KD_NEED_SAME_WIDTH = 1 << 1,  /* ... of one width on both sides (no adapter) */
  KD_NEED_LOGITS = 1 << 2,      /* dense class logits "cls" of one layout on both sides, every student level paired */
  KD_NEED_BOXES = 1 << 3,       /* dense box outputs "box" of one layout on both sides */
  KD_NEED_GT = 1 << 4,          /* ground-truth boxes */
  KD_NEED_ASSIGN = 1 << 5,      /* the student's dense anchor assignment */
  KD_NEED_TEACHER_RUN = 1 << 6, /* running a part of the teacher (kd_distill_teacher_head) */
  KD_NEED_ROIS = 1 << 7,        /* proposals / RoIs of a two-stage teacher */
  KD_NEED_STUDENT_ROIS = 1 << 8, /* an RoI head on the student (a two-stage student) */
  KD_NEED_DIST = 1 << 9,        /* side distributions "dist" of one layout on both sides (GFL heads) */
  KD_NEED_STUDENT_RUN = 1 << 10, /* running the student's head (and its loss) on other features */
};
#define KD_NEED_COUNT 11
/* The needs read from the teacher's forward: a run whose active methods
 * have none of them (LGD, TF-HEAD) skips that forward. */
#define KD_NEED_TEACHER_FWD                                                                                            \
  (KD_NEED_FEAT | KD_NEED_SAME_WIDTH | KD_NEED_LOGITS | KD_NEED_BOXES | KD_NEED_TEACHER_RUN | KD_NEED_ROIS | KD_NEED_DIST)

/* Shapes known before the first step, for creating learnable parts. The
 * levels are the paired ones (student and teacher level of one stride),
 * in the student's order. */
typedef struct KdDistillShapes {
  int nlev;
  int strides[KD_DISTILL_MAX_LEVELS];
  int t_channels, s_channels;          /* neck widths of teacher and student */
  int num_classes, num_anchors;
  /* The models when the sides are models (kd_distill_shapes), else NULL
   * (`kdscope loss`, tests): a part built after one of them (HEAD's
   * assistant, a copy of the teacher's RoI head) reads them at init.
   * Only their configs, levels and parameter values, never a forward. */
  const KdModel *student, *teacher;
  int roi_channels; /* RoI feature width of RoI-level tensors given as such (`kdscope loss`), else 0 */
} KdDistillShapes;

/* One head output of a side, per level of that side ("cls", "box", ...). */
typedef struct KdSideOut {
  const char *name;
  KdTensor *lv[KD_DISTILL_MAX_LEVELS];
} KdSideOut;

/* One side of distillation (teacher or student) as its model produced it
 * this step. Teacher tensors carry no gradient; student tensors are on
 * the tape. */
typedef struct KdDistillSide {
  const KdLevels *levels;          /* strides and names of this side's levels */
  int channels;                    /* neck width */
  KdTensor *feat[KD_DISTILL_MAX_LEVELS]; /* neck outputs N,C,H,W */
  int nout;
  KdSideOut out[KD_HEAD_MAX_OUT];  /* the head's outputs by name (kd_side_out) */
  const KdDenseAssign *assign;     /* this side's dense assignment, or NULL */
  const float *rois;               /* proposals [nrois, 5] (image, x1, y1, x2, y2) of a
                                      two-stage head, or NULL (none yet) */
  int nrois;
  const KdRpnProposals *props;     /* a two-stage head's proposals of this forward, per image, or NULL */
  const KdRoiSample *sample;       /* the RoIs this side's RoI head trained on this step (the student's
                                      loss of a two-stage head), or NULL */
  KdModel *model;                  /* NULL when the side comes as tensors (kdscope loss) */
} KdDistillSide;

/* A student level and the teacher level of the same stride. */
typedef struct KdLevelPair {
  int stride;
  int s, t;         /* level indices on each side */
  const char *name; /* the student's level name ("P3") */
} KdLevelPair;

/* RoI-level tensors given as they are (`kdscope loss`, docs/LOSS-CLI.md),
 * standing in for what HEAD makes in a training step (the student's
 * sampled RoIs, the assistant's and the teacher's RoI head on them, the
 * student's tower at their anchors). */
typedef struct KdDistillRoiIn {
  int nrois;
  KdTensor *assist_fc[2];  /* R,D: the assistant's fc1, fc2 before ReLU, on the tape */
  KdTensor *teacher_fc[2]; /* R,D: the teacher's */
  KdTensor *tower;         /* R,C: the student's cls-tower pixel at each RoI's anchor, on the tape */
  const int *gt;           /* [R]: 1 for a GT box added as a proposal (it has no pixel) */
} KdDistillRoiIn;

/* PGD's inputs given as they are (`kdscope loss`, docs/LOSS-CLI.md): the
 * Gaussian fits' draws and/or precomputed masks (pgdmask.h). */
typedef struct KdDistillPgdIn {
  const float *jitter; /* 2 x kd_pgd_draws values in [0, 1): the cls mask's, then the reg mask's; or NULL */
  KdTensor *cls[KD_DISTILL_MAX_LEVELS], *reg[KD_DISTILL_MAX_LEVELS], *bg[KD_DISTILL_MAX_LEVELS]; /* per pair, N,1,H,W, or NULL */
} KdDistillPgdIn;
/* Instances given as such (`kdscope loss --method gk`), standing in for
 * the student's positive anchors of a training step. */
typedef struct KdDistillInstIn {
  int n;
  const float *boxes;      /* [n,5]: image, x1, y1, x2, y2 in input pixels */
  const int *labels;       /* [n]: class */
  KdTensor *s_cls, *t_cls; /* n,K class logits (the student's on the tape), or NULL */
} KdDistillInstIn;

/* What a step gives the methods. */
typedef struct KdDistillInputs {
  KdCtx *c;
  const KdConfig *cfg;
  int n, img_h, img_w;
  const KdGtImage *gt;      /* [n], boxes in input pixels */
  KdDistillSide t, s;
  int npairs;               /* the stride-pairing table (kd_distill_pair) */
  KdLevelPair pairs[KD_DISTILL_MAX_LEVELS];
  int step;                 /* steps done before this one */
  int epoch;                /* epochs done (0 when the data set size is unknown) */
  int epochs;               /* epochs of the schedule (0 when unknown) */
  double progress;          /* step / train.steps, in [0, 1) */
  KdRng *rng;               /* draws for this step (seeded by train.seed and the step) */
  int maps;                 /* the probe (or `kdscope loss --out`) asks for each method's
                               loss map (kd_distill_gap); training steps leave it 0 */
  const KdDistillRoiIn *roi_in; /* NULL in training */
  const KdDistillPgdIn *pgd_in; /* NULL in training */
  const KdDistillInstIn *inst_in; /* NULL in training */
  /* ICD's instances given as they are (`kdscope loss`, docs/LOSS-CLI.md):
   * icd_ninst rows (image, real, class, x1, y1, x2, y2, cx, cy) in input
   * pixels, (cx, cy) the jittered centre; NULL in training (sampled). */
  const float *icd_inst;
  int icd_ninst;
  /* The student's detection-loss settings of this step (a method that runs
   * the student's loss on other features, KD_NEED_STUDENT_RUN), or NULL. */
  const KdDetLossCfg *det_lc;
} KdDistillInputs;

/* A mask a method used, kept for the probes/UI ("defeat.fg" at level l). */
typedef struct KdDistillMask {
  const char *name;
  int level;     /* the student's level index (KdLevelPair.s) */
  KdTensor *map; /* N,1,H,W (or N,C,1,1 for channel masks) */
} KdDistillMask;

/* A method's loss map at one level: what its feature loss adds up at each
 * cell, summed over channels, after its adapter and normalisation and with
 * its masks and weights (weight and normalisers included), so that the
 * maps of every level sum to the parts named by KdMethod.gap_parts.
 * N,1,H,W, no gradient; made from the tensors the loss itself used. */
typedef struct KdDistillGap {
  int level;     /* the student's level index (KdLevelPair.s) */
  KdTensor *map;
} KdDistillGap;

typedef struct KdDistillOut {
  KdTensor *loss; /* scalar {1}, already multiplied by the method's weight */
  int nparts;
  struct {
    const char *name; /* "neck_obj" -> logged as "<method>.neck_obj" */
    KdTensor *value;  /* weighted scalar; the parts sum to loss */
  } parts[KD_DISTILL_MAX_PARTS];
  int nmasks;
  KdDistillMask masks[KD_DISTILL_MAX_MASKS];
  int ngaps; /* only when KdDistillInputs.maps */
  KdDistillGap gaps[KD_DISTILL_MAX_GAPS];
  /* Diagnostics ("mean_pos" -> logged as "<method>.mean_pos"), outside the
   * loss: they are not parts and do not sum to it. */
  int nstats;
  struct {
    const char *name;
    double value;
  } stats[KD_DISTILL_MAX_STATS];
  /* Tables of the probe batch (only when KdDistillInputs.maps), kept by
   * the probe and `kdscope loss --out`: per image (column 0 the image;
   * HEAD's sampled RoIs, assist.h) or whole (gk's instances and
   * prototypes). */
  int ntables;
  struct {
    const char *name;
    KdTensor *rows; /* R, cols (or R); no gradient */
    int per_image;  /* sliced by column 0 into img<i>.<name>.<method>; else kept as <name> */
  } tables[KD_DISTILL_MAX_TABLES];
} KdDistillOut;

typedef struct KdMethod KdMethod;

/* One method of a run: its registry entry, its own state and its params
 * struct (params_size bytes, filled by kd_method_read_params). */
typedef struct KdMethodInst {
  const KdMethod *m;
  void *state;
  void *params;
} KdMethodInst;

/* A method's setting "<method>.<field>", live, bound to the field of its
 * params struct T (float for numbers, int for bools and enums), with the
 * symbol its paper writes (KdParamDesc.symbol) and its slider grid. */
#define KD_METHOD_FLOAT(T, method, field, symbol, label, def, lo, hi, log_scale, grid, help) \
  KD_SETTING_FLOAT(T, method, field, symbol, label, def, lo, hi, log_scale, grid, 1, help)
#define KD_METHOD_BOOL(T, method, field, symbol, label, def, help) KD_SETTING_BOOL(T, method, field, symbol, label, def, 1, help)
#define KD_METHOD_ENUM(T, method, field, symbol, label, def, choices, help) \
  KD_SETTING_ENUM(T, method, field, symbol, label, def, choices, 1, help)

struct KdMethod {
  const char *name;  /* "defeat"; also the key prefix */
  const char *label; /* "DeFeat" */
  const char *help;  /* one line, with the paper */
  const KdParamDesc *params; /* every one bound to a field of the params struct */
  int nparams;
  size_t params_size;        /* sizeof the params struct */
  /* Creates state and registers learnable tensors in store under
   * "distill.<name>.". May be NULL (no state). */
  int (*init)(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err);
  /* Initialises the registered tensors after the store is finalized. */
  void (*init_weights)(KdMethodInst *inst, KdRng *rng);
  void (*destroy)(KdMethodInst *inst);
  /* Builds the loss on the student's tape. Returns -1 with the ctx error. */
  int (*loss)(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out);
  unsigned needs; /* KD_NEED_* always read */
  /* KD_NEED_* read under the current settings, added to needs (e.g. only
   * while a part is weighted above 0); may be NULL. */
  unsigned (*needs_now)(const KdConfig *cfg);
  /* The loss map the loss records with kd_distill_gap when asked
   * (KdDistillInputs.maps): what the map is after, for its label
   * ("after adapter, fg/bg weighted"), and the parts it sums to, comma
   * separated (NULL: every part). NULL gap_label: the method has none. */
  const char *gap_label;
  const char *gap_parts;
  /* Key of the setting that is the temperature of the attention maps the
   * probe shows (attention as this method computes it), or NULL. */
  const char *attn_temp_key;
};

/* ---- registry (the list in engine/distill/meson.build) ---- */
int kd_method_count(void);
const KdMethod *kd_method_at(int i);
const KdMethod *kd_method_find(const char *name);
/* "fitnet, defeat, ..." into buf, for messages. */
const char *kd_method_names(char *buf, size_t len);
/* needs | needs_now(cfg). */
unsigned kd_method_needs(const KdMethod *m, const KdConfig *cfg);
/* Registers "distill.methods" and every method's descriptors. */
int kd_distill_register(KdConfig *cfg);
/* Fills inst->params from cfg (allocated on first use). The distiller
 * calls it when a setting changes; so does code that runs a method on its
 * own (tests, tools), after its own changes. */
int kd_method_read_params(KdMethodInst *inst, const KdConfig *cfg, KdError *err);
/* Destroys the state and frees the params struct (the registry entry stays). */
void kd_method_inst_release(KdMethodInst *inst);

/* ---- helpers for method files ---- */
/* The weighted sum of parts, filling out->loss. */
int kd_distill_finish(KdCtx *c, KdDistillOut *out);
void kd_distill_part(KdDistillOut *out, const char *name, KdTensor *value);
void kd_distill_mask(KdDistillOut *out, const char *name, int level, KdTensor *map);
/* A table of rows for the probes (KdDistillOut.tables). */
void kd_distill_table(KdDistillOut *out, const char *name, KdTensor *rows, int per_image);
/* A diagnostic of the step (KdDistillOut.stats), not part of the loss. */
void kd_distill_stat(KdDistillOut *out, const char *name, double value);
/* Dense methods: checks that both sides have class logits "cls" of one
 * layout (N, A*K, H, W) on every student level, paired, and the student's
 * assignment over the same anchors; off[l] gets the first flat anchor of
 * pair l (off[npairs] = A_total). -1 with the ctx error naming method. */
int kd_distill_dense_levels(const KdDistillInputs *in, const char *method, int *off);
/* Per-level adapters a[0..nlev) "<prefix>.<l>": k x k convs (padding
 * k/2, bias) from the student's width cin to the teacher's cout. */
int kd_distill_adapters_add(KdConv *a, int nlev, KdParams *store, const char *prefix, int cin, int cout, int k,
                            KdError *err);
/* PyTorch's default Conv2d init of each (weight, then bias, per level):
 * kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)). */
void kd_distill_adapters_init(KdConv *a, int nlev, KdRng *r);
/* Records the loss map of one level (KdDistillGap); NULL map: nothing. */
void kd_distill_gap(KdDistillOut *out, int level, KdTensor *map);
/* 1 when part `name` is one of m->gap_parts (always when that is NULL). */
int kd_method_gap_part(const KdMethod *m, const char *name);
/* The per-level tensors of a side's head output `name`, or NULL. */
KdTensor *const *kd_side_out(const KdDistillSide *s, const char *name);
/* Runs the teacher's head on features given per teacher level (e.g. the
 * student's, adapted to the teacher's width) on the step's tape: the
 * gradient reaches those features, not the teacher. Fills out (head
 * outputs by name, kd_det_out). -1 with the ctx error. */
int kd_distill_teacher_head(const KdDistillInputs *in, KdTensor *const *feat, KdDetOut *out);
/* Two-stage teachers: the teacher's RoI head on given RoIs [nrois, 5]. */
int kd_distill_teacher_rois(const KdDistillInputs *in, KdTensor *const *feat, const float *rois, int nrois, KdHeadOut *out,
                            KdError *err);

#endif
