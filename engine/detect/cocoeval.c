/* COCO bbox evaluation (see cocoeval.h). The structure differs from
 * pycocotools (buckets by category, results folded per category as soon as
 * they are known) but every comparison, ordering and tie rule is the one
 * of COCOeval.evaluateImg / accumulate / summarize, and the arithmetic
 * (bbIou of maskApi.c, cumulative sums, np.spacing(1)) is the same, so the
 * numbers agree to the last bits. */
#include "detect/cocoeval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NT 10       /* IoU thresholds .50:.05:.95 */
#define NR 101      /* recall points 0:.01:1 */
#define NA 4        /* area ranges all, small, medium, large */
#define NM 3        /* max detections 1, 10, 100 */
#define MAXDET 100

const char *const kd_coco_stat_names[KD_COCO_NSTATS] = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                                        "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

static const double area_lo[NA] = {0.0, 0.0, 32.0 * 32.0, 96.0 * 96.0};
static const double area_hi[NA] = {1e10, 32.0 * 32.0, 96.0 * 96.0, 1e10};
static const int max_dets[NM] = {1, 10, MAXDET};

enum { F_FP = 0, F_TP = 1, F_IGN = 2 };

typedef struct {
  int I, K;
  const KdCocoGt *gt;
  const KdCocoDet *dt;
  const int *gt_start, *gt_idx; /* CSR over bucket k*I + i, input order kept */
  const int *dt_start, *dt_idx;
  double thr[NT], rec_thr[NR];
} Eval;

typedef struct {
  double psum[NT][NA][NM]; /* sum over the 101 recall points */
  double rec[NT][NA][NM];
  int valid[NA][NM];
} CatRes;

