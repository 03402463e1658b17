/* Differentiable ops. Each takes the step context, computes its output in
 * the arena and records a backward function on the tape (when grad mode is
 * on and an input requires grad). Shapes are written next to arguments.
 *
 * Errors are sticky (see tensor.h): a bad shape sets the ctx error naming
 * the op and the shapes, and the op returns NULL; every op returns NULL
 * when given NULL, so a forward is checked once at its end.
 *
 * Broadcasting (binary ops) follows NumPy: shapes are right-aligned and a
 * dim of size 1 stretches. Axis masks: bit i selects dim i of the tensor's
 * own ndim; reduced dims are kept with size 1. */
#ifndef KD_OPS_H
#define KD_OPS_H

#include "core/tensor.h"

/* ---------- convolution (conv.c) ---------- */
/* Output layout: FOLLOW takes the input's (blocked in, blocked out);
 * BLOCKED and PLAIN ask for one. Blocked outputs need Cout % 16 == 0 and
 * the oneDNN path; otherwise the output is plain. */
typedef enum KdConvLayout { KD_CONV_FOLLOW, KD_CONV_BLOCKED, KD_CONV_PLAIN } KdConvLayout;
typedef struct KdConvCfg {
  int stride, pad, dilation, groups; /* 0 means 1 for stride/dilation/groups */
  KdConvLayout layout;
} KdConvCfg;
/* x: N,Cin,H,W (either layout)  w: Cout,Cin/groups,kh,kw  b: Cout or NULL -> N,Cout,Ho,Wo */
KdTensor *kd_conv2d(KdCtx *c, KdTensor *x, KdTensor *w, KdTensor *b, KdConvCfg cfg);
/* Benchmarks: record the geometry of every conv forward while enabled. */
typedef struct KdConvShape {
  int n, cin, h, w, cout, k, stride, pad, dilation, groups, bias;
} KdConvShape;
void kd_conv_trace_enable(KdConvShape *buf, int cap);
int kd_conv_trace_disable(void); /* number recorded */
/* Which path runs convolutions, process-wide: oneDNN when the build has it
 * (meson -Dconv), unless the environment says KD_CONV=im2col. Tests and
 * benchmarks switch with kd_conv_set_backend (-1: not built in). */
typedef enum KdConvBackend { KD_CONV_IM2COL, KD_CONV_DNNL } KdConvBackend;
int kd_conv_set_backend(KdConvBackend b);
KdConvBackend kd_conv_backend(void);
const char *kd_conv_backend_name(void); /* "onednn" or "im2col" */

/* ---------- layout (layout.c) ---------- */
/* The blocked layout (KdTensor.blocked) keeps a network's activations in
 * the order oneDNN's convolutions read and write, so no reorder runs
 * between them. Element-wise ops, batchnorm, max pooling and nearest
 * upsampling work on it directly; every other op converts its input. */
int kd_layout_blockable(const KdTensor *x); /* 4-D with C % 16 == 0 */
/* Copies into the other layout (differentiable); x itself when it is
 * already there, or (to_blocked) when it cannot be blocked. */
KdTensor *kd_to_blocked(KdCtx *c, KdTensor *x);
KdTensor *kd_to_plain(KdCtx *c, KdTensor *x);

/* ---------- element-wise (eltwise.c) ---------- */
KdTensor *kd_relu(KdCtx *c, KdTensor *x);
KdTensor *kd_sigmoid(KdCtx *c, KdTensor *x);
KdTensor *kd_tanh(KdCtx *c, KdTensor *x);
KdTensor *kd_exp(KdCtx *c, KdTensor *x);
KdTensor *kd_log(KdCtx *c, KdTensor *x); /* x must be > 0 */
KdTensor *kd_abs(KdCtx *c, KdTensor *x); /* d|x|/dx = sign(x), 0 at 0 */
KdTensor *kd_sqrt(KdCtx *c, KdTensor *x);
KdTensor *kd_square(KdCtx *c, KdTensor *x);
KdTensor *kd_scale(KdCtx *c, KdTensor *x, float s);      /* s*x */
KdTensor *kd_add_scalar(KdCtx *c, KdTensor *x, float s); /* x+s */
KdTensor *kd_add(KdCtx *c, KdTensor *a, KdTensor *b);
KdTensor *kd_sub(KdCtx *c, KdTensor *a, KdTensor *b);
KdTensor *kd_mul(KdCtx *c, KdTensor *a, KdTensor *b);
KdTensor *kd_div(KdCtx *c, KdTensor *a, KdTensor *b);
/* In-place-free fused relu(a + b) for residual blocks (same shapes). */
KdTensor *kd_add_relu(KdCtx *c, KdTensor *a, KdTensor *b);
/* A constant copy with no gradient path (teacher targets, masks). */
KdTensor *kd_detach(KdCtx *c, KdTensor *x);

