/* LGD: label-guided self-distillation (Zhang et al., AAAI 2022),
 * KD-METHODS-2 §B, after the official release (megvii-research/LGD:
 * dynamic_teacher/{label_encoder,dynamic_teacher,spatial_transformer}.py,
 * base_distillator.py). No pretrained teacher: an implicit teacher is
 * built each step from the labels and the student's own features.
 *   instances  per image its non-crowd GTs, plus the whole image as a
 *              context box (lgd.context; only when the image has a GT); an
 *              image without GT gets the dummy box (0,0,1,1), class code 0
 *   labels     descriptor [x1/w, y1/h, x2/w, y2/h, one-hot] mapped to
 *              [-1, 1] (boxes clamped to the padded input first), through
 *              a PointNet with two STNs (no identity shortcut), the
 *              1024-wide per-image max as context -> label embedding
 *   appearance Z_l = ReLU(GN1(conv3x3(S_l))), mask-averaged in each box
 *   relation   u = MHA(query appearance, key = value = ReLU(LN(Lin(label
 *              embedding)))), 8 heads, only within an image
 *   rendering  each real box paints Lin(u) over its cells (overlaps add);
 *              R = ReLU(conv3x3(paint) + Lin(u_context)); the teacher map
 *              T_l = three conv3x3 + GN1 (ReLU after the first two)
 *   losses     det_t: the student's own head and loss on T_l (trains the
 *              teacher, the head and, through Z, the student's neck);
 *              distill: lambda * mean over every value of
 *              (IN(Adapter(S_l)) - IN(T_l.detach()))^2, the adapter three
 *              conv3x3 shared by the levels; the student's features are
 *              detached before lgd.delay (the adapter still learns)
 * Every norm is non-affine (eps 1e-5). The hidden widths are the
 * official ones; the embedding and teacher width is the neck's (the
 * official 256). Not done: the official backbone freeze of the first
 * 20k iterations, which covers the student's own loss (a trainer-level
 * schedule, docs/METHODS-LGD.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "distill/method.h"
#include "model/layers.h"

#define LGD_HEADS 8
#define LGD_G 1024 /* the PointNet's global width */

typedef struct {
  int C, K, k;
  KdLinear stn[2][6]; /* stn_desc, stn_feat: conv1..3 (1x1 = Linear), fc1..3 */
  KdLinear enc[4];    /* label_encoder.conv1..4 */
  KdLinear canoni, ctx1d, inst1d, out_proj;
  KdTensor *in_w, *in_b;
  KdConv z2d, inst2d, refine[3], adapter[3];
  char why[160];
} Lgd;

typedef struct {
  float weight, det_weight, delay;
  int context, detach_appearance;
} LgdParams;

#define F(field, ...) KD_METHOD_FLOAT(LgdParams, "lgd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "λ", "LGD distillation weight", 1.0, 0.0, 100.0, 1, "1,2,5",
      "lambda (LAMBDA): weight of the instance-normalised MSE between the adapted student features and the detached "
      "implicit teacher maps, one mean over every value of every level (official 1)"),
    F(det_weight, "w_t", "Teacher detection weight", 1.0, 0.0, 10.0, 1, "1,2,5",
      "Weight of the student head's detection loss on the implicit teacher's maps, which trains the teacher (official 1: "
      "the '*.tea' losses are summed with the rest)"),
    F(delay, "t_0", "Distillation delay", 0.167, 0.0, 1.0, 0, "step 0.001",
      "Fraction of train.steps during which the student's features are detached in the distillation term (only the "
      "adapter learns from it): the official 30k of 180k iterations = 1/6 [INFERRED: scaled as a fraction]"),
    KD_METHOD_BOOL(LgdParams, "lgd", context, "ctx", "Context box", 1,
                   "Add the whole image as a context instance whose output is a global vector added to the rendered map "
                   "(ADD_CONTEXT_BOX: on in the official RetinaNet configs)"),
    KD_METHOD_BOOL(LgdParams, "lgd", detach_appearance, "detach", "Detach appearance", 0,
                   "Detach the student's features before the appearance projection, so the teacher's detection loss does "
                   "not reach the student's neck (DETACH_APPEARANCE_EMBED: off for RetinaNet, on for Faster R-CNN)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int lin(KdLinear *l, KdParams *p, const char *name, int in, int out) {
  char full[112];
  snprintf(full, sizeof full, "distill.lgd.%s", name);
  return kd_linear_add(l, p, full, in, out);
}

