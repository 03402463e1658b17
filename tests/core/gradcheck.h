/* Finite-difference gradient checks for ops and losses.
 *
 * A case is a forward function f(inputs) -> tensor plus its inputs. The
 * harness draws a fixed random R shaped like the output and compares
 *   analytic: kd_backward of L = sum(f(x) * R)   (L accumulated in double)
 *   numeric:  (L(x + e) - L(x - e)) / (2e) per input element, in double,
 *             with e the float step actually taken ((float)(x+eps) - x).
 * An element passes when |a - n| <= atol + rtol * max(|a|, |n|).
 *
 * Defaults (float32 forward, inputs ~N(0,1)): eps = 1e-2, atol = 1e-3,
 * rtol = 1e-2. Central differences are exact up to eps^2 * f'''/6 (~2e-5
 * here); the rest is float rounding in the forward, which does not cancel
 * between L(x+e) and L(x-e) and is divided by 2e. See GC_DEFAULT_*.
 *
 * Usage:
 *   Gc *g = gc_new("conv2d/stride2", fwd, &cfg);
 *   gc_input(g, GC_CHECK, 4, (int[]){2, 3, 7, 7});
 *   gc_input(g, GC_CHECK | GC_PARAM, 4, (int[]){4, 3, 3, 3});
 *   failures += gc_run(g);   // prints one line, frees g
 * Inputs are wrapped afresh for every evaluation (the ctx is reset between
 * them), so the forward function may build anything from them. */
#ifndef KD_TEST_GRADCHECK_H
#define KD_TEST_GRADCHECK_H

#include "core/ops.h"

#define GC_DEFAULT_EPS 1e-2
#define GC_DEFAULT_ATOL 1e-3
#define GC_DEFAULT_RTOL 1e-2
#define GC_MAX_IN 8

enum {
  GC_CONST = 0,      /* no gradient (masks, targets, BN running stats) */
  GC_CHECK = 1 << 0, /* requires grad; its gradient is compared */
  GC_PARAM = 1 << 1, /* a parameter-like tensor (is_param, persistent grad) */
  /* Initial values (default N(0,1)); the returned pointer may be edited. */
  GC_AWAY_ZERO = 1 << 4, /* |x| in [0.2, 2]: for kinks at 0 (relu, abs) */
  GC_POSITIVE = 1 << 5,  /* uniform [0.5, 2]: log, sqrt, divisors */
  GC_DISTINCT = 1 << 6,  /* a shuffle of values 0.1 apart: max pool without ties */
};

typedef struct Gc Gc;
typedef KdTensor *(*GcForwardFn)(KdCtx *c, KdTensor **in, void *user);

Gc *gc_new(const char *name, GcForwardFn fn, void *user);
/* Adds the next input; returns its values (owned by g) for editing. */
float *gc_input(Gc *g, int flags, int ndim, const int *shape);
/* Overrides eps / atol / rtol for this case (any value <= 0 keeps the default). */
void gc_tol(Gc *g, double eps, double atol, double rtol);
/* Runs the check, prints one line (and the worst elements on failure),
 * frees g. Returns the number of failing elements (0 = pass), or 1 when the
 * forward itself failed. */
int gc_run(Gc *g);

/* Largest err / (atol + rtol*max(|a|,|n|)) seen by any gc_run so far:
 * how close the suite came to its tolerance. */
double gc_worst_ratio(void);

#endif
