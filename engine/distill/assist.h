/* HEAD's assistant (Wang et al., ECCV 2022; KD-METHODS §5.1), shared by
 * the head and tfhead methods: proposals from a one-stage student's dense
 * head, each remembering the anchor it came from; the RoIs sampled among
 * them (GT boxes added); an assistant RoI head on the student's FPN; and
 * the two loss pieces the methods compose (MSE of an adapted feature,
 * the student's tower pixels at the RoIs' anchors). No method's settings
 * or parts here. */
#ifndef KD_DISTILL_ASSIST_H
#define KD_DISTILL_ASSIST_H

#include "detect/proposals.h"
#include "distill/method.h"
#include "model/layers.h"
#include "model/roi_head.h"

/* A batch's sampled RoIs and, for each, the student's anchor it was
 * proposed from (image = s.rois[5r]); level -1 for a GT box added as a
 * proposal (it has no anchor). From c's arena. */
typedef struct KdAssistRois {
  KdRoiSample s;
  int *level, *y, *x, *anchor; /* [s.nrois]; level indexes the student's levels */
  int nprops;                  /* proposals over the batch, before sampling */
  int npix;                    /* sampled RoIs with an anchor (level >= 0) */
} KdAssistRois;

/* The settings HEAD and TF-HEAD share, bound to the fields warmup_steps,
 * pre_nms_top_n, post_nms_top_n (int) and nms_thresh (float) of their
 * params struct T. */
#define KD_ASSIST_PARAMS(T, method)                                                                                   \
  KD_SETTING_INT(T, method, warmup_steps, "t_w", "Warm-up steps", 200, 0, 100000, NULL, 1,                           \
                 "The distillation weights ramp linearly from 0 at step 0 to full at this step. HEAD: 2000 "         \
                 "iterations of COCO at 16 images, 0.27 epoch; 0.27 epoch of fashion-det's 6000 images at batch 8 "  \
                 "is 200 steps"),                                                                                      \
      KD_SETTING_INT(T, method, pre_nms_top_n, "n_pre", "Proposals per level", 1000, 1, 100000, NULL, 1,             \
                     "Student proposals: the top anchors by objectness (max class logit) per level and image "       \
                     "before NMS (HEAD: 2000 at COCO's ~800 px; 1000 as the teacher-frcnn preset's RPN at 128 px)"), \
      KD_SETTING_INT(T, method, post_nms_top_n, "n_post", "Proposals per image", 500, 1, 100000, NULL, 1,            \
                     "Student proposals kept per image after the per-level NMS (HEAD: 1000; 500 as the "            \
                     "teacher-frcnn preset)"),                                                                         \
      KD_SETTING_FLOAT(T, method, nms_thresh, "IoU_nms", "Proposal NMS IoU", 0.7, 0.0, 1.0, 0, "step 0.05", 1,      \
                       "IoU of the per-level NMS of the student's proposals (HEAD: 0.7)")

/* What a HEAD-style loss starts from each step: the student's cls-tower
 * levels, the sampled RoIs with their anchors, the warm-up factor and a
 * row buffer for kd_assist_pixels (r.npix long). */
typedef struct KdAssistStep {
  KdTensor *const *tower;
  KdAssistRois r;
  float warm;
  int *rows;
} KdAssistStep;

/* Fills st with h's sampler and the proposal settings given; -1 with the
 * ctx error, prefixed by method. */
int kd_assist_step(const KdDistillInputs *in, const char *method, int warmup_steps, int pre_nms_top_n, int post_nms_top_n,
                   float nms_thresh, KdRoiHead *h, KdAssistStep *st);

