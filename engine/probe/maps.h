/* The arithmetic of probe maps on plain float arrays: one image's feature
 * x is C x (H*W) (a slice of an N,C,H,W tensor). No tape, no allocation
 * beyond what is said; statistics in double. Kept apart from the prober so
 * each formula can be tested against a hand computation. */
#ifndef KD_PROBE_MAPS_H
#define KD_PROBE_MAPS_H

#include <stddef.h>

/* out[p] = mean_c x[c,p]^2 */
void kd_map_energy(const float *x, int C, int HW, float *out);
/* out[p] = mean_c (s[c,p] - t[c,p])^2 */
void kd_map_gap(const float *s, const float *t, int C, int HW, float *out);
/* out[p] = sqrt(sum_c g[c,p]^2) */
void kd_map_norm(const float *g, int C, int HW, float *out);
/* out[p] = max_a sigmoid(z[a,p]): an RPN's objectness over its A anchors */
void kd_map_objectness(const float *z, int A, int HW, float *out);

/* FGD's attention of |x| with temperature temp:
 * spatial out[p] = HW * softmax_p(mean_c |x[c,p]| / temp), sums to HW;
 * channel out[c] = C * softmax_c(mean_p |x[c,p]| / temp), sums to C. */
void kd_map_spatial_attn(const float *x, int C, int HW, float temp, float *out);
void kd_map_channel_attn(const float *x, int C, int HW, float temp, float *out);

/* The parameter-free criss-cross relation of pixel (h, w) on one image's
 * feature x (C x H*W): out[k] = softmax_k(x_u . x_{p_k} / (sqrt(C) tau))
 * over the L = H + W - 1 pixels of its column and row, in kd_cc_pixel's
 * order (core/ops.h), in double. */
void kd_map_cross_relation(const float *x, int C, int H, int W, int h, int w, float tau, float *out);

/* Cells of an H x W level (stride st) belonging to box b (x1,y1,x2,y2 in
 * input pixels): those whose centre ((x+0.5)st, (y+0.5)st) lies inside,
 * or, when none does, the cell holding the box centre. Sets x0..x1 / y0..y1
 * (inclusive) and returns the count (0 only for a box off the map). */
int kd_map_box_cells(const float *b, int st, int H, int W, int *x0, int *y0, int *x1, int *y1);
/* out[c] = mean of x[c,.] over the box's cells (zeros when none). */
void kd_map_roi_avg(const float *x, int C, int H, int W, int st, const float *b, float *out);

/* PCA of M rows of dimension C (M >= 2): mean [C], the two leading unit
 * axes [2*C] (sign fixed so the largest |entry| is positive, which keeps
 * the picture from flipping between snapshots), var [3] = variance along
 * them and in total. Returns -1 when out of memory. */
int kd_pca2(const float *X, int M, int C, float *mean, float *axes, float *var);
/* xy[2] = axes . (v - mean) */
void kd_pca2_project(const float *v, int C, const float *mean, const float *axes, float *xy);

/* Eigen-decomposition of a symmetric n x n matrix (cyclic Jacobi; a is
 * destroyed): eigenvalues descending in w, eigenvectors as rows of v. */
void kd_sym_eig(double *a, int n, double *w, double *v);

#endif
