/* Series processing for curve plots: smoothing (TensorBoard's debiased EMA
 * or a trailing moving average) and per-pixel min/max thinning. Smoothing
 * runs on the full series; thinning runs after it and only picks which
 * samples to draw, so the raw data is never altered. No Cairo here. */
#ifndef KD_SERIES_H
#define KD_SERIES_H

#include <stddef.h>

typedef enum KdSmoothKind {
  KD_SMOOTH_NONE,
  KD_SMOOTH_EMA,  /* debiased exponential moving average, TensorBoard's */
  KD_SMOOTH_MEAN  /* trailing moving average over `window` samples */
} KdSmoothKind;

typedef struct KdSmooth {
  KdSmoothKind kind;
  double weight; /* EMA weight in [0, 1), TensorBoard's slider (e.g. 0.6) */
  int window;    /* moving-average length in samples (>= 1) */
} KdSmooth;

/* out[i] = sum_{j<=i} w^(i-j) (1-w) y_j / (1 - w^(i+1)), counting only finite
 * y_j; a non-finite y_i is passed through (as TensorBoard does), and a
 * constant series is returned unchanged. out may equal y. */
void kd_series_ema(const double *y, size_t n, double weight, double *out);
/* out[i] = mean of the finite y_j for j in (i-window, i]; non-finite y_i is
 * passed through. out must not alias y. */
void kd_series_moving_average(const double *y, size_t n, int window, double *out);
/* Applies s to y into out (a copy when s is NULL or KD_SMOOTH_NONE). out
 * must not alias y. */
void kd_series_smooth(const KdSmooth *s, const double *y, size_t n, double *out);

/* Where smoothing restarts: the index of the first sample of each segment
 * after the first, for a series whose steps x are ascending and live
 * changes at steps breaks[] (any order). A change logged at step b applies
 * from the next step on, so its segment starts at the first sample with
 * x > b; breaks that start no sample (before the first, after the last, or
 * two in one gap) give one boundary. starts needs room for nbreaks
 * entries; returns how many were written, ascending. */
size_t kd_series_segments(const double *x, size_t n, const double *breaks, int nbreaks,
                          size_t *starts);
/* kd_series_smooth run afresh on each segment (boundaries from
 * kd_series_segments), so a change is not smeared back over the steps
 * before it nor its effect delayed by the smoother's memory. out must not
 * alias y. */
void kd_series_smooth_segments(const KdSmooth *s, const double *y, size_t n, const size_t *starts,
                               size_t nstarts, double *out);

/* Picks the samples worth drawing when many fall into one pixel column:
 * px[i] is sample i's position in device units (non-decreasing for a time
 * series), bucket the column width. For each run of consecutive samples in
 * one column it keeps the first, the last, the minimum and the maximum, in
 * index order, so a single-sample spike survives at any width. Non-finite
 * samples are kept (they break the line). idx needs room for n entries;
 * returns how many were written. */
size_t kd_series_thin_minmax(const double *px, const double *y, size_t n, double bucket,
                             size_t *idx);

#endif
