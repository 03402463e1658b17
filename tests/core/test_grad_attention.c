/* Multi-head attention (core/attention.c) and the sine position embeddings
 * (core/posembed.c): finite-difference gradients of q, k, v with and
 * without a key-padding mask, with one head and several, with a query
 * whose keys are all padding; the forward and the logits against a direct
 * evaluation in double; the same bits on 1, 2 and 3 threads; errors on bad
 * shapes; hand values of both embeddings. (PyTorch: tests/distill/icd_oracle.py
 * checks the decoder built on this op against torch.nn.MultiheadAttention.) */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/posembed.h"
#include "core/rng.h"
#include "gradcheck.h"

typedef struct {
  int heads;
  const unsigned char *pad;
  float scale;
} MhaCase;

static KdTensor *mha_fwd(KdCtx *c, KdTensor **in, void *user) {
  const MhaCase *m = user;
  return kd_mha_attend(c, in[0], in[1], in[2], m->heads, m->pad, m->scale, NULL);
}

static int grad_cases(void) {
  /* N, Kq, L, E, heads */
  static const int shapes[][5] = {{2, 3, 5, 8, 2}, {1, 4, 6, 6, 1}, {2, 1, 3, 12, 4}, {1, 2, 1, 4, 2}};
  static unsigned char pad[2 * 6];
  static MhaCase m;
  int f = 0;
  char name[96];
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int masked = 0; masked <= 1; masked++) {
      const int N = shapes[s][0], Kq = shapes[s][1], L = shapes[s][2], E = shapes[s][3];
      memset(pad, 0, sizeof pad);
      if (masked) /* image 0: its last key padded; image 1 (when L > 2): its first two */
        for (int n = 0; n < N; n++)
          for (int j = 0; j < L; j++) pad[n * L + j] = L > 1 && (n == 0 ? j == L - 1 : j < 2 && j < L - 1);
      m = (MhaCase){shapes[s][4], masked ? pad : NULL, 1.0f / sqrtf((float)(E / shapes[s][4]))};
      snprintf(name, sizeof name, "mha/%dx%dx%dx%d_h%d%s", N, Kq, L, E, m.heads, masked ? "_pad" : "");
      Gc *g = gc_new(name, mha_fwd, &m);
      gc_input(g, GC_CHECK, 3, (int[]){N, Kq, E});
      gc_input(g, GC_CHECK, 3, (int[]){N, L, E});
      gc_input(g, GC_CHECK, 3, (int[]){N, L, E});
      f += gc_run(g);
    }
  /* Image 1 all padding: its output and every gradient through it are 0. */
  memset(pad, 0, sizeof pad);
  for (int j = 0; j < 4; j++) pad[4 + j] = 1;
  pad[1] = 1;
  m = (MhaCase){2, pad, 0.5f};
  Gc *g = gc_new("mha/all_padded_image", mha_fwd, &m);
  gc_input(g, GC_CHECK, 3, (int[]){2, 3, 4});
  gc_input(g, GC_CHECK, 3, (int[]){2, 4, 4});
  gc_input(g, GC_CHECK, 3, (int[]){2, 4, 4});
  f += gc_run(g);
  return f;
}

/* The definition in double: per image and head a softmax over the
 * unpadded keys. */
static void dense_reference(void) {
  enum { N = 2, KQ = 5, L = 7, E = 12, H = 3, D = E / H };
  const float scale = 0.4f;
  unsigned char pad[N * L] = {0};
  pad[3] = pad[6] = pad[L + 0] = 1;
  KdCtx *c = kd_ctx_new(1 << 20);
  KdRng r;
  kd_rng_seed(&r, 5, 2);
  KdTensor *q = kd_tensor_new(c, 3, (int[]){N, KQ, E}), *k = kd_tensor_new(c, 3, (int[]){N, L, E}),
           *v = kd_tensor_new(c, 3, (int[]){N, L, E});
  for (KdTensor *t = q; t; t = t == q ? k : t == k ? v : NULL)
    for (size_t i = 0; i < t->numel; i++) t->data[i] = kd_rng_normal(&r);
  KdTensor *lg = NULL, *o = kd_mha_attend(c, q, k, v, H, pad, scale, &lg);
  CHECK_MSG(o && lg, "%s", kd_ctx_error(c));
  if (!o || !lg) {
    kd_ctx_free(c);
    return;
  }
  double worst_o = 0, worst_l = 0;
  for (int n = 0; n < N; n++)
    for (int h = 0; h < H; h++)
      for (int j = 0; j < KQ; j++) {
        double s[L], mx = -INFINITY, sum = 0;
        for (int t = 0; t < L; t++) {
          double d = 0;
          for (int e = 0; e < D; e++) d += (double)q->data[(n * KQ + j) * E + h * D + e] * k->data[(n * L + t) * E + h * D + e];
          s[t] = pad[n * L + t] ? -INFINITY : d * scale;
          const float got = lg->data[((n * H + h) * KQ + j) * L + t];
          if (pad[n * L + t]) CHECK(isinf(got) && got < 0);
          else worst_l = fmax(worst_l, fabs(got - s[t]));
          mx = fmax(mx, s[t]);
        }
        for (int t = 0; t < L; t++) sum += s[t] = exp(s[t] - mx);
        for (int e = 0; e < D; e++) {
          double acc = 0;
          for (int t = 0; t < L; t++) acc += s[t] / sum * v->data[(n * L + t) * E + h * D + e];
          worst_o = fmax(worst_o, fabs(o->data[(n * KQ + j) * E + h * D + e] - acc));
        }
      }
  printf("mha/dense_reference: max|out diff| %.2e, max|logit diff| %.2e\n", worst_o, worst_l);
  CHECK(worst_o < 1e-5 && worst_l < 1e-5);
  kd_ctx_free(c);
}

