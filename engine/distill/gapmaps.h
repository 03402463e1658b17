/* The per-pixel gap of a student/teacher pair under a method's own
 * normalisation, on one image's C x (H*W) slice of an N,C,H,W tensor.
 * What PKD and CWD show in the probe (their KdMethod.probe_level). */
#ifndef KD_DISTILL_GAPMAPS_H
#define KD_DISTILL_GAPMAPS_H

/* PKD's normalisation statistics of an N,C,HW tensor: per channel over its
 * N*HW values, mean and 1 / (unbiased std + eps). */
void kd_map_channel_stats(const float *x, int N, int C, int HW, float eps, float *mean, float *inv_std);
/* out[p] = mean_c (Zs - Zt)^2, Z = (x - mean_c) * inv_std_c. */
void kd_map_gap_standardised(const float *s, const float *t, int C, int HW, const float *ms, const float *is,
                             const float *mt, const float *it, float *out);
/* CWD's per-pixel KL share: out[p] = tau^2 / C * sum_c Pt (log Pt - log Ps),
 * P[c,.] = softmax over the HW positions of x[c,.] / tau. */
void kd_map_gap_cwd(const float *s, const float *t, int C, int HW, float tau, float *out);

#endif
