/* RoI Align (core/roi_align.c): finite-difference gradients for aligned 0
 * and 1 and sampling ratios 1, 2 and adaptive, on RoIs inside, partly and
 * wholly outside the map, tiny, empty and reversed; exact values on a
 * linear map; the blocked layout; the same output and gradient bits on 1,
 * 2 and 3 threads; errors on bad RoIs. (The comparison with torchvision
 * is tests/detect/test_roi_pool.c --oracle.) */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "gradcheck.h"

typedef struct {
  const float *rois;
  int nrois, oh, ow, sampling, aligned, blocked;
  float scale;
} RoiCase;

static KdTensor *roi_fwd(KdCtx *c, KdTensor **in, void *user) {
  const RoiCase *k = user;
  KdTensor *x = k->blocked ? kd_to_blocked(c, in[0]) : in[0];
  return kd_roi_align(c, x, k->rois, k->nrois, k->oh, k->ow, k->scale, k->sampling, k->aligned);
}

/* Image-pixel RoIs on a 2-image map of 9x11 cells at stride 2. */
static const float k_rois[] = {
    0, 2, 3, 15, 17,        /* inside */
    1, -6, -4, 8, 10,       /* over the top-left edge */
    0, 12, 10, 30, 28,      /* over the bottom-right edge, some samples off the map */
    1, 5, 5, 5.6f, 5.3f,    /* tiny */
    0, 7, 7, 7, 7,          /* empty */
    1, 9, 4, 3, 12,         /* reversed in x */
    0, -30, -30, -20, -20,  /* wholly outside: zeros, no gradient */
    1, 0, 0, 22, 18,        /* the whole image */
};

/* The same RoIs spread over three levels (stride 2, 4, 8); level 2 holds
 * a single RoI, of image 0 only. */
static KdTensor *levels_fwd(KdCtx *c, KdTensor **in, void *user) {
  (void)user;
  static const int level[8] = {0, 1, 2, 0, 1, 1, 0, 0};
  static const float scales[3] = {0.5f, 0.25f, 0.125f};
  return kd_roi_align_levels(c, in, scales, 3, k_rois, level, 8, 3, 3, 0, 0);
}

static int grad_cases(void) {
  int f = 0;
  static RoiCase k;
  char name[64];
  for (int aligned = 0; aligned < 2; aligned++)
    for (int sr = 0; sr <= 2; sr++) {
      k = (RoiCase){k_rois, 8, 3, 2, sr, aligned, 0, 0.5f};
      snprintf(name, sizeof name, "roi_align/aligned%d_sampling%d", aligned, sr);
      Gc *g = gc_new(name, roi_fwd, &k);
      gc_input(g, GC_CHECK, 4, (int[]){2, 3, 9, 11});
      f += gc_run(g);
    }
  {
    Gc *g = gc_new("roi_align_levels/3_levels", levels_fwd, NULL);
    gc_input(g, GC_CHECK, 4, (int[]){2, 3, 12, 14});
    gc_input(g, GC_CHECK, 4, (int[]){2, 3, 6, 7});
    gc_input(g, GC_CHECK, 4, (int[]){2, 3, 3, 4});
    f += gc_run(g);
  }
  k = (RoiCase){k_rois, 8, 7, 7, 2, 0, 1, 0.5f};
  Gc *g = gc_new("roi_align/blocked_7x7", roi_fwd, &k);
  gc_input(g, GC_CHECK, 4, (int[]){2, 16, 9, 11});
  f += gc_run(g);
  return f;
}

/* On the map v = 3x + y (x, y in cells) an interior RoI's bin is the mean
 * of its sample positions, known in closed form. */
static void linear_map(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *x = kd_tensor4(c, 1, 1, 12, 12);
  for (int h = 0; h < 12; h++)
    for (int w = 0; w < 12; w++) x->data[h * 12 + w] = 3.0f * w + h;
  const float roi[5] = {0, 4, 2, 16, 20}; /* x 1..4, y 0.5..5 cells at scale 1/4 */
  for (int aligned = 0; aligned < 2; aligned++) {
    KdTensor *y = kd_roi_align(c, x, roi, 1, 2, 3, 0.25f, 2, aligned);
    CHECK(y != NULL);
    if (!y) break;
    float off = aligned ? 0.5f : 0.0f, x0 = 1 - off, y0 = 0.5f - off, bw = 1, bh = 2.25f;
    for (int ph = 0; ph < 2; ph++)
      for (int pw = 0; pw < 3; pw++) {
        float cx = x0 + (pw + 0.5f) * bw, cy = y0 + (ph + 0.5f) * bh; /* mean of the 2x2 samples */
        CHECK_NEAR(y->data[ph * 3 + pw], 3 * cx + cy, 1e-5);
      }
  }
  kd_ctx_free(c);
}

