/* COCO evaluation vs coco_oracle.py (COCOeval restated in numpy) on random
 * synthetic data: 60 images with sparse ids, 7 categories (one with only
 * crowd GT, one with no GT at all), boxes of every area range, crowd
 * regions with detections inside, jittered true positives, duplicates,
 * false positives, images without GT, one image with more than 100
 * detections of a category, and (every other trial) scores rounded to
 * 0.05 so that ties exercise the stable orderings. All 12 numbers and the
 * per-category AP must agree to 1e-6 (they agree to ~1e-15). Skips (77)
 * without numpy. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "core/rng.h"
#include "detect/cocoeval.h"
#include "oracle.h"

enum { NI = 60, NC = 7, MAXG = 2000, MAXD = 6000 };

static KdCocoGt gt[MAXG];
static KdCocoDet dt[MAXD];
static int ng, nd;

static void random_box(KdRng *r, double *b) {
  /* sizes from 4 to 250 px: small, medium and large areas */
  double s = exp(kd_rng_range(r, (float)log(4.0), (float)log(250.0)));
  double ar = exp(kd_rng_range(r, -0.7f, 0.7f));
  b[2] = s * ar, b[3] = s / ar;
  b[0] = kd_rng_range(r, 0, 600), b[1] = kd_rng_range(r, 0, 400);
}

static double score(KdRng *r, int quantize) {
  double s = kd_rng_uniform(r);
  return quantize ? floor(s * 20.0) / 20.0 : s;
}

static void make_data(KdRng *r, int64_t *imgs, int quantize) {
  ng = nd = 0;
  for (int i = 0; i < NI; i++) imgs[i] = 1000 + 37 * (int64_t)((i * 17) % NI) + (i % 3) * 100000;
  for (int i = 0; i < NI; i++) {
    int64_t id = imgs[i];
    int nobj = (i % 7 == 3) ? 0 : (int)kd_rng_below(r, 9);
    for (int j = 0; j < nobj && ng < MAXG; j++) {
      KdCocoGt *g = &gt[ng++];
      g->image_id = id;
      g->category = (int)kd_rng_below(r, 5); /* categories 0..4 */
      random_box(r, g->bbox);
      g->area = g->bbox[2] * g->bbox[3] * kd_rng_range(r, 0.5f, 1.0f); /* mask area < box area */
      g->iscrowd = kd_rng_uniform(r) < 0.1f;
      if (g->iscrowd) g->bbox[2] *= 2, g->bbox[3] *= 2;
      /* detections of this object: none, one, or duplicates */
      int ndet = g->iscrowd ? (int)kd_rng_below(r, 4) : (kd_rng_uniform(r) < 0.15f ? 0 : 1 + (kd_rng_uniform(r) < 0.3f));
      for (int k = 0; k < ndet && nd < MAXD; k++) {
        KdCocoDet *d = &dt[nd++];
        d->image_id = id;
        d->category = kd_rng_uniform(r) < 0.9f ? g->category : (int)kd_rng_below(r, NC);
        double jit = kd_rng_range(r, 0.0f, 0.35f);
        for (int c = 0; c < 2; c++)
          d->bbox[c] = g->bbox[c] + jit * g->bbox[2 + c] * kd_rng_range(r, -1, 1) + (g->iscrowd ? 0.3 * g->bbox[2 + c] : 0);
        for (int c = 2; c < 4; c++) d->bbox[c] = g->bbox[c] * (g->iscrowd ? 0.3 : exp(kd_rng_range(r, -jit, jit)));
        d->score = score(r, quantize);
      }
    }
    /* one category-6 GT: it has crowd-only GT (category 5 has none at all) */
    if (i % 11 == 5 && ng < MAXG) {
      KdCocoGt *g = &gt[ng++];
      *g = (KdCocoGt){.image_id = id, .category = 6, .iscrowd = 1};
      random_box(r, g->bbox);
      g->area = g->bbox[2] * g->bbox[3];
    }
    int nfp = (int)kd_rng_below(r, 6);
    for (int k = 0; k < nfp && nd < MAXD; k++) {
      KdCocoDet *d = &dt[nd++];
      d->image_id = id;
      d->category = (int)kd_rng_below(r, NC);
      random_box(r, d->bbox);
      d->score = score(r, quantize) * 0.8;
    }
  }
  /* one image with 130 detections of category 0 (cut at 100) */
  for (int k = 0; k < 130 && nd < MAXD; k++) {
    KdCocoDet *d = &dt[nd++];
    d->image_id = imgs[2];
    d->category = 0;
    random_box(r, d->bbox);
    d->score = score(r, quantize);
  }
  /* shuffle detections: input order must not matter beyond ties */
  for (int k = nd - 1; k > 0; k--) {
    int j = (int)kd_rng_below(r, (uint32_t)k + 1);
    KdCocoDet t = dt[k];
    dt[k] = dt[j];
    dt[j] = t;
  }
}