static int conv(KdConv *cv, KdParams *p, const char *name, int C) {
  char full[112];
  snprintf(full, sizeof full, "distill.lgd.%s", name);
  return kd_conv_add(cv, p, full, C, C, 3, 1, 1, 1);
}

static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Lgd *d = calloc(1, sizeof *d);
  if (!d) return kd_error(err, "out of memory");
  inst->state = d;
  const int C = sh->s_channels, K = sh->num_classes;
  d->C = C, d->K = K, d->k = 4 + K;
  if (C % LGD_HEADS || C < LGD_HEADS)
    snprintf(d->why, sizeof d->why, "the student's neck width %d is not divisible by the relation adapter's %d heads", C,
             LGD_HEADS);
  else if (K < 1)
    snprintf(d->why, sizeof d->why, "needs the class count (got %d)", K);
  if (d->why[0]) return 0;
  static const char *const sn[2] = {"stn_desc", "stn_feat"};
  int rc = 0;
  char nm[96];
  for (int s = 0; s < 2; s++) {
    const int kin = s ? 64 : d->k;
    const int w[7] = {kin, 64, 128, LGD_G, 512, 256, kin * kin};
    static const char *const ln[6] = {"conv1", "conv2", "conv3", "fc1", "fc2", "fc3"};
    for (int j = 0; j < 6; j++) {
      snprintf(nm, sizeof nm, "label_encoder.%s.%s", sn[s], ln[j]);
      rc |= lin(&d->stn[s][j], store, nm, w[j], w[j + 1]);
    }
  }
  rc |= lin(&d->enc[0], store, "label_encoder.conv1", d->k, 64) | lin(&d->enc[1], store, "label_encoder.conv2", 64, 128) |
        lin(&d->enc[2], store, "label_encoder.conv3", 128, LGD_G) |
        lin(&d->enc[3], store, "label_encoder.conv4", 64 + LGD_G, C) | lin(&d->canoni, store, "teacher.canoni_proj_1D", C, C) |
        lin(&d->ctx1d, store, "teacher.global_ctx_proj_1D", C, C) | lin(&d->inst1d, store, "teacher.local_inst_proj_1D", C, C) |
        lin(&d->out_proj, store, "teacher.multi_head_attn.out_proj", C, C) | conv(&d->z2d, store, "teacher.student_proj_2D", C) |
        conv(&d->inst2d, store, "teacher.local_inst_proj_2D", C);
  for (int j = 0; j < 3; j++) {
    snprintf(nm, sizeof nm, "teacher.refinement_module.%d", 3 * j);
    rc |= conv(&d->refine[j], store, nm, C);
    snprintf(nm, sizeof nm, "adapter.%d", 2 * j);
    rc |= conv(&d->adapter[j], store, nm, C);
  }
  d->in_w = kd_params_add(store, "distill.lgd.teacher.multi_head_attn.in_proj_weight", 2, (int[]){3 * C, C}, KD_PARAM_TRAIN);
  d->in_b = kd_params_add(store, "distill.lgd.teacher.multi_head_attn.in_proj_bias", 1, (int[]){3 * C}, KD_PARAM_TRAIN);
  if (rc || !d->in_w || !d->in_b) return kd_error(err, "lgd: cannot register its parameters");
  return 0;
}

/* PyTorch's defaults (Linear, Conv1d and Conv2d: U(+-1/sqrt(fan_in))
 * weight and bias), the MHA's xavier in-projection and zero biases, in
 * module order. */
