/* Balanced sampler: quotas (positives capped by the fraction, negatives
 * filling the rest, both capped by what exists), ignored anchors never
 * drawn, the same seed giving the same sample, uniform draws (each
 * candidate's frequency over many seeds), and bad settings refused. */
#include <stdlib.h>

#include "check.h"
#include "detect/assign.h"
#include "detect/sampler.h"

enum { A = 40 };

static int count(const signed char *sel, int n, int v) {
  int k = 0;
  for (int i = 0; i < n; i++) k += sel[i] == v;
  return k;
}

static void test_quotas(void) {
  int match[A];
  signed char sel[A];
  KdRng r;
  KdError err = {0};
  /* 10 positives, 20 negatives, 10 ignored */
  for (int i = 0; i < A; i++) match[i] = i < 10 ? i % 3 : i < 30 ? KD_MATCH_NEG : KD_MATCH_IGNORE;
  kd_rng_seed(&r, 1, 2);
  int np = -1;
  /* batch 16 at 0.5: 8 positives, 8 negatives */
  CHECK(kd_sample_balanced(match, A, 16, 0.5f, &r, sel, &np, &err) == 16 && np == 8);
  CHECK(count(sel, A, 1) == 8 && count(sel, A, 0) == 8);
  for (int i = 0; i < A; i++) {
    if (sel[i] == 1) CHECK(match[i] >= 0);
    if (sel[i] == 0) CHECK(match[i] == KD_MATCH_NEG);
  }
  for (int i = 30; i < A; i++) CHECK(sel[i] == -1);
  /* batch 256 at 0.5 (the RPN's): every positive, negatives fill up to all 20 */
  CHECK(kd_sample_balanced(match, A, 256, 0.5f, &r, sel, &np, &err) == 30 && np == 10);
  /* batch 8 at 0.25 (the RoI head's fraction): floor(2) positives, 6 negatives */
  CHECK(kd_sample_balanced(match, A, 8, 0.25f, &r, sel, &np, &err) == 8 && np == 2);
  /* few negatives: batch 30 at 0.1 takes 3 positives and all 20 negatives */
  CHECK(kd_sample_balanced(match, A, 30, 0.1f, &r, sel, &np, &err) == 23 && np == 3);
  /* no candidates at all (an image without GT has only negatives; none here) */
  for (int i = 0; i < A; i++) match[i] = KD_MATCH_IGNORE;
  CHECK(kd_sample_balanced(match, A, 16, 0.5f, &r, sel, &np, &err) == 0 && np == 0 && count(sel, A, -1) == A);
  CHECK(kd_sample_balanced(match, 0, 16, 0.5f, &r, sel, &np, &err) == 0 && np == 0);
}

static void test_seeded_and_uniform(void) {
  int match[A];
  signed char a[A], b[A];
  KdError err = {0};
  for (int i = 0; i < A; i++) match[i] = i < 10 ? 0 : KD_MATCH_NEG;
  KdRng r1, r2;
  kd_rng_seed(&r1, 7, 1), kd_rng_seed(&r2, 7, 1);
  kd_sample_balanced(match, A, 8, 0.5f, &r1, a, NULL, &err);
  kd_sample_balanced(match, A, 8, 0.5f, &r2, b, NULL, &err);
  for (int i = 0; i < A; i++) CHECK(a[i] == b[i]);
  /* 4 of 10 positives and 4 of 30 negatives per draw: over 6000 draws each
   * positive is expected 2400 times (sd 38), each negative 800 (sd 26) */
  int hits[A] = {0};
  KdRng r;
  kd_rng_seed(&r, 3, 3);
  for (int t = 0; t < 6000; t++) {
    kd_sample_balanced(match, A, 8, 0.5f, &r, a, NULL, &err);
    for (int i = 0; i < A; i++) hits[i] += a[i] >= 0;
  }
  for (int i = 0; i < A; i++) {
    int want = i < 10 ? 2400 : 800;
    CHECK(abs(hits[i] - want) < 6 * (i < 10 ? 38 : 26));
  }
}

static void test_bad(void) {
  int match[1] = {0};
  signed char sel[1];
  KdRng r;
  kd_rng_seed(&r, 1, 1);
  KdError err = {0};
  CHECK(kd_sample_balanced(match, 1, 0, 0.5f, &r, sel, NULL, &err) == -1 && err.msg[0]);
  CHECK(kd_sample_balanced(match, 1, 4, 1.5f, &r, sel, NULL, &err) == -1);
  CHECK(kd_sample_balanced(match, 1, 4, -0.1f, &r, sel, NULL, &err) == -1);
}

int main(void) {
  test_quotas();
  test_seeded_and_uniform();
  test_bad();
  return check_status("test_sampler");
}
