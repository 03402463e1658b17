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
 * Several methods can be active at once, each scaled by "<method>.weight". */
#ifndef KD_DISTILL_METHOD_H
#define KD_DISTILL_METHOD_H

#include "core/config.h"
#include "core/error.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "detect/targets.h"

#define KD_DISTILL_MAX_LEVELS 5
#define KD_DISTILL_MAX_PARTS 8
#define KD_DISTILL_MAX_MASKS 8

/* Shapes known before the first step, for creating learnable parts. */
typedef struct KdDistillShapes {
  int nlev;
  int strides[KD_DISTILL_MAX_LEVELS];  /* 8, 16, 32, ... */
  int t_channels, s_channels;          /* FPN widths of teacher and student */
  int num_classes, num_anchors;
} KdDistillShapes;

/* What a step produced. Teacher tensors carry no gradient; student tensors
 * are on the tape. Features are the FPN outputs P3.. (N,C,H,W); cls/box
 * the head outputs (N,A*K,H,W) / (N,A*4,H,W). */
typedef struct KdDistillInputs {
  KdCtx *c;
  const KdConfig *cfg;
  int n, img_h, img_w, nlev;
  int strides[KD_DISTILL_MAX_LEVELS];
  KdTensor *t_feat[KD_DISTILL_MAX_LEVELS], *s_feat[KD_DISTILL_MAX_LEVELS];
  KdTensor *t_cls[KD_DISTILL_MAX_LEVELS], *s_cls[KD_DISTILL_MAX_LEVELS];
  KdTensor *t_box[KD_DISTILL_MAX_LEVELS], *s_box[KD_DISTILL_MAX_LEVELS];
  const KdGtImage *gt;      /* [n], boxes in input pixels */
  /* Dense assignment (for logit-level methods), flat anchor order of
   * detect/anchors.h: [n * A_total], class >= 0 positive, -1 neg, -2 ignore. */
  const int *target_cls;
  int num_anchors, num_classes, A_total;
  const float *anchors;     /* [A_total, 4] */
} KdDistillInputs;

/* A mask a method used, kept for the probes/UI ("defeat.fg" at level l). */
typedef struct KdDistillMask {
  const char *name;
  int level;
  KdTensor *map; /* N,1,H,W (or N,C,1,1 for channel masks) */
} KdDistillMask;

typedef struct KdDistillOut {
  KdTensor *loss; /* scalar {1}, already multiplied by the method's weight */
  int nparts;
  struct {
    const char *name; /* "neck_obj" -> logged as "<method>.neck_obj" */
    KdTensor *value;  /* weighted scalar; the parts sum to loss */
  } parts[KD_DISTILL_MAX_PARTS];
  int nmasks;
  KdDistillMask masks[KD_DISTILL_MAX_MASKS];
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
 * params struct T (float for numbers, int for bools and enums). */
#define KD_METHOD_FLOAT(T, method, field, label, def, lo, hi, log_scale, help) \
  KD_SETTING_FLOAT(T, method, field, label, def, lo, hi, log_scale, 1, help)
#define KD_METHOD_BOOL(T, method, field, label, def, help) KD_SETTING_BOOL(T, method, field, label, def, 1, help)
#define KD_METHOD_ENUM(T, method, field, label, def, choices, help) \
  KD_SETTING_ENUM(T, method, field, label, def, choices, 1, help)

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
};

/* ---- registry ---- */
int kd_method_count(void);
const KdMethod *kd_method_at(int i);
const KdMethod *kd_method_find(const char *name);
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

#endif