static void init_weights(KdMethodInst *inst, KdRng *r) {
  Lgd *d = inst->state;
  if (d->why[0]) return;
  for (int s = 0; s < 2; s++)
    for (int j = 0; j < 6; j++) kd_linear_init(&d->stn[s][j], r);
  for (int j = 0; j < 4; j++) kd_linear_init(&d->enc[j], r);
  kd_linear_init(&d->canoni, r);
  kd_distill_adapters_init(&d->z2d, 1, r);
  kd_distill_adapters_init(&d->inst2d, 1, r);
  kd_linear_init(&d->ctx1d, r);
  kd_linear_init(&d->inst1d, r);
  kd_distill_adapters_init(d->refine, 3, r);
  const float b = sqrtf(6.0f / (float)(4 * d->C));
  for (size_t i = 0; i < d->in_w->numel; i++) d->in_w->data[i] = kd_rng_range(r, -b, b);
  kd_init_const(d->in_b, 0.0f);
  kd_linear_init(&d->out_proj, r);
  kd_init_const(d->out_proj.b, 0.0f);
  kd_distill_adapters_init(d->adapter, 3, r);
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

/* LayerNorm without affine over the last `width` values of each row. */
static KdTensor *layer_norm(KdCtx *c, KdTensor *x, int width) {
  if (!x) return NULL;
  const int rows = (int)(x->numel / (size_t)width);
  KdTensor *y = kd_groupnorm(c, kd_reshape(c, x, 4, (int[]){rows, width, 1, 1}), 1, NULL, NULL, 1e-5f);
  return kd_reshape(c, y, 2, (int[]){rows, width});
}

static KdTensor *lin_ln_relu(KdCtx *c, const KdLinear *l, KdTensor *x) {
  KdTensor *y = kd_linear_fwd(c, l, x);
  return kd_relu(c, layer_norm(c, y, y ? y->shape[1] : 1));
}

/* x [T, kin] -> the STN's matrix [T, kin, kin] (spatial_transformer.py). */
static KdTensor *stn(KdCtx *c, const KdLinear *l, KdTensor *x, int kin) {
  for (int j = 0; j < 5; j++) x = lin_ln_relu(c, &l[j], x);
  x = kd_linear_fwd(c, &l[5], x);
  return x ? kd_reshape(c, x, 3, (int[]){x->shape[0], kin, kin}) : NULL;
}

/* Row vector times its instance's matrix: x [T, k] @ M [T, k, k]. */
static KdTensor *transform(KdCtx *c, KdTensor *x, KdTensor *m) {
  if (!x || !m) return NULL;
  const int T = x->shape[0], k = x->shape[1];
  return kd_reshape(c, kd_matmul(c, kd_reshape(c, x, 3, (int[]){T, 1, k}), m, 0, 0), 2, (int[]){T, k});
}

/* The instances of a batch: descriptors, boxes (clamped, input pixels)
 * and where each image's rows are. */
typedef struct {
  int T, kmax;
  int *off, *nreal, *has_ctx; /* [N + 1], [N], [N] */
  float *desc; /* [T, k] */
  float *box;  /* [T, 4] */
  int *img;    /* [T] */
} Inst;

static int instances(KdCtx *c, const KdDistillInputs *in, int K, int context, Inst *is) {
  memset(is, 0, sizeof *is);
  const int N = in->n, k = 4 + K;
  is->off = kd_ctx_alloc(c, (size_t)(3 * N + 1) * sizeof(int));
  if (!is->off) return -1;
  memset(is->off, 0, (size_t)(3 * N + 1) * sizeof(int));
  is->nreal = is->off + N + 1, is->has_ctx = is->nreal + N;
  const float w = (float)in->img_w, h = (float)in->img_h;
  for (int n = 0; n < N; n++) {
    int g = 0;
    for (int j = 0; j < in->gt[n].n; j++) g += !(in->gt[n].crowd && in->gt[n].crowd[j]);
    is->nreal[n] = g;
    is->has_ctx[n] = context && g > 0;
    const int m = g > 0 ? g + is->has_ctx[n] : 1;
    is->off[n + 1] = is->off[n] + m;
    if (m > is->kmax) is->kmax = m;
  }
  is->T = is->off[N];
  is->desc = kd_ctx_alloc(c, (size_t)is->T * k * sizeof(float));
  is->box = kd_ctx_alloc(c, (size_t)is->T * 4 * sizeof(float));
  is->img = kd_ctx_alloc(c, (size_t)is->T * sizeof(int));
  if (!is->desc || !is->box || !is->img) return -1;
  for (int n = 0; n < N; n++) {
    int t = is->off[n];
    for (int j = 0; j < in->gt[n].n; j++) {
      if (in->gt[n].crowd && in->gt[n].crowd[j]) continue;
      const int cls = in->gt[n].labels[j];
      if (cls < 0 || cls >= K) {
        kd_ctx_fail(c, "lgd: image %d GT %d has class %d, expected 0..%d", n, j, cls, K - 1);
        return -1;
      }
      memcpy(is->box + (size_t)t * 4, in->gt[n].boxes + (size_t)j * 4, 4 * sizeof(float));
      float *dd = is->desc + (size_t)t * k;
      for (int q = 0; q < K; q++) dd[4 + q] = q == cls ? 1.0f : 0.0f;
      t++;
    }
    if (is->nreal[n] == 0 || is->has_ctx[n]) { /* the dummy (no GT) or the context box, class code 0 */
      const float b[4] = {0, 0, is->nreal[n] ? w : 1.0f, is->nreal[n] ? h : 1.0f};
      memcpy(is->box + (size_t)t * 4, b, sizeof b);
      memset(is->desc + (size_t)t * k + 4, 0, (size_t)K * sizeof(float));
      t++;
    }
    for (int r = is->off[n]; r < is->off[n + 1]; r++) {
      float *b = is->box + (size_t)r * 4, *dd = is->desc + (size_t)r * k;
      b[0] = fminf(fmaxf(b[0], 0.0f), w - 1), b[2] = fminf(fmaxf(b[2], 0.0f), w - 1);
      b[1] = fminf(fmaxf(b[1], 0.0f), h - 1), b[3] = fminf(fmaxf(b[3], 0.0f), h - 1);
      dd[0] = b[0] / w, dd[1] = b[1] / h, dd[2] = b[2] / w, dd[3] = b[3] / h;
      for (int q = 0; q < k; q++) dd[q] = 2.0f * dd[q] - 1.0f;
      is->img[r] = n;
    }
  }
  return 0;
}

/* The inside mask of instance t on an H x W level (get_inside_gt_mask:
 * integer cells, |centre - cell| / size <= 0.5 on both axes). */
static void inside(const Inst *is, int t, int H, int W, float img_h, float img_w, float *m) {
  const float *b = is->box + (size_t)t * 4, rh = (float)H / img_h, rw = (float)W / img_w;
  const float x1 = b[0] * rw, x2 = b[2] * rw, y1 = b[1] * rh, y2 = b[3] * rh;
  const float xc = (x1 + x2) * 0.5f, yc = (y1 + y2) * 0.5f, bw = x2 - x1, bh = y2 - y1;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) m[y * W + x] = fabsf(yc - (float)y) / bh <= 0.5f && fabsf(xc - (float)x) / bw <= 0.5f;
}