/* Stable merge sort of idx[0..n) by key[idx] descending. */
static void sort_desc(const double *key, int *idx, int *tmp, int n) {
  if (n < 2) return;
  int h = n / 2;
  sort_desc(key, idx, tmp, h);
  sort_desc(key, idx + h, tmp, n - h);
  int i = 0, j = h, o = 0;
  while (i < h && j < n) tmp[o++] = key[idx[j]] > key[idx[i]] ? idx[j++] : idx[i++];
  while (i < h) tmp[o++] = idx[i++];
  while (j < n) tmp[o++] = idx[j++];
  memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

/* maskApi.c bbIou for one pair; crowd: union = detection area. */
static double bb_iou(const double *d, const double *g, int crowd) {
  double w = fmin(d[2] + d[0], g[2] + g[0]) - fmax(d[0], g[0]);
  if (w <= 0) return 0.0;
  double h = fmin(d[3] + d[1], g[3] + g[1]) - fmax(d[1], g[1]);
  if (h <= 0) return 0.0;
  double i = w * h, da = d[2] * d[3], ga = g[2] * g[3];
  double u = crowd ? da : da + ga - i;
  return i / u;
}

typedef struct {
  int *dord, *dtmp, *gord, *gtm;
  unsigned char *gig;
  double *dscore, *ious;
} ImgScratch;

static int eval_category(const Eval *ev, int k, CatRes *res) {
  const int I = ev->I;
  size_t ne = 0;
  int maxG = 1, maxD = 1;
  for (int i = 0; i < I; i++) {
    int key = k * I + i;
    int D = ev->dt_start[key + 1] - ev->dt_start[key], G = ev->gt_start[key + 1] - ev->gt_start[key];
    ne += (size_t)(D < MAXDET ? D : MAXDET);
    if (D > maxD) maxD = D;
    if (G > maxG) maxG = G;
  }
  size_t nbuf = ne ? ne : 1;
  double *e_score = malloc(nbuf * sizeof *e_score), *rc = malloc(nbuf * sizeof *rc), *pr = malloc(nbuf * sizeof *pr);
  int *e_rank = malloc(nbuf * sizeof *e_rank), *order = malloc(nbuf * sizeof *order), *otmp = malloc(nbuf * sizeof *otmp);
  unsigned char *e_flag = malloc(nbuf * NA * NT);
  ImgScratch s = {
      .dord = malloc((size_t)maxD * sizeof(int)), .dtmp = malloc((size_t)maxD * sizeof(int)),
      .gord = malloc((size_t)maxG * sizeof(int)), .gtm = malloc((size_t)maxG * sizeof(int)),
      .gig = malloc((size_t)maxG), .dscore = malloc((size_t)maxD * sizeof(double)),
      .ious = malloc((size_t)MAXDET * maxG * sizeof(double))};
  int rc_status = -1;
  if (!e_score || !rc || !pr || !e_rank || !order || !otmp || !e_flag || !s.dord || !s.dtmp || !s.gord || !s.gtm ||
      !s.gig || !s.dscore || !s.ious)
    goto done;

  long npig[NA] = {0};
  size_t e0 = 0;
  for (int i = 0; i < I; i++) {
    int key = k * I + i;
    const int *gi = ev->gt_idx + ev->gt_start[key], *di = ev->dt_idx + ev->dt_start[key];
    int G = ev->gt_start[key + 1] - ev->gt_start[key], D = ev->dt_start[key + 1] - ev->dt_start[key];
    if (G == 0 && D == 0) continue;
    for (int j = 0; j < D; j++) {
      s.dscore[j] = ev->dt[di[j]].score;
      s.dord[j] = j;
    }
    sort_desc(s.dscore, s.dord, s.dtmp, D);
    int Dc = D < MAXDET ? D : MAXDET;
    for (int d = 0; d < Dc; d++)
      for (int g = 0; g < G; g++)
        s.ious[(size_t)d * G + g] = bb_iou(ev->dt[di[s.dord[d]]].bbox, ev->gt[gi[g]].bbox, ev->gt[gi[g]].iscrowd != 0);
    for (int a = 0; a < NA; a++) {
      /* GTs with ignored ones last (stable), as evaluateImg sorts them. */
      int ng = 0;
      for (int pass = 0; pass < 2; pass++)
        for (int g = 0; g < G; g++) {
          const KdCocoGt *gg = &ev->gt[gi[g]];
          int ig = gg->iscrowd || gg->area < area_lo[a] || gg->area > area_hi[a];
          if (ig != pass) continue;
          s.gig[ng] = (unsigned char)ig;
          s.gord[ng++] = g;
          npig[a] += !ig;
        }
      for (int t = 0; t < NT; t++) {
        unsigned char *flag = e_flag + (size_t)(a * NT + t) * nbuf + e0;
        memset(s.gtm, 0, (size_t)G * sizeof *s.gtm);
        for (int d = 0; d < Dc; d++) {
          double best = fmin(ev->thr[t], 1 - 1e-10);
          int m = -1;
          for (int p = 0; p < G; p++) {
            int g = s.gord[p];
            if (s.gtm[p] && !ev->gt[gi[g]].iscrowd) continue;
            if (m > -1 && !s.gig[m] && s.gig[p]) break;
            double iou = s.ious[(size_t)d * G + g];
            if (iou < best) continue;
            best = iou;
            m = p;
          }
          if (m > -1) {
            flag[d] = s.gig[m] ? F_IGN : F_TP;
            s.gtm[m] = 1;
          } else {
            const double *b = ev->dt[di[s.dord[d]]].bbox;
            double area = b[2] * b[3];
            flag[d] = (area < area_lo[a] || area > area_hi[a]) ? F_IGN : F_FP;
          }
        }
      }
    }
    for (int d = 0; d < Dc; d++) {
      e_score[e0 + d] = s.dscore[s.dord[d]];
      e_rank[e0 + d] = d;
    }
    e0 += (size_t)Dc;
  }

  /* All images' detections in image order, then stable by score (accumulate's
   * mergesort); a cut at maxDet keeps the relative order. */
  for (size_t e = 0; e < ne; e++) order[e] = (int)e;
  sort_desc(e_score, order, otmp, (int)ne);
  memset(res, 0, sizeof *res);
  for (int a = 0; a < NA; a++)
    for (int mi = 0; mi < NM; mi++) {
      if (npig[a] == 0) continue;
      res->valid[a][mi] = 1;
      for (int t = 0; t < NT; t++) {
        const unsigned char *flag = e_flag + (size_t)(a * NT + t) * nbuf;
        double tp = 0.0, fp = 0.0;
        int nd = 0;
        for (size_t e = 0; e < ne; e++) {
          int o = order[e];
          if (e_rank[o] >= max_dets[mi]) continue;
          if (flag[o] == F_TP) tp += 1.0;
          else if (flag[o] == F_FP) fp += 1.0;
          rc[nd] = tp / (double)npig[a];
          pr[nd] = tp / (fp + tp + 2.220446049250313e-16);
          nd++;
        }
        res->rec[t][a][mi] = nd ? rc[nd - 1] : 0.0;
        for (int j = nd - 1; j > 0; j--)
          if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
        /* searchsorted(rc, recThrs, 'left'); past the end precision is 0. */
        double sum = 0.0;
        int j = 0;
        for (int r = 0; r < NR; r++) {
          while (j < nd && rc[j] < ev->rec_thr[r]) j++;
          if (j == nd) break;
          sum += pr[j];
        }
        res->psum[t][a][mi] = sum;
      }
    }
  rc_status = 0;
done:
  free(e_score);
  free(rc);
  free(pr);
  free(e_rank);
  free(order);
  free(otmp);
  free(e_flag);
  free(s.dord);
  free(s.dtmp);
  free(s.gord);
  free(s.gtm);
  free(s.gig);
  free(s.dscore);
  free(s.ious);
  return rc_status;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int image_index(const int64_t *sorted, int n, int64_t id) {
  const int64_t *p = bsearch(&id, sorted, (size_t)n, sizeof *sorted, cmp_i64);
  return p ? (int)(p - sorted) : -1;
}

static int finite4(const double *b) { return isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3]); }