int main(void) {
  KdRng r;
  kd_rng_seed(&r, 4242, 1);
  int64_t imgs[NI];
  double *buf = malloc(sizeof(double) * 8 * (MAXG > MAXD ? MAXG : MAXD));
  int rc = 0;
  for (int trial = 0; trial < 4 && rc == 0; trial++) {
    make_data(&r, imgs, trial & 1);
    double stats[KD_COCO_NSTATS], cap[NC];
    KdError err = {{0}};
    CHECK_MSG(kd_coco_eval(imgs, NI, NC, gt, ng, dt, nd, stats, cap, &err) == 0, "%s", err.msg);
    CHECK(cap[5] == -1.0 && cap[6] == -1.0);
    CHECK(stats[KD_COCO_AP] > 0.05 && stats[KD_COCO_AP] < 0.95);
    Oracle o;
    CHECK(oracle_open(&o) == 0);
    double ids[NI], nc = NC;
    for (int i = 0; i < NI; i++) ids[i] = (double)imgs[i];
    oracle_d(&o, "img", ids, NI);
    oracle_d(&o, "ncat", &nc, 1);
    for (int j = 0; j < ng; j++) {
      double *v = buf + 8 * j;
      v[0] = (double)gt[j].image_id, v[1] = gt[j].category, v[6] = gt[j].area, v[7] = gt[j].iscrowd;
      for (int c = 0; c < 4; c++) v[2 + c] = gt[j].bbox[c];
    }
    oracle_d(&o, "gt", buf, 8 * (size_t)ng);
    for (int j = 0; j < nd; j++) {
      double *v = buf + 7 * j;
      v[0] = (double)dt[j].image_id, v[1] = dt[j].category, v[6] = dt[j].score;
      for (int c = 0; c < 4; c++) v[2 + c] = dt[j].bbox[c];
    }
    oracle_d(&o, "dt", buf, 7 * (size_t)nd);
    rc = oracle_run(&o, "coco_oracle.py", "eval");
    if (rc == 0) {
      size_t n;
      const double *ref = oracle_get(&o, "stats", &n);
      CHECK(ref && n == KD_COCO_NSTATS);
      double worst = 0;
      for (size_t i = 0; ref && i < n; i++) {
        CHECK_MSG(fabs(stats[i] - ref[i]) <= 1e-6, "trial %d %s: %.12g vs oracle %.12g", trial,
                  kd_coco_stat_names[i], stats[i], ref[i]);
        worst = fmax(worst, fabs(stats[i] - ref[i]));
      }
      const double *rcap = oracle_get(&o, "cat_ap", &n);
      CHECK(rcap && n == NC);
      for (size_t k = 0; rcap && k < n; k++) {
        CHECK_MSG(fabs(cap[k] - rcap[k]) <= 1e-6, "trial %d category %zu AP %.12g vs %.12g", trial, k, cap[k], rcap[k]);
        worst = fmax(worst, fabs(cap[k] - rcap[k]));
      }
      printf("trial %d: %d GT, %d detections, AP %.4f AP50 %.4f APs %.4f ARl %.4f, max |diff| %.2g\n", trial, ng, nd,
             stats[0], stats[1], stats[3], stats[11], worst);
    } else {
      CHECK_MSG(rc == 77, "oracle failed with status %d", rc);
    }
    oracle_close(&o);
  }
  free(buf);
  if (rc == 77 && check_failures == 0) {
    printf("test_cocoeval_oracle: skipped (no numpy)\n");
    return 77;
  }
  return check_status("test_cocoeval_oracle");
}