/* The label encoder: [T, C] embeddings (label_encoder.py). */
static KdTensor *label_embed(KdCtx *c, const Lgd *d, const Inst *is, int N) {
  const int T = is->T;
  KdTensor *x = kd_tensor_wrap(c, is->desc, 2, (int[]){T, d->k});
  x = transform(c, x, stn(c, d->stn[0], x, d->k));
  x = lin_ln_relu(c, &d->enc[0], x);
  KdTensor *f64 = transform(c, x, stn(c, d->stn[1], x, 64));
  x = lin_ln_relu(c, &d->enc[2], lin_ln_relu(c, &d->enc[1], f64));
  if (!x) return NULL;
  /* the per-image max, spread back onto the image's rows: one gather of
   * each channel's first argmax (the gradient goes there, as torch's max) */
  int *idx = kd_ctx_alloc(c, (size_t)T * LGD_G * sizeof(int)), *arg = kd_ctx_alloc(c, (size_t)LGD_G * sizeof(int));
  if (!idx || !arg) return NULL;
  for (int n = 0; n < N; n++) {
    for (int ch = 0; ch < LGD_G; ch++) {
      int best = is->off[n];
      for (int r = is->off[n] + 1; r < is->off[n + 1]; r++)
        if (x->data[(size_t)r * LGD_G + ch] > x->data[(size_t)best * LGD_G + ch]) best = r;
      arg[ch] = best * LGD_G + ch;
    }
    for (int r = is->off[n]; r < is->off[n + 1]; r++) memcpy(idx + (size_t)r * LGD_G, arg, LGD_G * sizeof(int));
  }
  KdTensor *g = kd_reshape(c, kd_gather(c, x, idx, T * LGD_G), 2, (int[]){T, LGD_G});
  return lin_ln_relu(c, &d->enc[3], kd_concat(c, (KdTensor *[]){f64, g}, 2, 1));
}