/* ---------- normalisation (norm.c) ---------- */
/* x: N,C,H,W; gamma, beta: C (either may be NULL = 1 / 0);
 * running_mean/var: C buffers. training=1: batch statistics (biased var for
 * normalising, unbiased for the running update, as PyTorch) and
 * running = (1-momentum)*running + momentum*batch. training=0: running stats. */
KdTensor *kd_batchnorm(KdCtx *c, KdTensor *x, KdTensor *gamma, KdTensor *beta, KdTensor *running_mean,
                       KdTensor *running_var, int training, float momentum, float eps);
/* x: N,C,H,W; C % groups == 0; gamma, beta: C or NULL. LayerNorm over
 * (C,1,1) is groups=1 on an N,C,1,1 tensor. */
KdTensor *kd_groupnorm(KdCtx *c, KdTensor *x, int groups, KdTensor *gamma, KdTensor *beta, float eps);

/* ---------- reductions and softmax (reduce.c, softmax.c) ---------- */
KdTensor *kd_sum(KdCtx *c, KdTensor *x, unsigned axes);
KdTensor *kd_mean(KdCtx *c, KdTensor *x, unsigned axes);
KdTensor *kd_sum_all(KdCtx *c, KdTensor *x);  /* -> shape {1} */
KdTensor *kd_mean_all(KdCtx *c, KdTensor *x); /* -> shape {1} */
KdTensor *kd_softmax(KdCtx *c, KdTensor *x, int axis);
KdTensor *kd_log_softmax(KdCtx *c, KdTensor *x, int axis);

/* ---------- resampling and pooling (pool.c) ---------- */
/* x: N,C,H,W -> N,C,H*f,W*f */
KdTensor *kd_upsample_nearest(KdCtx *c, KdTensor *x, int factor);
/* Nearest to a given size, PyTorch's rule: src = floor(dst * in / out). */
KdTensor *kd_upsample_nearest_to(KdCtx *c, KdTensor *x, int h, int w);
/* Padding counts as -inf (max) / as zeros included in the count (avg),
 * as PyTorch's defaults. Output size floor((H + 2p - k)/s) + 1. */
KdTensor *kd_maxpool2d(KdCtx *c, KdTensor *x, int k, int stride, int pad);
KdTensor *kd_avgpool2d(KdCtx *c, KdTensor *x, int k, int stride, int pad);
KdTensor *kd_global_avgpool(KdCtx *c, KdTensor *x); /* -> N,C,1,1 */

/* ---------- RoI Align (roi_align.c) ---------- */
/* torchvision.ops.roi_align. feat: N,C,H,W (either layout); rois: [nrois,5]
 * rows (image index, x1, y1, x2, y2) in input pixels, mapped to the map by
 * spatial_scale (1/stride); aligned=1 shifts by half a pixel (Detectron2),
 * Faster R-CNN uses 0 (RoIs then count as at least 1x1 cells).
 * sampling_ratio > 0: that many samples a bin side; <= 0: ceil(RoI size /
 * output size) per RoI. Samples off the map by more than a cell are 0.
 * -> nrois,C,out_h,out_w. nrois >= 1; rois is read during the call only.
 * Backward is deterministic: the same bits for any number of threads. */
KdTensor *kd_roi_align(KdCtx *c, KdTensor *feat, const float *rois, int nrois, int out_h, int out_w, float spatial_scale,
                       int sampling_ratio, int aligned);
