/* Criss-cross attention (core/criss_cross.c): finite-difference gradients
 * of the energy (query and key apart and one tensor as both), the
 * aggregation and the whole attention, on square and non-square maps and on
 * 1-row, 1-column and 1x1 maps; the forward against a dense masked softmax
 * over all H*W pixels in double; the same output and gradient bits on 1, 2
 * and 3 threads; errors on bad shapes. (PyTorch: test_cc_torch.c.) */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "gradcheck.h"

typedef enum { CC_ENERGY, CC_ENERGY_SELF, CC_AGGREGATE, CC_FULL, CC_ATTN } CcKind;

typedef struct {
  CcKind kind;
  int blocked;
} CcCase;

static KdTensor *cc_fwd(KdCtx *c, KdTensor **in, void *user) {
  const CcCase *k = user;
  KdTensor *a = k->blocked ? kd_to_blocked(c, in[0]) : in[0];
  switch (k->kind) {
  case CC_ENERGY: return kd_cc_energy(c, a, in[1]);
  case CC_ENERGY_SELF: return kd_cc_energy(c, a, a);
  case CC_AGGREGATE: return kd_cc_aggregate(c, a, in[1]);
  case CC_FULL: return kd_criss_cross(c, a, in[1], in[2], 0.7f, NULL);
  case CC_ATTN: {
    KdTensor *attn = NULL;
    kd_criss_cross(c, a, in[1], in[2], 0.7f, &attn);
    return attn;
  }
  }
  return NULL;
}

static int grad_cases(void) {
  static const int shapes[][4] = {{2, 3, 4, 5}, {1, 2, 5, 3}, {1, 3, 1, 6}, {2, 2, 5, 1}, {1, 2, 1, 1}, {1, 2, 3, 3}};
  static CcCase k;
  int f = 0;
  char name[80];
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const int N = shapes[s][0], C = shapes[s][1], H = shapes[s][2], W = shapes[s][3], L = KD_CC_LEN(H, W);
    for (int kind = CC_ENERGY; kind <= CC_ATTN; kind++) {
      k = (CcCase){(CcKind)kind, 0};
      static const char *names[] = {"energy", "energy_self", "aggregate", "full", "attn"};
      snprintf(name, sizeof name, "criss_cross/%s_%dx%dx%dx%d", names[kind], N, C, H, W);
      Gc *g = gc_new(name, cc_fwd, &k);
      if (kind == CC_AGGREGATE) {
        gc_input(g, GC_CHECK, 4, (int[]){N, L, H, W});
        gc_input(g, GC_CHECK, 4, (int[]){N, C + 1, H, W});
      } else {
        gc_input(g, GC_CHECK, 4, (int[]){N, C, H, W});
        if (kind != CC_ENERGY_SELF) gc_input(g, GC_CHECK, 4, (int[]){N, C, H, W});
        if (kind >= CC_FULL) gc_input(g, GC_CHECK, 4, (int[]){N, C + 2, H, W});
      }
      f += gc_run(g);
    }
  }
  k = (CcCase){CC_FULL, 1};
  Gc *g = gc_new("criss_cross/full_blocked_16ch", cc_fwd, &k);
  gc_input(g, GC_CHECK, 4, (int[]){1, 16, 3, 4});
  gc_input(g, GC_CHECK, 4, (int[]){1, 16, 3, 4});
  gc_input(g, GC_CHECK, 4, (int[]){1, 5, 3, 4});
  f += gc_run(g);
  return f;
}

/* The definition itself: for each pixel a softmax over all H*W pixels with
 * those outside its row and column masked out, in double. */
static void dense_reference(void) {
  enum { N = 2, C = 4, CV = 3, H = 5, W = 7, L = H + W - 1 };
  const float scale = 0.6f;
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 3, 1);
  KdTensor *q = kd_tensor4(c, N, C, H, W), *k = kd_tensor4(c, N, C, H, W), *v = kd_tensor4(c, N, CV, H, W);
  for (KdTensor *t = q; t; t = t == q ? k : t == k ? v : NULL)
    for (size_t i = 0; i < t->numel; i++) t->data[i] = kd_rng_normal(&r);
  KdTensor *attn = NULL, *out = kd_criss_cross(c, q, k, v, scale, &attn);
  CHECK_MSG(out && attn, "%s", kd_ctx_error(c));
  if (!out || !attn) {
    kd_ctx_free(c);
    return;
  }
  CHECK(attn->shape[0] == N && attn->shape[1] == L && attn->shape[2] == H && attn->shape[3] == W);
  double worst_a = 0, worst_o = 0;
  const int HW = H * W;
  for (int n = 0; n < N; n++)
    for (int u = 0; u < HW; u++) {
      const int h = u / W, w = u % W;
      double e[H * W], mx = -INFINITY, sum = 0;
      for (int p = 0; p < HW; p++) {
        const int in_cross = p / W == h || p % W == w;
        double d = 0;
        for (int ch = 0; ch < C; ch++) d += (double)q->data[(n * C + ch) * HW + u] * k->data[(n * C + ch) * HW + p];
        e[p] = in_cross ? d * scale : -INFINITY;
        mx = fmax(mx, e[p]);
      }
      for (int p = 0; p < HW; p++) sum += e[p] = exp(e[p] - mx);
      for (int p = 0; p < HW; p++) e[p] /= sum;
      int seen[H * W] = {0};
      for (int kk = 0; kk < L; kk++) {
        int ph, pw;
        kd_cc_pixel(H, W, h, w, kk, &ph, &pw);
        CHECK(ph == h || pw == w);
        seen[ph * W + pw]++;
        worst_a = fmax(worst_a, fabs(attn->data[((size_t)n * L + kk) * HW + u] - e[ph * W + pw]));
      }
      for (int p = 0; p < HW; p++) CHECK(seen[p] == (p / W == h || p % W == w)); /* each cross pixel once */
      for (int ch = 0; ch < CV; ch++) {
        double o = 0;
        for (int p = 0; p < HW; p++) o += e[p] * v->data[(n * CV + ch) * HW + p];
        worst_o = fmax(worst_o, fabs(out->data[(n * CV + ch) * HW + u] - o));
      }
    }
  printf("criss_cross/dense_reference %dx%d: max|attn diff| %.2e, max|out diff| %.2e\n", H, W, worst_a, worst_o);
  CHECK(worst_a < 1e-6 && worst_o < 1e-5);
  kd_ctx_free(c);
}