/* The student's proposals as an RPN's (§5.1): per anchor, objectness =
 * the max over the K class logits of "cls" (before the sigmoid); then
 * kd_proposals_origin with pc (sigmoid, per level top pre_nms_top_n,
 * decode of "box" on the assignment's anchors with torchvision's default
 * coder (weights 1, mmdet's DeltaXYWH with stds 1), clip, NMS per level,
 * post_nms_top_n per image); then kd_roi_head_sample with h's sampler
 * (its fg/bg IoU, RoIs per image, positive fraction; GT boxes added)
 * drawing from in->rng. -1 with err. */
int kd_assist_rois(const KdDistillInputs *in, const KdProposalCfg *pc, KdRoiHead *h, KdAssistRois *out, KdError *err);

/* The levels an assistant pools from: the student's first n levels (n:
 * the teacher's RoI levels, HEAD's P3..P6 for the teacher's P2..P5), and
 * cfg's canonical level moved by log2(student's first stride / teacher's),
 * since mmdet maps a box to a level by its index in the list: a box goes
 * to the student level of the index its teacher level has. */
void kd_assist_levels(const KdLevels *student, int t_first_stride, int t_nlev, KdRoiHeadCfg *cfg, KdLevels *out);

/* The teacher's RoI levels (stride <= 32, the Faster R-CNN head kind's
 * rule): how many and the first stride; 0 when it has none. */
int kd_assist_teacher_levels(const KdLevels *teacher, int *first_stride);

/* Copies the tensors "roi_heads.<rest>" of src into "<prefix>.<rest>" of
 * store where both exist with one shape; returns the number copied. */
int kd_assist_copy(KdParams *store, const char *prefix, const KdParams *src);

/* todd's MSELoss (mean) on an adapted feature: sum (Lin(x) - t)^2 / (R*D)
 * for x R,Din and a constant t R,D. NULL (ctx error) on bad shapes. */
KdTensor *kd_assist_mse(KdCtx *c, const KdLinear *ad, KdTensor *x, KdTensor *t);

/* The rows of x (R,D) at rows[m] -> m,D, on x's tape. */
KdTensor *kd_assist_rows(KdCtx *c, KdTensor *x, const int *rows, int m);

/* CKD's pixels: tower[level] (N,C,H,W, either layout) at each sampled
 * RoI's (image, y, x) (anchor ignored; GT boxes skipped), as rows M,C
 * grouped by level; rows[M] (caller's, r->npix long) gets each row's RoI
 * index. NULL when M = 0 or on error (ctx error set then). */
KdTensor *kd_assist_pixels(KdCtx *c, KdTensor *const *tower, int nlev, const KdAssistRois *r, int *rows);

/* The probes' table of a step's sampled RoIs (KdDistillOut.tables): one
 * row per RoI, columns KD_ASSIST_COL_*: image, box (input pixels), label
 * (GT class + 1, 0 background), 1 for a GT box added as a proposal, and
 * KD_ASSIST_GAPS per-RoI gaps a method fills (NaN where it has none). */
enum { KD_ASSIST_COL_IMAGE, KD_ASSIST_COL_BOX, KD_ASSIST_COL_LABEL = 5, KD_ASSIST_COL_GT, KD_ASSIST_COL_GAP, KD_ASSIST_GAPS = 3,
       KD_ASSIST_COLS = KD_ASSIST_COL_GAP + KD_ASSIST_GAPS };
/* The table with the gaps NaN; NULL without RoIs or (ctx error) out of memory. */
KdTensor *kd_assist_table(KdCtx *c, const KdAssistRois *r);
/* Each row's term of kd_assist_mse, mean_d (Lin(x) - t)^2, into the gap
 * column col of table at rows[m] (rows NULL: row m is RoI m); no tape. */
int kd_assist_table_gaps(KdCtx *c, KdTensor *table, int col, const KdLinear *ad, KdTensor *x, const KdTensor *t,
                         const int *rows);

/* The linear warm-up of HEAD's weights (todd's WarmupScheduler):
 * min(step / steps, 1), 0 at step 0; 1 when steps <= 0. */
float kd_assist_warmup(int step, int steps);

#endif