/* Several maps at once (an FPN): RoI r pools from feats[level[r]] at
 * scales[level[r]], as roi_align on that level alone; the levels share N
 * and C and the output stays in RoI order. */
#define KD_ROI_MAX_LEVELS 8
KdTensor *kd_roi_align_levels(KdCtx *c, KdTensor *const *feats, const float *scales, int nlev, const float *rois,
                              const int *level, int nrois, int out_h, int out_w, int sampling_ratio, int aligned);

/* ---------- criss-cross attention (criss_cross.c) ---------- */
/* CCNet (Huang et al., ICCV 2019): pixel u = (h, w) attends to the
 * L = H + W - 1 pixels of its column and row, itself once, in mmcv's
 * order (its column branch masks the pixel itself, its row branch keeps
 * it): k < H-1 is the column pixel (k < h ? k : k + 1, w), k >= H-1 the
 * row pixel (h, k - (H-1)); kd_cc_pixel maps k to that pixel. Memory
 * O(N L H W), no HW x HW matrix; forward and backward give the same bits
 * for any number of threads. */
#define KD_CC_LEN(h, w) ((h) + (w) - 1)
/* q, k: N,Cq,H,W -> N,L,H,W:  e[n,k,u] = sum_c q[n,c,u] k[n,c,p_k(u)] */
KdTensor *kd_cc_energy(KdCtx *c, KdTensor *q, KdTensor *k);
/* attn: N,L,H,W  v: N,C,H,W -> N,C,H,W:  out[n,c,u] = sum_k attn[n,k,u] v[n,c,p_k(u)] */
KdTensor *kd_cc_aggregate(KdCtx *c, KdTensor *attn, KdTensor *v);
/* aggregate(softmax_k(scale * energy(q, k)), v); *attn (when not NULL)
 * gets the attention weights N,L,H,W, on the tape. */
KdTensor *kd_criss_cross(KdCtx *c, KdTensor *q, KdTensor *k, KdTensor *v, float scale, KdTensor **attn);
/* The pixel (ph, pw) of entry k of pixel (h, w)'s cross. */
void kd_cc_pixel(int H, int W, int h, int w, int k, int *ph, int *pw);

/* ---------- multi-head attention (attention.c) ---------- */
/* torch.nn.MultiheadAttention between its projections: q: N,Kq,E  k, v:
 * N,L,E, E % heads == 0, head h the columns [h*E/heads, (h+1)*E/heads).
 * key_pad [N*L] (1 = padding, weight 0) or NULL. -> N,Kq,E (heads
 * concatenated). *logits (when not NULL) gets the scaled pre-softmax
 * scores N,heads,Kq,L with -inf at padding, no gradient. A query with every
 * key padded gets 0. Deterministic for any number of threads. */
KdTensor *kd_mha_attend(KdCtx *c, KdTensor *q, KdTensor *k, KdTensor *v, int heads, const unsigned char *key_pad,
                        float scale, KdTensor **logits);

/* ---------- linear algebra (matmul.c) ---------- */
/* a: M,K (or B,M,K)  b: K,N (or B,K,N; a 2-D b is shared by every batch).
 * trans_a / trans_b transpose the last two dims first. */
KdTensor *kd_matmul(KdCtx *c, KdTensor *a, KdTensor *b, int trans_a, int trans_b);

/* ---------- shape (shape.c) ---------- */
/* Same data, new shape (numel must match). One dim may be -1. */
KdTensor *kd_reshape(KdCtx *c, KdTensor *x, int ndim, const int *shape);
/* out.shape[i] = x.shape[perm[i]] */
KdTensor *kd_permute(KdCtx *c, KdTensor *x, const int *perm);
KdTensor *kd_transpose(KdCtx *c, KdTensor *x, int d0, int d1);
/* All inputs agree except along axis. */
KdTensor *kd_concat(KdCtx *c, KdTensor *const *xs, int n, int axis);
KdTensor *kd_slice(KdCtx *c, KdTensor *x, int axis, int start, int len);
/* out[i] = flat(x)[idx[i]], out shape {n}. Indices are checked. */
KdTensor *kd_gather(KdCtx *c, KdTensor *x, const int *idx, int n);

#endif