enum { TN = 3, TK = 9, TL = 40, TE = 32, TH = 8 };
#define TQN ((size_t)TN * TK * TE)
#define TKN ((size_t)TN * TL * TE)

static void run_threads(int threads, float *buf) {
  omp_set_num_threads(threads);
  KdCtx *c = kd_ctx_new(16 << 20);
  KdRng r;
  kd_rng_seed(&r, 7, 4);
  unsigned char pad[TN * TL] = {0};
  for (int i = 30; i < TL; i++) pad[TL + i] = 1;
  KdTensor *x[3];
  for (int i = 0; i < 3; i++) {
    x[i] = kd_tensor_new(c, 3, (int[]){TN, i ? TL : TK, TE});
    for (size_t j = 0; j < x[i]->numel; j++) x[i]->data[j] = kd_rng_normal(&r);
    x[i]->requires_grad = 1;
  }
  KdTensor *out = kd_mha_attend(c, x[0], x[1], x[2], TH, pad, 0.3f, NULL), *r1 = kd_tensor_like(c, out);
  for (size_t j = 0; j < r1->numel; j++) r1->data[j] = kd_rng_normal(&r);
  CHECK_MSG(kd_backward(c, kd_sum_all(c, kd_mul(c, out, r1))) == 0, "%s", kd_ctx_error(c));
  memcpy(buf, out->data, TQN * 4);
  memcpy(buf + TQN, x[0]->grad, TQN * 4);
  memcpy(buf + 2 * TQN, x[1]->grad, TKN * 4);
  memcpy(buf + 2 * TQN + TKN, x[2]->grad, TKN * 4);
  kd_ctx_free(c);
}

static void determinism(void) {
  const size_t n = 2 * TQN + 2 * TKN;
  float *a = malloc(n * 4), *b = malloc(n * 4);
  const int saved = omp_get_max_threads();
  run_threads(1, a);
  for (int t = 2; t <= 3; t++) {
    run_threads(t, b);
    CHECK_MSG(!memcmp(a, b, n * 4), "attention output or gradients differ on %d threads", t);
  }
  printf("mha/threads %dx%dx%dx%d h%d: same bits on 1, 2, 3 threads\n", TN, TK, TL, TE, TH);
  omp_set_num_threads(saved);
  free(a), free(b);
}

static void bad_input(void) {
  KdCtx *c = kd_ctx_new(1 << 20);
  KdTensor *q = kd_tensor_zeros(c, 3, (int[]){1, 2, 6}), *k = kd_tensor_zeros(c, 3, (int[]){1, 3, 6}),
           *k4 = kd_tensor_zeros(c, 3, (int[]){1, 3, 4});
  CHECK(!kd_mha_attend(c, q, k, k, 4, NULL, 1.0f, NULL) && strstr(kd_ctx_error(c), "not divisible by 4 heads"));
  kd_ctx_clear_error(c);
  CHECK(!kd_mha_attend(c, q, k4, k4, 2, NULL, 1.0f, NULL) && strstr(kd_ctx_error(c), "query 1,2,6, key 1,3,4"));
  kd_ctx_clear_error(c);
  CHECK(!kd_mha_attend(c, q, k, k4, 2, NULL, 1.0f, NULL));
  kd_ctx_free(c);
}

static void embeddings(void) {
  /* 1-D, nf = 4: t = (1, 1, 100, 100); x = 0.25 -> sin(pi/2), sin(pi/200), cos(pi/2), cos(pi/200). */
  float e[4];
  kd_pos_sine_1d(e, 0.25f, 4, 10000.0f);
  CHECK(fabsf(e[0] - 1.0f) < 1e-6f && fabsf(e[1] - sinf((float)M_PI / 200)) < 1e-6f && fabsf(e[2]) < 1e-6f &&
        fabsf(e[3] - cosf((float)M_PI / 200)) < 1e-6f);
  /* 2-D, 2x3 map, image 1x2 (the rest padding), npf = 2: t = (1, 1).
   * Cell (0, 1): y = 1/(1+1e-6) 2pi, x = 2/(2+1e-6) 2pi; cell (1, 2) repeats
   * the last valid cumulative counts (1, 2). */
  float p[6 * 4];
  kd_pos_sine_2d(p, 2, 3, 1, 2, 2, 10000.0f);
  const double ye = 1.0 / (1.0 + 1e-6) * 2 * M_PI, xe = 2.0 / (2.0 + 1e-6) * 2 * M_PI, x0 = 1.0 / (2.0 + 1e-6) * 2 * M_PI;
  const float *c01 = p + 1 * 4, *c00 = p, *c12 = p + 5 * 4;
  CHECK(fabs(c01[0] - sin(ye)) < 1e-6 && fabs(c01[1] - cos(ye)) < 1e-6 && fabs(c01[2] - sin(xe)) < 1e-6 &&
        fabs(c01[3] - cos(xe)) < 1e-6);
  CHECK(fabs(c00[2] - sin(x0)) < 1e-6 && fabs(c00[3] - cos(x0)) < 1e-6);
  CHECK(!memcmp(c12, c01, 4 * sizeof(float)));
  printf("posembed: 1-D and 2-D hand values\n");
}

int main(void) {
  int f = grad_cases();
  dense_reference();
  determinism();
  bad_input();
  embeddings();
  CHECK(f == 0);
  return check_status("grad_attention");
}
