/* The grid a setting's slider moves on (KdParamDesc.grid): a drag lands
 * only on these values, so the run log never holds a value like 0.0528937
 * that no one chose. Values are built decimal-exact (the double nearest
 * to 0.05, not 5 * 0.01), so a grid value prints short and reads back
 * equal. Typed values need not be on the grid. */
#ifndef KD_PARAM_GRID_H
#define KD_PARAM_GRID_H

#include "core/config.h"

#define KD_GRID_MAX_MANTISSAS 16

/* The grid of d made explicit: *step > 0 for multiples of it, else the
 * n mantissas of a decade into m (ascending, in [1, 10)). -1 with a
 * message naming the key when d's grid is malformed. */
int kd_grid_resolve(const KdParamDesc *d, double *step, double m[KD_GRID_MAX_MANTISSAS], int *n, KdError *err);
/* The slider's low end: min, or on a log slider whose min is <= 0,
 * max / 1e6 (0 itself stays reachable: see kd_grid_snap). */
double kd_grid_low(const KdParamDesc *d);
/* The grid value in [min, max] nearest to v (in log distance on a log
 * slider, where 0 itself is a grid value when min is 0: v <= 0 gives it). */
double kd_grid_snap(const KdParamDesc *d, double v);
/* The next grid value above (dir > 0) or below (dir < 0) v, clamped to
 * [min, max]: what one step of a spin button or arrow key moves to. */
double kd_grid_next(const KdParamDesc *d, double v, int dir);
/* 1 when v is exactly a grid value of d. */
int kd_grid_contains(const KdParamDesc *d, double v);

#endif
