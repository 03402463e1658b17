/* Sine position embeddings (no gradient: fixed functions of positions). */
#ifndef KD_POSEMBED_H
#define KD_POSEMBED_H

/* DETR's PositionEmbeddingSine(npf, temperature, normalize=True, scale 2pi)
 * of one H x W map whose top-left hv x wv cells are the image (the rest
 * padding): y = min(row + 1, hv) / (hv + 1e-6) * 2pi, x likewise, and with
 * t_i = temperature^(2 floor(i/2) / npf) the features
 *   [ y/t_0 sin, y/t_1 cos, y/t_2 sin, ... (npf) | the same for x (npf) ]
 * (interleaved sin/cos, y block first). out: [H*W, 2*npf], row-major cells. */
void kd_pos_sine_2d(float *out, int H, int W, int hv, int wv, int npf, float temperature);
/* One coordinate x (in [0, 1]) as ICD's instance encoder embeds it: with
 * t_i = temperature^(2 floor(i/2) / nf), i = 0..nf-1, the nf/2 values
 * sin(2pi x / t_i) of the even i, then the nf/2 values cos(2pi x / t_i) of
 * the odd i (concatenated, not interleaved). out: [nf], nf even. */
void kd_pos_sine_1d(float *out, float x, int nf, float temperature);

#endif
