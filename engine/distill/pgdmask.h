/* PGD's prediction-guided masks (Yang et al., ECCV 2022; KD-METHODS §9.2
 * and its §10b corrections), as PGWAnchorModule and get_back_weight of
 * ChenhongyiYang/PGD compute them, for single-anchor (GFL) teachers.
 * Shared by the PGD method (pgd.c) and by fitnet.mask=pgd.
 *
 * Per image, over the anchors of every level given (one per location, its
 * point (x, y) * stride, as the GFL head's anchors), and per non-crowd GT g
 * of class k:
 *   q_a = sigmoid(teacher cls_a[k])^(1 - xi) * IoU(teacher box_a, g)^xi,
 * the teacher's box decoded from its side distributions (softmax
 * expectation of each side x stride from the point). The top-k anchors by
 * q (all levels together; ties: the lower anchor index) get
 *   w_a = exp(-1/2 (c_a - mu)^T Sigma^-1 (c_a - mu)),
 * with mu and Sigma the maximum-likelihood mean and (biased) covariance of
 * their centres c_a each moved by (u - 0.5) * 0.1 px (u uniform in [0, 1):
 * the official jitter, there unseeded, here given), Sigma^-1 the adjugate
 * over (det + 1e-10); w is evaluated at the unmoved centres, kept only where
 * the centre lies strictly inside g (by more than 1e-10), and the mask is
 * the max over GTs; every other anchor is 0. top-k 1 gives weight 1. */
#ifndef KD_DISTILL_PGDMASK_H
#define KD_DISTILL_PGDMASK_H

#include "core/tensor.h"
#include "detect/targets.h"
#include "distill/masks.h"
#include "distill/method.h"

/* One level of the teacher's outputs. */
typedef struct KdPgdLevel {
  int stride;
  const KdTensor *cls;  /* N,K,H,W class logits */
  const KdTensor *dist; /* N,4(R+1),H,W side logits (channel side*(R+1) + bin, sides l,t,r,b in strides) */
} KdPgdLevel;

/* How many draws one mask takes: 2 * topk per non-crowd GT box of the n images. */
int kd_pgd_draws(const KdGtImage *gt, int n, int topk);
/* The foreground mask of every level (masks[l]: N,1,H,W on the level's
 * grid, no gradient). u: kd_pgd_draws(gt, n, topk) draws in [0, 1), in the
 * order image, GT (non-crowd, in order), candidate (by descending q), x
 * then y. -1 with the ctx error naming what is wrong. */
int kd_pgd_fg_masks(KdCtx *c, const KdPgdLevel *lv, int nlev, int n, const KdGtImage *gt, float xi, int topk,
                    const float *u, KdTensor **masks);
/* The background mask (get_back_weight): 1 where the cell's point
 * (x, y) * stride lies strictly inside no non-crowd GT box, else 0. */
KdTensor *kd_pgd_bg_mask(KdCtx *c, const KdGtImage *gt, KdMaskGrid g);

/* The masks of a step for the paired levels of in (per pair k; any of cls,
 * reg, bg may be NULL: not wanted): the precomputed ones of in->pgd_in
 * when given, else from the teacher's "cls" and "dist" and the GT, with
 * the Gaussian fits' draws from in->pgd_in->jitter (cls mask's, then reg
 * mask's) or from the step's stream (in->rng; without one a stream of
 * train.seed and the step). -1 with the ctx error naming method. */
int kd_pgd_masks(const KdDistillInputs *in, const char *method, float xi_cls, float xi_reg, int topk, KdTensor **cls,
                 KdTensor **reg, KdTensor **bg);

#endif