/* Rows [T, C] into one padded sequence per image [N, kmax, C] and back. */
static KdTensor *pad_rows(KdCtx *c, KdTensor *x, const Inst *is, int N, int C) {
  int *idx = kd_ctx_alloc(c, (size_t)N * is->kmax * C * sizeof(int));
  if (!idx) return NULL;
  for (int n = 0; n < N; n++)
    for (int j = 0; j < is->kmax; j++) {
      const int r = is->off[n] + j < is->off[n + 1] ? is->off[n] + j : is->off[n];
      for (int e = 0; e < C; e++) idx[((size_t)n * is->kmax + j) * C + e] = r * C + e;
    }
  return kd_reshape(c, kd_gather(c, x, idx, N * is->kmax * C), 3, (int[]){N, is->kmax, C});
}

static KdTensor *unpad_rows(KdCtx *c, KdTensor *x, const Inst *is, int C) {
  int *idx = kd_ctx_alloc(c, (size_t)is->T * C * sizeof(int));
  if (!idx) return NULL;
  for (int r = 0; r < is->T; r++) {
    const int n = is->img[r], j = r - is->off[n];
    for (int e = 0; e < C; e++) idx[(size_t)r * C + e] = (n * is->kmax + j) * C + e;
  }
  return kd_reshape(c, kd_gather(c, x, idx, is->T * C), 2, (int[]){is->T, C});
}

static KdTensor *in_proj(KdCtx *c, const Lgd *d, KdTensor *x, int which) {
  KdTensor *w = kd_slice(c, d->in_w, 0, which * d->C, d->C), *b = kd_slice(c, d->in_b, 0, which * d->C, d->C);
  return kd_add(c, kd_matmul(c, x, w, 0, 1), b);
}

static KdTensor *gn1(KdCtx *c, KdTensor *x) { return kd_groupnorm(c, x, 1, NULL, NULL, 1e-5f); }

/* The implicit teacher's map of one level (dynamic_teacher.py). masks:
 * [T, H*W] inside masks of this level; ebed: the keys/values [N, kmax, C]. */