/* Forward and input gradient of many RoIs on `threads` threads. */
static void run_threads(int threads, int sampling, const float *rois, int R, float *out, float *grad, size_t *nout) {
  omp_set_num_threads(threads);
  KdCtx *c = kd_ctx_new(16 << 20);
  KdRng r;
  kd_rng_seed(&r, 5, 1);
  KdTensor *x = kd_tensor4(c, 3, 8, 20, 24);
  for (size_t i = 0; i < x->numel; i++) x->data[i] = kd_rng_normal(&r);
  x->requires_grad = 1;
  KdTensor *y = kd_roi_align(c, x, rois, R, 7, 7, 0.25f, sampling, 0);
  KdTensor *w = kd_tensor_like(c, y);
  for (size_t i = 0; i < w->numel; i++) w->data[i] = kd_rng_normal(&r);
  CHECK(kd_backward(c, kd_sum_all(c, kd_mul(c, y, w))) == 0);
  memcpy(out, y->data, y->numel * sizeof(float));
  memcpy(grad, x->grad, x->numel * sizeof(float));
  *nout = y->numel;
  kd_ctx_free(c);
}

static void determinism(void) {
  enum { R = 90 };
  float rois[R * 5];
  KdRng r;
  kd_rng_seed(&r, 11, 2);
  for (int i = 0; i < R; i++) {
    float x1 = kd_rng_range(&r, -20, 90), y1 = kd_rng_range(&r, -20, 75);
    float *q = rois + 5 * i;
    q[0] = (float)kd_rng_below(&r, 3), q[1] = x1, q[2] = y1;
    q[3] = x1 + kd_rng_range(&r, 0, 60), q[4] = y1 + kd_rng_range(&r, 0, 60);
  }
  const size_t ny = (size_t)R * 8 * 49, nx = 3 * 8 * 20 * 24;
  float *y1 = malloc(ny * 4), *y2 = malloc(ny * 4), *g1 = malloc(nx * 4), *g2 = malloc(nx * 4);
  const int saved = omp_get_max_threads();
  for (int sampling = 0; sampling <= 2; sampling += 2) {
    size_t n1 = 0, n2 = 0;
    run_threads(1, sampling, rois, R, y1, g1, &n1);
    for (int t = 2; t <= 3; t++) {
      run_threads(t, sampling, rois, R, y2, g2, &n2);
      CHECK(n1 == ny && n2 == ny);
      CHECK_MSG(!memcmp(y1, y2, ny * 4), "sampling %d: forward differs on %d threads", sampling, t);
      CHECK_MSG(!memcmp(g1, g2, nx * 4), "sampling %d: gradient differs on %d threads", sampling, t);
    }
    double s = 0;
    for (size_t i = 0; i < nx; i++) s += fabs(g1[i]);
    CHECK(s > 0); /* the gradient is not trivially equal */
    printf("roi_align/threads_sampling%d: %d RoIs, same bits on 1, 2, 3 threads\n", sampling, R);
  }
  omp_set_num_threads(saved);
  free(y1), free(y2), free(g1), free(g2);
}

static void bad_input(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *x = kd_tensor_zeros(c, 4, (int[]){2, 1, 4, 4});
  const float bad_img[5] = {2, 0, 0, 4, 4}, frac_img[5] = {0.5f, 0, 0, 4, 4}, nan_box[5] = {0, 0, NAN, 4, 4};
  const float huge[5] = {0, 0, 0, 1e9f, 4};
  const struct {
    const float *roi;
    int n;
    float scale;
    const char *want;
  } cases[] = {
      {bad_img, 1, 1, "names image 2"}, {frac_img, 1, 1, "names image 0.5"}, {nan_box, 1, 1, "non-finite"},
      {huge, 1, 1, "sampling grid"},    {bad_img, 0, 1, "0 RoIs"},           {frac_img, 1, 0, "scale 0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kd_ctx_clear_error(c);
    KdTensor *y = kd_roi_align(c, x, cases[i].roi, cases[i].n, 2, 2, cases[i].scale, 0, 0);
    CHECK_MSG(!y && strstr(kd_ctx_error(c), cases[i].want), "case %zu: %s", i, kd_ctx_error(c));
  }
  kd_ctx_clear_error(c);
  CHECK(kd_roi_align(c, kd_tensor_zeros(c, 2, (int[]){4, 4}), bad_img, 1, 2, 2, 1, 0, 0) == NULL);
  kd_ctx_free(c);
}

int main(void) {
  int f = grad_cases();
  linear_map();
  determinism();
  bad_input();
  CHECK(f == 0);
  return check_status("grad_roi_align");
}