enum { DN = 3, DC = 12, DH = 13, DW = 17 };
#define DNUM ((size_t)DN * DC * DH * DW)
#define DLNUM ((size_t)DN * (DH + DW - 1) * DH * DW)

/* Output, attention and the q, k, v gradients of sum(out * R1) + sum(attn * R2). */
static void run_threads(int threads, float *buf) {
  omp_set_num_threads(threads);
  KdCtx *c = kd_ctx_new(16 << 20);
  KdRng r;
  kd_rng_seed(&r, 7, 4);
  KdTensor *x[3];
  for (int i = 0; i < 3; i++) {
    x[i] = kd_tensor4(c, DN, DC, DH, DW);
    for (size_t j = 0; j < DNUM; j++) x[i]->data[j] = kd_rng_normal(&r);
    x[i]->requires_grad = 1;
  }
  KdTensor *attn = NULL, *out = kd_criss_cross(c, x[0], x[1], x[2], 0.3f, &attn);
  KdTensor *r1 = kd_tensor_like(c, out), *r2 = kd_tensor_like(c, attn);
  for (size_t j = 0; j < r1->numel; j++) r1->data[j] = kd_rng_normal(&r);
  for (size_t j = 0; j < r2->numel; j++) r2->data[j] = kd_rng_normal(&r);
  KdTensor *loss = kd_add(c, kd_sum_all(c, kd_mul(c, out, r1)), kd_sum_all(c, kd_mul(c, attn, r2)));
  CHECK_MSG(kd_backward(c, loss) == 0, "%s", kd_ctx_error(c));
  memcpy(buf, out->data, DNUM * 4);
  memcpy(buf + DNUM, attn->data, DLNUM * 4);
  for (int i = 0; i < 3; i++) memcpy(buf + DNUM + DLNUM + i * DNUM, x[i]->grad, DNUM * 4);
  kd_ctx_free(c);
}

static void determinism(void) {
  const size_t n = 4 * DNUM + DLNUM;
  float *a = malloc(n * 4), *b = malloc(n * 4);
  const int saved = omp_get_max_threads();
  run_threads(1, a);
  for (int t = 2; t <= 3; t++) {
    run_threads(t, b);
    CHECK_MSG(!memcmp(a, b, n * 4), "criss-cross output or gradients differ on %d threads", t);
  }
  double s = 0;
  for (size_t i = DNUM + DLNUM; i < n; i++) s += fabs(a[i]);
  CHECK(s > 0);
  printf("criss_cross/threads %dx%dx%dx%d: same bits on 1, 2, 3 threads\n", DN, DC, DH, DW);
  omp_set_num_threads(saved);
  free(a), free(b);
}

static void bad_input(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *q = kd_tensor_zeros(c, 4, (int[]){1, 2, 3, 4}), *k5 = kd_tensor_zeros(c, 4, (int[]){1, 2, 3, 5});
  KdTensor *k3 = kd_tensor_zeros(c, 4, (int[]){1, 3, 3, 4}), *a = kd_tensor_zeros(c, 4, (int[]){1, 5, 3, 4});
  CHECK(!kd_cc_energy(c, q, k5) && strstr(kd_ctx_error(c), "cc_energy: query and key 1,2,3,4 and 1,2,3,5"));
  kd_ctx_clear_error(c);
  CHECK(!kd_cc_energy(c, q, k3) && strstr(kd_ctx_error(c), "and C"));
  kd_ctx_clear_error(c);
  CHECK(!kd_cc_aggregate(c, a, q) && strstr(kd_ctx_error(c), "expected H+W-1 = 6"));
  kd_ctx_clear_error(c);
  CHECK(!kd_cc_energy(c, kd_tensor_zeros(c, 2, (int[]){3, 4}), q));
  kd_ctx_free(c);
}

int main(void) {
  int f = grad_cases();
  dense_reference();
  determinism();
  bad_input();
  CHECK(f == 0);
  return check_status("grad_criss_cross");
}
