/* The input file of `kdscope loss` (docs/LOSS-CLI.md): named teacher and
 * student tensors read from a safetensors file and validated (levels,
 * shapes, channels, ground truth) before any method sees them. Separate
 * from the verb so the fuzz target (tests/fuzz/fuzz_loss_inputs.c) runs
 * exactly the checks the verb runs. */
#ifndef KD_LOSS_INPUTS_H
#define KD_LOSS_INPUTS_H

#include <stddef.h>

#include "distill/distiller.h"
#include "model/safetensors.h"

#define KD_LOSS_MAXL KD_DISTILL_MAX_LEVELS
enum { KD_LOSS_FEAT, KD_LOSS_CLS, KD_LOSS_BOX, KD_LOSS_DIST, KD_LOSS_CTOWER, KD_LOSS_RTOWER, KD_LOSS_CTOWER0, KD_LOSS_RTOWER0,
       KD_LOSS_NKIND };
/* PGD's precomputed masks pgd.cls.P<l>, pgd.reg.P<l>, pgd.bg.P<l> (N,1,H,W). */
enum { KD_LOSS_PGD_CLS, KD_LOSS_PGD_REG, KD_LOSS_PGD_BG, KD_LOSS_NPGD };
/* What precomputed PGD masks stand in for (the teacher's predictions and the GT they are built from). */
#define KD_LOSS_PGD_NEEDS (KD_NEED_LOGITS | KD_NEED_DIST | KD_NEED_GT)

typedef struct {
  float *data;
  int shape[4];
} KdLossArr;

enum { KD_LOSS_ROI_ASSIST_FC1, KD_LOSS_ROI_ASSIST_FC2, KD_LOSS_ROI_TEACHER_FC1, KD_LOSS_ROI_TEACHER_FC2, KD_LOSS_ROI_TOWER,
       KD_LOSS_NROI };
/* What the RoI-level tensors are in a training step: the student's sampled
 * RoIs (from its assignment, against the GT), the teacher's RoI head run on
 * them. A file with them meets these needs. */
#define KD_LOSS_ROI_NEEDS (KD_NEED_GT | KD_NEED_ASSIGN | KD_NEED_TEACHER_RUN | KD_NEED_ROIS)
/* "roi.assist.fc1", ... for KD_LOSS_ROI_* */
extern const char *const kd_loss_roi_names[KD_LOSS_NROI];

typedef struct {
  const char *path;
  KdSafetensors *st;
  int nlev, n, has[KD_LOSS_NKIND];
  KdLossArr lev[KD_LOSS_NKIND][2][KD_LOSS_MAXL]; /* [kind][teacher, student][level] */
  float *boxes, *labels;                         /* gt.boxes [m,5], gt.labels [m] */
  int m, has_gt, img_h, img_w, K, A;
  /* HEAD's RoI-level tensors (roi.*, docs/LOSS-CLI.md): R RoIs, fc width
   * D, tower width C; they stand in for the needs KD_LOSS_ROI_NEEDS. */
  int has_roi, R, D, C;
  float *roi[KD_LOSS_NROI]; /* roi.assist.fc1, roi.assist.fc2, roi.teacher.fc1, roi.teacher.fc2, roi.tower */
  float *roi_gt;            /* roi.gt [R]: 1 for a GT box added as a proposal, else 0 */
  int has_step, step;       /* step (1): steps done, for the warm-up */
  /* PGD (docs/LOSS-CLI.md): the Gaussian fits' draws pgd.jitter
   * (2, M, k, 2) and/or precomputed masks, every level or none. */
  float *pgd_jitter;
  int pgd_jitter_shape[4], has_pgd_mask;
  KdLossArr pgd_mask[KD_LOSS_NPGD][KD_LOSS_MAXL];
  /* Global knowledge (loss_inputs_gk.c): instance rows, prototypes per
   * level, progress. Instance rows stand in for the assignment. */
  int has_inst, nr, inst_nlab, inst_cls_shape[2][2];
  float *inst_boxes, *inst_labels; /* inst.boxes [nr,5], inst.labels [nr] */
  float *inst_cls[2];              /* inst.teacher.cls, inst.student.cls [nr,K], or NULL */
  int has_proto, proto_m[3][KD_LOSS_MAXL], proto_c[2][KD_LOSS_MAXL];
  float *proto_t[KD_LOSS_MAXL], *proto_s[KD_LOSS_MAXL], *proto_lab[KD_LOSS_MAXL];
  int has_progress;
  float progress;
  /* ICD (docs/LOSS-CLI.md): given instances icd.instances (M, 9). */
  float *icd_inst;
  int icd_ninst;
} KdLossInputs;

/* Opens path and validates every tensor for method, whose KD_NEED_* bits
 * (kd_method_needs) are needs. A = anchors per location. On error err
 * names the file, the tensor and what was expected; in is freed either
 * way by kd_loss_inputs_free. */
int kd_loss_inputs_read(KdLossInputs *in, const char *path, int A, const char *method, unsigned needs, KdError *err);
void kd_loss_inputs_free(KdLossInputs *in);
/* What instance rows stand in for: the student's assignment (and its dense logits). */
#define KD_LOSS_INST_NEEDS (KD_NEED_GT | KD_NEED_ASSIGN | KD_NEED_LOGITS)
/* Tensor i when it is one of gk's (inst.*, proto.*, progress): 0, -1 with
 * err; 1 when it is not. */
int kd_loss_inputs_read_gk(KdLossInputs *in, int i, const char *name, const int *shape, int nd, const char *ss, KdError *err);
/* Their checks against each other and the levels (after the levels'). */
int kd_loss_inputs_check_gk(KdLossInputs *in, KdError *err);
void kd_loss_inputs_free_gk(KdLossInputs *in);
/* Tensor i of the file as floats, refusing NaN/inf; NULL with err set. */
float *kd_loss_inputs_tensor(const KdLossInputs *in, int i, size_t *numel, KdError *err);
/* "student.cls.P4" for kind, side (0 teacher, 1 student), level. */
void kd_loss_level_name(char *buf, size_t len, int kind, int who, int l);
/* "(2,3)" */
void kd_loss_shape_str(const int *s, int nd, char *buf, size_t len);

#endif
