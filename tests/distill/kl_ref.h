/* The reference temperature KL of the logit-level distillation tests
 * (logit KD, LD), in double. Header-only, tests only. */
#ifndef KD_TEST_KL_REF_H
#define KD_TEST_KL_REF_H

#include <math.h>
#include <stddef.h>

/* KL(softmax(t/T) || softmax(s/T)) over K values `step` apart. */
static inline double kl_ref(const float *t, const float *s, int K, size_t step, double T) {
  double zt = 0, zs = 0, mt = -1e30, ms = -1e30, kl = 0;
  for (int k = 0; k < K; k++) mt = fmax(mt, t[k * step] / T), ms = fmax(ms, s[k * step] / T);
  for (int k = 0; k < K; k++) zt += exp(t[k * step] / T - mt), zs += exp(s[k * step] / T - ms);
  for (int k = 0; k < K; k++) {
    double lq = t[k * step] / T - mt - log(zt), lp = s[k * step] / T - ms - log(zs);
    kl += exp(lq) * (lq - lp);
  }
  return kl;
}

#endif