/* Bucket keys (k*I + i) -> CSR start/idx, input order kept in a bucket.
 * pos: [nb] scratch. */
static void bucket(const int *keys, int n, int nb, int *start, int *idx, int *pos) {
  memset(start, 0, (size_t)(nb + 1) * sizeof *start);
  for (int j = 0; j < n; j++) start[keys[j] + 1]++;
  for (int b = 0; b < nb; b++) start[b + 1] += start[b];
  memcpy(pos, start, (size_t)nb * sizeof *pos);
  for (int j = 0; j < n; j++) idx[pos[keys[j]]++] = j;
}

static double mean_of(const CatRes *res, int K, int rec, int t0, int t1, int a, int m) {
  double sum = 0.0;
  long count = 0;
  for (int k = 0; k < K; k++) {
    if (!res[k].valid[a][m]) continue;
    for (int t = t0; t < t1; t++) sum += rec ? res[k].rec[t][a][m] : res[k].psum[t][a][m];
    count += (long)(t1 - t0) * (rec ? 1 : NR);
  }
  return count ? sum / (double)count : -1.0;
}

int kd_coco_eval(const int64_t *image_ids, int n_images, int n_categories, const KdCocoGt *gt, int n_gt,
                 const KdCocoDet *dt, int n_dt, double *stats, double *cat_ap, KdError *err) {
  if (n_images < 0 || n_categories < 1 || n_gt < 0 || n_dt < 0 || (n_images && !image_ids) || (n_gt && !gt) ||
      (n_dt && !dt))
    return kd_error(err, "coco eval: %d images, %d categories, %d GT, %d detections", n_images, n_categories, n_gt,
                    n_dt);
  if ((long)n_images * n_categories > 200000000L)
    return kd_error(err, "coco eval: %d images x %d categories is too many", n_images, n_categories);
  const int I = n_images, K = n_categories, NB = I * K;
  int64_t *ids = malloc((size_t)(I ? I : 1) * sizeof *ids);
  int *gkey = malloc((size_t)(n_gt ? n_gt : 1) * sizeof(int)), *dkey = malloc((size_t)(n_dt ? n_dt : 1) * sizeof(int));
  int *gs = malloc((size_t)(NB + 1) * sizeof(int)), *ds = malloc((size_t)(NB + 1) * sizeof(int));
  int *gidx = malloc((size_t)(n_gt ? n_gt : 1) * sizeof(int)), *didx = malloc((size_t)(n_dt ? n_dt : 1) * sizeof(int));
  int *pos = malloc((size_t)(NB + 1) * sizeof(int));
  CatRes *res = malloc((size_t)K * sizeof *res);
  int status = -1;
  if (!ids || !gkey || !dkey || !gs || !ds || !gidx || !didx || !pos || !res) {
    kd_error(err, "coco eval: out of memory");
    goto done;
  }
  if (I) memcpy(ids, image_ids, (size_t)I * sizeof *ids);
  qsort(ids, (size_t)I, sizeof *ids, cmp_i64);
  for (int i = 1; i < I; i++)
    if (ids[i] == ids[i - 1]) {
      kd_error(err, "coco eval: image id %lld appears twice in the image list", (long long)ids[i]);
      goto done;
    }
  for (int j = 0; j < n_gt; j++) {
    int i = image_index(ids, I, gt[j].image_id);
    if (i < 0 || gt[j].category < 0 || gt[j].category >= K || !finite4(gt[j].bbox) || !isfinite(gt[j].area)) {
      kd_error(err, "coco eval: ground truth %d (image %lld, category %d): %s", j, (long long)gt[j].image_id,
               gt[j].category,
               i < 0 ? "image not in the image list"
                     : (gt[j].category < 0 || gt[j].category >= K ? "category out of range" : "bbox or area not finite"));
      goto done;
    }
    gkey[j] = gt[j].category * I + i;
  }
  for (int j = 0; j < n_dt; j++) {
    int i = image_index(ids, I, dt[j].image_id);
    if (i < 0 || dt[j].category < 0 || dt[j].category >= K || !finite4(dt[j].bbox) || !isfinite(dt[j].score)) {
      kd_error(err, "coco eval: detection %d (image %lld, category %d): %s", j, (long long)dt[j].image_id,
               dt[j].category,
               i < 0 ? "image not in the ground-truth image list"
                     : (dt[j].category < 0 || dt[j].category >= K ? "category out of range" : "bbox or score not finite"));
      goto done;
    }
    dkey[j] = dt[j].category * I + i;
  }
  bucket(gkey, n_gt, NB, gs, gidx, pos);
  bucket(dkey, n_dt, NB, ds, didx, pos);

  Eval ev = {.I = I, .K = K, .gt = gt, .dt = dt, .gt_start = gs, .gt_idx = gidx, .dt_start = ds, .dt_idx = didx};
  /* np.linspace: start + i*step, last point exactly the stop value. */
  double step = (0.95 - 0.5) / 9.0;
  for (int t = 0; t < NT; t++) ev.thr[t] = t * step + 0.5;
  ev.thr[NT - 1] = 0.95;
  for (int r = 0; r < NR; r++) ev.rec_thr[r] = r * 0.01;
  ev.rec_thr[NR - 1] = 1.0;

  int failed = 0;
#pragma omp parallel for schedule(dynamic) if (K > 1 && n_dt + n_gt > 2000)
  for (int k = 0; k < K; k++)
    if (eval_category(&ev, k, &res[k])) {
#pragma omp atomic write
      failed = 1;
    }
  if (failed) {
    kd_error(err, "coco eval: out of memory");
    goto done;
  }
  /* summarize(): AP over thresholds (all, .5, .75) and areas at 100 dets,
   * AR at 1/10/100 dets and per area. */
  stats[KD_COCO_AP] = mean_of(res, K, 0, 0, NT, 0, 2);
  stats[KD_COCO_AP50] = mean_of(res, K, 0, 0, 1, 0, 2);
  stats[KD_COCO_AP75] = mean_of(res, K, 0, 5, 6, 0, 2);
  for (int a = 1; a < NA; a++) stats[KD_COCO_APS + a - 1] = mean_of(res, K, 0, 0, NT, a, 2);
  for (int m = 0; m < NM; m++) stats[KD_COCO_AR1 + m] = mean_of(res, K, 1, 0, NT, 0, m);
  for (int a = 1; a < NA; a++) stats[KD_COCO_ARS + a - 1] = mean_of(res, K, 1, 0, NT, a, 2);
  if (cat_ap)
    for (int k = 0; k < K; k++) cat_ap[k] = mean_of(res + k, 1, 0, 0, NT, 0, 2);
  status = 0;
done:
  free(ids);
  free(gkey);
  free(dkey);
  free(gs);
  free(ds);
  free(gidx);
  free(didx);
  free(pos);
  free(res);
  return status;
}
