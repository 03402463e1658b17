/* Where a feature-distillation loss looks: spatial masks drawn from the
 * ground-truth boxes on one FPN level's grid, and the attention maps of a
 * feature. Shared by the methods and by the probes that show them.
 *
 * Masks are plain step tensors N,1,H,W with no gradient (constants of the
 * loss). Attention maps are ops on the tape: FGD's L_mask needs the
 * student's attention with its gradient. Crowd boxes mark nothing (mmdet
 * passes them to losses as gt_bboxes_ignore, not gt_bboxes). */
#ifndef KD_DISTILL_MASKS_H
#define KD_DISTILL_MASKS_H

#include "core/tensor.h"
#include "detect/targets.h"

/* The feature grid a mask is drawn on: n images, h x w cells of `stride`
 * input pixels. gt[n] holds boxes in input pixels (gt may be NULL: no boxes). */
typedef struct KdMaskGrid {
  int n, h, w, stride;
} KdMaskGrid;

/* ---- DeFeat (KD-METHODS 1.2) ---- */
/* The one level a box is drawn on: floor(log2(sqrt((x2-x1+1)(y2-y1+1)) /
 * finest_scale + 1e-6)) in float32 as the reference, clamped to
 * [0, nlev-1]; level 0 is the finest level given (P3 in our presets).
 * Objects of scale < 2*fs go to level 0, [2fs, 4fs) to level 1, ... */
int kd_defeat_level(const float *box, float finest_scale, int nlev);
/* Binary mask of the boxes assigned to `level`: cells [int(y1/s), int(y2/s))
 * x [int(x1/s), int(x2/s)) (truncation, exclusive end, clipped to the map);
 * a box whose range is empty on an axis marks the single cell
 * (int(y1/s), int(x1/s)) when that cell lies on the map. */
KdTensor *kd_mask_defeat(KdCtx *c, const KdGtImage *gt, KdMaskGrid g, int level, int nlev, float finest_scale);

/* ---- Gaussian (helper for methods that weight by box centrality) ---- */
/* max over boxes of exp(-dx^2/2sx^2 - dy^2/2sy^2) at cell centres
 * ((x+0.5)s, (y+0.5)s), with (dx, dy) from the box centre and
 * sx = sigma_ratio * box width, sy = sigma_ratio * box height (each at
 * least half a pixel). Values in [0, 1]. */
KdTensor *kd_mask_gaussian(KdCtx *c, const KdGtImage *gt, KdMaskGrid g, float sigma_ratio);

/* ---- FGD scale masks (KD-METHODS 2.4) ---- */
/* fg[n,y,x] = max over boxes covering the cell of 1/((hmax-hmin+1)(wmax-wmin+1)),
 * with wmin = floor(x1'), wmax = ceil(x2'), hmin = floor(y1'), hmax = ceil(y2'),
 * both ends inclusive, clipped to the map; bg = 1 where fg == 0, divided
 * by its per-image sum when that is > 0.
 * Box scaling: img_hw NULL divides by the stride (x' = x / s); img_hw =
 * {img_h, img_w} reproduces the FGD code (x' = x / img_w * W), which
 * differs only where the input was padded (not on our square inputs).
 * Returns 0, or -1 with the ctx error (allocation). */
int kd_mask_fgd(KdCtx *c, const KdGtImage *gt, KdMaskGrid g, const int *img_hw, KdTensor **fg, KdTensor **bg);

/* ---- attention (KD-METHODS 2.3), differentiable (fused ops) ---- */
/* x: N,C,H,W -> N,1,H,W:  H*W * softmax_{hw}(mean_c |x| / temp) */
KdTensor *kd_attention_spatial(KdCtx *c, KdTensor *x, float temp);
/* FRS's feature-richness mask of one level (docs/METHODS-FRS.md): from
 * the teacher's dense class logits t (N, A*K, H, W, read as data),
 * m[n,h,w] = max over the channels of sigmoid(t); N,1,H,W, *sum its sum. */
KdTensor *kd_mask_richness(KdCtx *c, const KdTensor *t, double *sum);
/* x: N,C,H,W -> N,C,1,1:  C * softmax_c(mean_{hw} |x| / temp) */
KdTensor *kd_attention_channel(KdCtx *c, KdTensor *x, float temp);

/* ---- the masked distance the masks weight, differentiable (fused op) ---- */
/* x, y: N,C,H,W; b, cw: N*C values (N,C,1,1) or NULL (0 / 1); pw: npw
 * (0..2) maps of N*H*W values (N,1,H,W). Returns {max(npw,1)}:
 *   out[k] = sum_{n,c,h,w} cw[n,c] * pw_k[n,h,w] * (x - y + b[n,c])^2
 * (npw 0: one unweighted sum). Gradients flow to x, y and b; cw and pw
 * are constants. One pass each way instead of the sub/square/mul/sum
 * chain and its temporaries. */
KdTensor *kd_sqdist_sums(KdCtx *c, KdTensor *x, KdTensor *y, KdTensor *b, KdTensor *cw, KdTensor *const *pw, int npw);

/* ---- CSGR's category semantic attention (catattn.c) [INFERRED] ---- */
/* A class whose cells cover the whole map has the map's mean as its
 * embedding, which per-image standardisation makes 0: its cosine is
 * rounding noise. Below this RMS per channel its attention is uniform. */
#define KD_CATATTN_FLAT 1e-4
/* Cells of class k's non-crowd boxes on one image's h x w grid of
 * `stride`: cells whose centre lies in a box ([x1, x2) x [y1, y2)), or a
 * box's centre cell (clipped) when no centre lies in it. Marks in[h*w]
 * (0/1) and returns the count. */
int kd_class_cells(const KdGtImage *im, int k, int h, int w, int stride, unsigned char *in);
/* One image's standardised feature x (C x H*W): e_k = mean of x over the
 * class's cells, a[p] = softmax_p(cos(x_p, e_k) / tau) (sums to 1; cosine
 * over max(|x_p| |e_k|, 1e-12)), in double. Returns 0; 1 when |e_k| <=
 * KD_CATATTN_FLAT * sqrt(C) (a uniform, 1 / HW); -1 when the class has no
 * cells or out of memory (a untouched). */
int kd_category_attn(const float *x, int C, int H, int W, const KdGtImage *im, int k, int stride, float tau,
                     double *a);

#endif