static KdTensor *teacher_level(KdCtx *c, const Lgd *d, const LgdParams *p, const Inst *is, KdTensor *S, const float *masks,
                               KdTensor *kv_k, KdTensor *kv_v, const unsigned char *pad) {
  const int N = S->shape[0], C = d->C, H = S->shape[2], W = S->shape[3], HW = H * W, T = is->T;
  KdTensor *Z = kd_relu(c, gn1(c, kd_conv_fwd(c, &d->z2d, p->detach_appearance ? kd_detach(c, S) : S)));
  if (!Z) return NULL;
  /* appearance: per image, (mask / max(count, 1)) @ Z^T */
  KdTensor **a = kd_ctx_alloc(c, 2 * (size_t)N * sizeof *a), **paint = a + N;
  if (!a) return NULL;
  for (int n = 0; n < N; n++) {
    const int r0 = is->off[n], m = is->off[n + 1] - r0;
    KdTensor *mn = kd_tensor_new(c, 2, (int[]){m, HW});
    if (!mn) return NULL;
    for (int j = 0; j < m; j++) {
      const float *src = masks + (size_t)(r0 + j) * HW;
      double cnt = 0;
      for (int q = 0; q < HW; q++) cnt += src[q];
      const float inv = 1.0f / (float)fmax(cnt, 1.0);
      for (int q = 0; q < HW; q++) mn->data[(size_t)j * HW + q] = src[q] * inv;
    }
    KdTensor *zn = kd_reshape(c, kd_slice(c, Z, 0, n, 1), 2, (int[]){C, HW});
    a[n] = kd_matmul(c, mn, zn, 0, 1);
  }
  KdTensor *app = N == 1 ? a[0] : kd_concat(c, a, N, 0);
  /* relation: queries from the appearance, 8 heads, within the image */
  KdTensor *q = pad_rows(c, in_proj(c, d, app, 0), is, N, C);
  KdTensor *att = kd_mha_attend(c, q, kv_k, kv_v, LGD_HEADS, pad, 1.0f / sqrtf((float)(C / LGD_HEADS)), NULL);
  KdTensor *u = kd_linear_fwd(c, &d->out_proj, unpad_rows(c, att, is, C));
  KdTensor *lu = kd_linear_fwd(c, &d->inst1d, u);
  if (!lu) return NULL;
  /* rendering: each real box paints Lin(u) over its cells */
  for (int n = 0; n < N; n++) {
    /* with the context box, every row but the image's last (the dummy of
     * an image without GT is then its context, as the official split) */
    const int r0 = is->off[n], g = is->off[n + 1] - r0 - (p->context ? 1 : 0);
    if (g == 0) {
      paint[n] = kd_tensor_zeros(c, 4, (int[]){1, C, H, W});
      continue;
    }
    KdTensor *mk = kd_tensor_wrap(c, (float *)masks + (size_t)r0 * HW, 2, (int[]){g, HW});
    paint[n] = kd_reshape(c, kd_matmul(c, kd_slice(c, lu, 0, r0, g), mk, 1, 0), 4, (int[]){1, C, H, W});
  }
  KdTensor *R = kd_conv_fwd(c, &d->inst2d, N == 1 ? paint[0] : kd_concat(c, paint, N, 0));
  if (p->context) {
    /* the context row is each image's last; an image without GT has only
     * the dummy, which the official rendering takes as its context too */
    int *rows = kd_ctx_alloc(c, (size_t)N * C * sizeof(int));
    if (!rows) return NULL;
    for (int n = 0; n < N; n++)
      for (int e = 0; e < C; e++) rows[n * C + e] = (is->off[n + 1] - 1) * C + e;
    KdTensor *uc = kd_reshape(c, kd_gather(c, u, rows, N * C), 2, (int[]){N, C});
    R = kd_add(c, R, kd_reshape(c, kd_linear_fwd(c, &d->ctx1d, uc), 4, (int[]){N, C, 1, 1}));
  }
  (void)T;
  R = kd_relu(c, R);
  R = kd_relu(c, gn1(c, kd_conv_fwd(c, &d->refine[0], R)));
  R = kd_relu(c, gn1(c, kd_conv_fwd(c, &d->refine[1], R)));
  return gn1(c, kd_conv_fwd(c, &d->refine[2], R));
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const LgdParams *p = inst->params;
  const Lgd *d = inst->state;
  KdCtx *c = in->c;
  if (!d || d->why[0]) {
    kd_ctx_fail(c, "lgd: %s", d ? d->why : "no learnable parts (the method was not initialised)");
    return -1;
  }
  if (!in->gt) {
    kd_ctx_fail(c, "lgd: no ground-truth boxes given");
    return -1;
  }
  if (!in->s.model || !in->det_lc) {
    kd_ctx_fail(c, "lgd: needs the student model and its loss settings (its head runs on the implicit teacher's maps)");
    return -1;
  }
  const int N = in->n, C = d->C, nlev = in->s.levels ? in->s.levels->n : 0;
  if (N < 1) {
    kd_ctx_fail(c, "lgd: no images");
    return -1;
  }
  for (int l = 0; l < nlev; l++) {
    const KdTensor *s = in->s.feat[l];
    if (!s || s->ndim != 4 || s->shape[0] != N || s->shape[1] != C) {
      kd_ctx_fail(c, "lgd: level %s: the student's features must be N=%d, C=%d", in->s.levels->name[l], N, C);
      return -1;
    }
  }
  Inst is;
  if (instances(c, in, d->K, p->context, &is)) return -1;
  /* keys and values: the label embeddings through canoni_proj_1D, shared by the levels */
  KdTensor *e = kd_relu(c, layer_norm(c, kd_linear_fwd(c, &d->canoni, label_embed(c, d, &is, N)), C));
  KdTensor *kk = pad_rows(c, in_proj(c, d, e, 1), &is, N, C), *vv = pad_rows(c, in_proj(c, d, e, 2), &is, N, C);
  unsigned char *pad = kd_ctx_alloc(c, (size_t)N * is.kmax);
  if (!kk || !vv || !pad) return -1;
  for (int n = 0; n < N; n++)
    for (int j = 0; j < is.kmax; j++) pad[n * is.kmax + j] = is.off[n] + j >= is.off[n + 1];
  KdTensor *tea[KD_MAX_LEVELS] = {0}, *sq[KD_MAX_LEVELS] = {0};
  size_t count = 0;
  for (int l = 0; l < nlev; l++) {
    KdTensor *S = in->s.feat[l];
    const int H = S->shape[2], W = S->shape[3];
    float *masks = kd_ctx_alloc(c, (size_t)is.T * H * W * sizeof(float));
    if (!masks) return -1;
    for (int t = 0; t < is.T; t++) inside(&is, t, H, W, (float)in->img_h, (float)in->img_w, masks + (size_t)t * H * W);
    tea[l] = teacher_level(c, d, p, &is, S, masks, kk, vv, pad);
    if (!tea[l]) return -1;
    count += S->numel;
    /* the probe's view: how many real boxes cover each cell */
    KdTensor *cov = kd_tensor_zeros(c, 4, (int[]){N, 1, H, W});
    if (!cov) return -1;
    for (int t = 0; t < is.T; t++) {
      const int n = is.img[t];
      if (t - is.off[n] >= is.nreal[n]) continue;
      for (int q = 0; q < H * W; q++) cov->data[(size_t)n * H * W + q] += masks[(size_t)t * H * W + q];
    }
    kd_distill_mask(out, "lgd.boxes", l, cov);
  }
  /* the student's head and loss on the teacher's maps */
  KdDetOut o;
  if (kd_model_head_forward(in->s.model, c, tea, &o)) return -1;
  KdDetLoss dl;
  KdError err;
  if (kd_model_loss(in->s.model, c, &o, in->gt, N, in->det_lc, &dl, &err)) {
    kd_ctx_fail(c, "lgd: the teacher maps' detection loss: %s", err.msg);
    return -1;
  }
  kd_distill_part(out, "det_t", kd_scale(c, dl.total, p->det_weight));
  for (int i = 0; i < dl.nparts && i < 2; i++)
    kd_distill_stat(out, i ? "det_t_box" : "det_t_cls", dl.parts[i].value ? dl.parts[i].value->data[0] : NAN);
  /* distillation: IN(adapter(S)) against IN(T), one mean over every value */
  const int detach = in->progress < p->delay;
  KdTensor *dist = NULL;
  const float scale = p->weight / (float)(count ? count : 1);
  for (int l = 0; l < nlev; l++) {
    KdTensor *x = in->s.feat[l];
    if (detach) x = kd_detach(c, x);
    x = kd_conv_fwd(c, &d->adapter[2], kd_relu(c, kd_conv_fwd(c, &d->adapter[1], kd_relu(c, kd_conv_fwd(c, &d->adapter[0], x)))));
    KdTensor *sn = kd_groupnorm(c, x, C, NULL, NULL, 1e-5f), *tn = kd_groupnorm(c, kd_detach(c, tea[l]), C, NULL, NULL, 1e-5f);
    sq[l] = kd_square(c, kd_sub(c, sn, tn));
    KdTensor *s = kd_sum_all(c, sq[l]);
    dist = dist ? kd_add(c, dist, s) : s;
    if (!sq[l]) return -1;
  }
  kd_distill_part(out, "distill", kd_scale(c, dist, scale));
  if (in->maps)
    for (int l = 0; l < nlev; l++) {
      const int H = sq[l]->shape[2], W = sq[l]->shape[3];
      KdTensor *g = kd_tensor_zeros(c, 4, (int[]){N, 1, H, W}), *en = kd_tensor_zeros(c, 4, (int[]){N, 1, H, W});
      if (!g || !en) return -1;
      for (int n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
          for (int q = 0; q < H * W; q++) {
            const size_t i = ((size_t)n * C + ch) * H * W + q;
            g->data[(size_t)n * H * W + q] += scale * sq[l]->data[i];
            en->data[(size_t)n * H * W + q] += tea[l]->data[i] * tea[l]->data[i] / (float)C;
          }
      kd_distill_gap(out, l, g);
      kd_distill_mask(out, "lgd.teacher", l, en);
    }
  kd_distill_stat(out, "instances", (double)is.T / N);
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_lgd = {
    .name = "lgd",
    .label = "LGD",
    .help = "Label-guided self-distillation (Zhang et al., AAAI 2022): no pretrained teacher; an implicit teacher built "
            "from the labels and the student's own features (PointNet label encoder, relation attention, box rendering), "
            "trained by the student's head, and imitated through an adapter under instance norm",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(LgdParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_GT | KD_NEED_ASSIGN | KD_NEED_STUDENT_RUN,
    .gap_label = "adapted student vs implicit teacher, instance-normalised",
    .gap_parts = "distill",
};
