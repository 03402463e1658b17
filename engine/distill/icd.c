/* ICD: instance-conditional knowledge distillation (Kang et al., NeurIPS
 * 2021), KD-METHODS-2 §A, after the official PyTorch release
 * (megvii-research/ICD). Per step:
 *   instances  the GTs plus sampled fakes (icd_inst.h), encoded by an MLP
 *              into queries Q0 [N, K, E]
 *   decoder    (teacher side, trained by the auxiliary task) one post-norm
 *              layer without self-attention over the teacher's levels as
 *              one sequence: keys T + pos_proj(sine), values T;
 *              Q1 = LN2(Q' + FFN(Q')), Q' = LN1(Q0 + out_proj(MHA))
 *   aux        predictor MLP(Q1) -> real/fake logit (BCE over real and
 *              fake) and sigmoid (l, t, r, b) from the jittered centre
 *              (L1 / (w, h, w, h), over the real ones)
 *   mimic      m[n,h,s] = sum_real softmax_s(logits / tau), no gradient;
 *              v_s = W_v S + b (the student's own value projection),
 *              v_t = the decoder's value projection of T (detached), both
 *              LayerNorm over the head dim without affine;
 *              L = w * mean_{n,h,d} sum_s m (v_s - v_t)^2 / max(sum_s m, 1e-6)
 * Parts: mimic (weight w), conf and reg (the auxiliary task). Every hidden
 * width is the neck width E (the official 256), 8 heads, FFN 4E. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/posembed.h"
#include "distill/icd_inst.h"
#include "distill/method.h"
#include "model/layers.h"

#define ICD_HEADS 8

typedef struct {
  int E, K;
  KdLinear enc[3], pos_proj, out_proj, ff1, ff2, pred[3];
  KdTensor *in_w, *in_b; /* the decoder's MHA in-projection [3E, E], [3E]: q, k, v rows */
  KdGn ln1, ln2;
  KdTensor *sv_w, *sv_b; /* the student's value projection [E, E], [E] */
  char why[160];          /* set: the shapes ICD cannot take (no parts) */
} Icd;

typedef struct {
  float weight, conf, reg, temp, fake_ratio, jitter, bypass;
  int norm;
} IcdParams;

static const char *const norm_choices[] = {"per_image", "pooled", NULL};

#define F(field, ...) KD_METHOD_FLOAT(IcdParams, "icd", field, __VA_ARGS__)
static const KdParamDesc params[] = {
    F(weight, "λ", "ICD mimic weight", 8.0, 0.0, 100.0, 1, "1,2,3,5,8",
      "lambda (WEIGHT_VALUE): weight of the instance-conditional mimic loss on the value projections (official "
      "configs: 8 RetinaNet and FCOS, 3 Faster R-CNN)"),
    F(conf, "w_conf", "Real/fake weight", 1.0, 0.0, 10.0, 1, "1,2,5",
      "Weight of the auxiliary real/fake BCE that trains the decoder and instance encoder (official 1; it reaches "
      "only ICD's own modules)"),
    F(reg, "w_reg", "Box regression weight", 1.0, 0.0, 10.0, 1, "1,2,5",
      "Weight of the auxiliary size-normalised L1 regression of the real boxes from the jittered centre (official 1; "
      "it reaches only ICD's own modules)"),
    F(temp, "τ", "Mask temperature", 1.0, 0.05, 10.0, 1, "1,1.5,2,3,5,8",
      "tau (TEMP_VALUE): temperature of the softmax of the teacher's attention logits that weights the mimic (1)"),
    F(fake_ratio, "r_fake", "Fakes per GT", 5.0, 0.0, 20.0, 0, "step 1",
      "Fake instances sampled per real GT (NUM_NEG_POS_RATIO 5: 6n queries per image, at most max(300, n))"),
    F(jitter, "δ", "Centre jitter", 0.3, 0.0, 1.0, 0, "step 0.05",
      "Centre jitter of every query as a fraction of its box size, uniform in +-delta (SAMPLE_RANGE 0.3)"),
    F(bypass, "t_0", "Detached until", 0.011, 0.0, 1.0, 0, "step 0.001",
      "Fraction of train.steps during which the student's features are detached (only the value projection learns "
      "from the mimic): the official 1000 of 90000 iterations = 0.011"),
    KD_METHOD_ENUM(IcdParams, "icd", norm, "norm", "Mimic normaliser", "per_image", norm_choices,
                   "per_image: per (image, head) weighted mean over positions, then a plain mean over images and "
                   "heads (PyTorch release); pooled: one weighted mean over the batch (MegEngine release)"),
};
#define NPARAMS (int)(sizeof params / sizeof params[0])

static int lin(KdLinear *l, KdParams *p, const char *name, int in, int out) {
  char full[96];
  snprintf(full, sizeof full, "distill.icd.%s", name);
  return kd_linear_add(l, p, full, in, out);
}

/* Shapes ICD cannot take leave it without parts (every method is created
 * by `kdscope loss`, whatever the file holds): its loss then fails with
 * the reason. */
static int init(KdMethodInst *inst, const KdDistillShapes *sh, KdParams *store, KdError *err) {
  Icd *d = calloc(1, sizeof *d);
  if (!d) return kd_error(err, "out of memory");
  inst->state = d;
  const int E = sh->t_channels, K = sh->num_classes;
  d->E = E, d->K = K;
  if (sh->s_channels != sh->t_channels)
    snprintf(d->why, sizeof d->why, "the student's neck width %d differs from the teacher's %d (ICD has no channel adapter)",
             sh->s_channels, sh->t_channels);
  else if (E % ICD_HEADS)
    snprintf(d->why, sizeof d->why, "neck width %d is not divisible by the decoder's %d heads", E, ICD_HEADS);
  else if (K < 1)
    snprintf(d->why, sizeof d->why, "needs the class count (got %d)", K);
  if (d->why[0]) return 0;
  const int din = K + KD_ICD_CENTRE_DIM + 2 * KD_ICD_SIZE_BINS;
  int rc = lin(&d->enc[0], store, "encoder.0", din, E) | lin(&d->enc[1], store, "encoder.1", E, E) |
           lin(&d->enc[2], store, "encoder.2", E, E) | lin(&d->pos_proj, store, "decoder.pos_proj", E, E) |
           lin(&d->out_proj, store, "decoder.attn.out_proj", E, E) | lin(&d->ff1, store, "decoder.linear1", E, 4 * E) |
           lin(&d->ff2, store, "decoder.linear2", 4 * E, E) | lin(&d->pred[0], store, "predictor.0", E, E) |
           lin(&d->pred[1], store, "predictor.1", E, E) | lin(&d->pred[2], store, "predictor.2", E, 5) |
           kd_gn_add(&d->ln1, store, "distill.icd.decoder.norm1", E, 1) |
           kd_gn_add(&d->ln2, store, "distill.icd.decoder.norm2", E, 1);
  d->in_w = kd_params_add(store, "distill.icd.decoder.attn.in_proj_weight", 2, (int[]){3 * E, E}, KD_PARAM_TRAIN);
  d->in_b = kd_params_add(store, "distill.icd.decoder.attn.in_proj_bias", 1, (int[]){3 * E}, KD_PARAM_TRAIN);
  d->sv_w = kd_params_add(store, "distill.icd.student.value.weight", 2, (int[]){E, E}, KD_PARAM_TRAIN);
  d->sv_b = kd_params_add(store, "distill.icd.student.value.bias", 1, (int[]){E}, KD_PARAM_TRAIN);
  if (rc || !d->in_w || !d->in_b || !d->sv_w || !d->sv_b) return kd_error(err, "icd: cannot register its parameters");
  return 0;
}

/* xavier_uniform over a 3E x E in-projection (bound sqrt(6 / 4E)), as
 * torch.nn.MultiheadAttention's _reset_parameters, bias 0. */
static void xavier(KdTensor *w, int E, KdRng *r) {
  const float b = sqrtf(6.0f / (float)(4 * E));
  for (size_t i = 0; i < w->numel; i++) w->data[i] = kd_rng_range(r, -b, b);
}

/* The init stream: encoder 0..2, pos_proj, in_proj, out_proj (bias 0),
 * linear1, linear2, predictor 0..2, the student's value rows. */
static void init_weights(KdMethodInst *inst, KdRng *r) {
  Icd *d = inst->state;
  if (d->why[0]) return;
  for (int i = 0; i < 3; i++) kd_linear_init(&d->enc[i], r);
  kd_linear_init(&d->pos_proj, r);
  xavier(d->in_w, d->E, r);
  kd_init_const(d->in_b, 0.0f);
  kd_linear_init(&d->out_proj, r);
  kd_init_const(d->out_proj.b, 0.0f);
  kd_linear_init(&d->ff1, r);
  kd_linear_init(&d->ff2, r);
  for (int i = 0; i < 3; i++) kd_linear_init(&d->pred[i], r);
  kd_init_const(d->ln1.gamma, 1.0f), kd_init_const(d->ln1.beta, 0.0f);
  kd_init_const(d->ln2.gamma, 1.0f), kd_init_const(d->ln2.beta, 0.0f);
  xavier(d->sv_w, d->E, r);
  kd_init_const(d->sv_b, 0.0f);
}

static void destroy(KdMethodInst *inst) { free(inst->state); }

static void *arena_alloc(void *c, size_t n) { return kd_ctx_alloc(c, n ? n : 1); }

/* The paired levels of one side as one sequence N, L, E (level order). */
static KdTensor *sequence(KdCtx *c, const KdDistillInputs *in, int teacher) {
  KdTensor *parts[KD_DISTILL_MAX_LEVELS];
  for (int l = 0; l < in->npairs; l++) {
    KdTensor *x = kd_to_plain(c, teacher ? in->t.feat[in->pairs[l].t] : in->s.feat[in->pairs[l].s]);
    if (!x) return NULL;
    const int N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    parts[l] = kd_reshape(c, kd_permute(c, x, (int[]){0, 2, 3, 1}), 3, (int[]){N, HW, C});
  }
  return in->npairs == 1 ? parts[0] : kd_concat(c, parts, in->npairs, 1);
}

/* x @ W[rows r0..r0+E)^T + b[r0..] for a 3E x E in-projection. */
static KdTensor *in_proj(KdCtx *c, const Icd *d, KdTensor *x, int which) {
  KdTensor *w = kd_slice(c, d->in_w, 0, which * d->E, d->E), *b = kd_slice(c, d->in_b, 0, which * d->E, d->E);
  return kd_add(c, kd_matmul(c, x, w, 0, 1), b);
}

/* LayerNorm over the last `width` values of each row (groupnorm with one
 * group on rows x width x 1 x 1); g NULL: no affine. Keeps x's shape. */
static KdTensor *layer_norm(KdCtx *c, KdTensor *x, const KdGn *g, int width, float eps) {
  if (!x) return NULL;
  const int rows = (int)(x->numel / (size_t)width);
  KdTensor *y = kd_groupnorm(c, kd_reshape(c, x, 4, (int[]){rows, width, 1, 1}), 1, g ? g->gamma : NULL,
                             g ? g->beta : NULL, eps);
  return kd_reshape(c, y, x->ndim, x->shape);
}

static KdTensor *mlp3(KdCtx *c, const KdLinear *l, KdTensor *x) {
  x = kd_relu(c, kd_linear_fwd(c, &l[0], x));
  x = kd_relu(c, kd_linear_fwd(c, &l[1], x));
  return kd_linear_fwd(c, &l[2], x);
}

/* Padding of the sequence (A.2): a cell beyond ceil(h / stride) rows or
 * ceil(w / stride) columns of the input image; none at fixed-size inputs. */
static unsigned char *key_padding(KdCtx *c, const KdDistillInputs *in, int L, float *pos, int E) {
  unsigned char *pad = kd_ctx_alloc(c, (size_t)in->n * L);
  if (!pad) return NULL;
  int s0 = 0;
  for (int l = 0; l < in->npairs; l++) {
    const KdTensor *x = in->t.feat[in->pairs[l].t];
    const int H = x->shape[2], W = x->shape[3];
    const float stride = 0.5f * ((float)in->img_h / (float)H + (float)in->img_w / (float)W);
    int hv = (int)ceilf((float)in->img_h / stride), wv = (int)ceilf((float)in->img_w / stride);
    hv = hv < 1 ? 1 : hv > H ? H : hv, wv = wv < 1 ? 1 : wv > W ? W : wv;
    kd_pos_sine_2d(pos + (size_t)s0 * E, H, W, hv, wv, E / 2, 10000.0f);
    for (int n = 0; n < in->n; n++)
      for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) pad[(size_t)n * L + s0 + y * W + xx] = y >= hv || xx >= wv;
    s0 += H * W;
  }
  return pad;
}

/* For the probe's panel: every valid query's attention (softmax of its
 * logits / T over the unpadded cells, mean over heads), one row per
 * query: image, real (1) or fake (0), class, box (input pixels), then the
 * L cells of the levels in order. */
static int query_table(KdCtx *c, const KdIcdInst *is, const KdTensor *logits, const unsigned char *pad, int N, int H, int L,
                       float temp, int K, int img_w, int img_h, KdDistillOut *out) {
  const int Kq = is->kmax, cols = 7 + L;
  if (is->nvalid < 1) return 0;
  KdTensor *t = kd_tensor_zeros(c, 2, (int[]){is->nvalid, cols});
  if (!t) return -1;
  int r = 0;
  for (int n = 0; n < N; n++)
    for (int j = 0; j < Kq && r < is->nvalid; j++) {
      const int q = n * Kq + j;
      if (!is->valid[q]) continue;
      float *row = t->data + (size_t)r++ * cols;
      int cls = 0;
      for (int k = 1; k < K; k++)
        if (is->desc[(size_t)q * is->din + k] > is->desc[(size_t)q * is->din + cls]) cls = k;
      const float *b = is->box + (size_t)q * 4;
      const float head[7] = {(float)n, is->real[q] ? 1.0f : 0.0f, (float)cls, b[0] * img_w, b[1] * img_h, b[2] * img_w, b[3] * img_h};
      memcpy(row, head, sizeof head);
      for (int h = 0; h < H; h++) {
        const float *lg = logits->data + (((size_t)n * H + h) * Kq + j) * L;
        float mx = -INFINITY;
        for (int s = 0; s < L; s++)
          if (!pad[(size_t)n * L + s] && lg[s] / temp > mx) mx = lg[s] / temp;
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int s = 0; s < L; s++) sum += pad[(size_t)n * L + s] ? 0.0 : exp(lg[s] / temp - mx);
        for (int s = 0; s < L; s++)
          if (!pad[(size_t)n * L + s]) row[7 + s] += (float)(exp(lg[s] / temp - mx) / sum / H);
      }
    }
  kd_distill_table(out, "queries", t, 1);
  return 0;
}

static int loss(KdMethodInst *inst, const KdDistillInputs *in, KdDistillOut *out) {
  const IcdParams *p = inst->params;
  const Icd *d = inst->state;
  KdCtx *c = in->c;
  if (!d || d->why[0]) {
    kd_ctx_fail(c, "icd: %s", d ? d->why : "no learnable parts (the method was not initialised)");
    return -1;
  }
  if (!in->gt) {
    kd_ctx_fail(c, "icd: no ground-truth boxes given");
    return -1;
  }
  const int N = in->n, E = d->E, H = ICD_HEADS, D = E / H;
  for (int l = 0; l < in->npairs; l++) {
    const KdTensor *t = in->t.feat[in->pairs[l].t], *s = in->s.feat[in->pairs[l].s];
    if (!t || !s || t->shape[1] != E || s->shape[1] != E || t->shape[0] != N || s->shape[0] != N ||
        t->shape[2] != s->shape[2] || t->shape[3] != s->shape[3]) {
      kd_ctx_fail(c, "icd: level %s: teacher and student features must be N=%d, C=%d of one size", in->pairs[l].name, N, E);
      return -1;
    }
  }
  KdIcdInstCfg ic = {.num_classes = d->K, .fake_ratio = p->fake_ratio, .jitter = p->jitter, .img_h = in->img_h, .img_w = in->img_w};
  KdIcdInst is;
  KdRng local;
  char why[256] = "out of memory for the instances";
  if (!in->rng) kd_rng_seed(&local, 1, 26); /* `kdscope loss` without icd.instances: a fixed draw */
  int rc = in->icd_inst ? kd_icd_instances_given(&ic, in->icd_inst, in->icd_ninst, N, arena_alloc, c, &is, why, sizeof why)
                        : kd_icd_instances(&ic, in->gt, N, in->rng ? in->rng : &local, arena_alloc, c, &is);
  if (rc) {
    kd_ctx_fail(c, "icd: %s", why);
    return -1;
  }
  for (int n = 0; n < N; n++)
    for (int g = 0; g < in->gt[n].n; g++)
      if (in->gt[n].labels[g] < 0 || in->gt[n].labels[g] >= d->K) {
        kd_ctx_fail(c, "icd: image %d GT %d has class %d, expected 0..%d", n, g, in->gt[n].labels[g], d->K - 1);
        return -1;
      }
  const int Kq = is.kmax, R = N * Kq;

  /* ---- teacher side: encoder, decoder layer, auxiliary task ---- */
  KdTensor *tseq = kd_detach(c, sequence(c, in, 1));
  if (!tseq) return -1;
  const int L = tseq->shape[1];
  KdTensor *pos1 = kd_tensor_new(c, 2, (int[]){L, E});
  unsigned char *pad = pos1 ? key_padding(c, in, L, pos1->data, E) : NULL;
  if (!pad) return -1;
  KdTensor *tflat = kd_reshape(c, tseq, 2, (int[]){N * L, E});
  KdTensor *desc = kd_tensor_wrap(c, is.desc, 2, (int[]){R, is.din});
  KdTensor *q0 = mlp3(c, d->enc, desc);
  /* keys: T + pos_proj(pos), the same pos for every image */
  KdTensor *kt = kd_add(c, kd_reshape(c, tseq, 3, (int[]){N, L, E}), kd_linear_fwd(c, &d->pos_proj, pos1));
  KdTensor *q = kd_reshape(c, in_proj(c, d, q0, 0), 3, (int[]){N, Kq, E});
  KdTensor *k = kd_reshape(c, in_proj(c, d, kd_reshape(c, kt, 2, (int[]){N * L, E}), 1), 3, (int[]){N, L, E});
  KdTensor *vt = in_proj(c, d, tflat, 2);
  KdTensor *logits = NULL;
  KdTensor *att = kd_mha_attend(c, q, k, kd_reshape(c, vt, 3, (int[]){N, L, E}), H, pad, 1.0f / sqrtf((float)D), &logits);
  KdTensor *o = kd_linear_fwd(c, &d->out_proj, kd_reshape(c, att, 2, (int[]){R, E}));
  KdTensor *q1 = layer_norm(c, kd_add(c, q0, o), &d->ln1, E, 1e-5f);
  q1 = layer_norm(c, kd_add(c, q1, kd_linear_fwd(c, &d->ff2, kd_relu(c, kd_linear_fwd(c, &d->ff1, q1)))), &d->ln2, E, 1e-5f);
  KdTensor *pred = mlp3(c, d->pred, q1);
  if (!pred || !logits) return -1;
  KdTensor *conf = kd_slice(c, pred, 1, 0, 1), *box = kd_sigmoid(c, kd_slice(c, pred, 1, 1, 4));
  KdTensor *y = kd_tensor_new(c, 2, (int[]){R, 1}), *wc = kd_tensor_new(c, 2, (int[]){R, 1});
  KdTensor *tg = kd_tensor_wrap(c, is.target, 2, (int[]){R, 4}), *wr = kd_tensor_new(c, 2, (int[]){R, 4});
  if (!y || !wc || !wr || !tg) return -1;
  const float inv_valid = 1.0f / fmaxf((float)is.nvalid, 1e-6f), inv_real = 1.0f / fmaxf((float)is.nreal, 1e-6f);
  for (int r = 0; r < R; r++) {
    y->data[r] = is.real[r];
    wc->data[r] = is.valid[r] ? inv_valid : 0.0f;
    const float *t = is.target + (size_t)r * 4, sw = t[0] + t[2], sh = t[1] + t[3];
    for (int j = 0; j < 4; j++) wr->data[r * 4 + j] = is.real[r] ? inv_real / fmaxf(j % 2 ? sh : sw, 1e-7f) : 0.0f;
  }
  /* BCE with logits: relu(x) - x y + log(1 + exp(-|x|)) */
  KdTensor *bce = kd_add(c, kd_sub(c, kd_relu(c, conf), kd_mul(c, conf, y)),
                         kd_log(c, kd_add_scalar(c, kd_exp(c, kd_scale(c, kd_abs(c, conf), -1.0f)), 1.0f)));
  kd_distill_part(out, "conf", kd_scale(c, kd_sum_all(c, kd_mul(c, bce, wc)), p->conf));
  kd_distill_part(out, "reg", kd_scale(c, kd_sum_all(c, kd_mul(c, kd_abs(c, kd_sub(c, box, tg)), wr)), p->reg));

  /* ---- the mask: the real queries' attention, per head and position ---- */
  float *m = kd_ctx_alloc(c, (size_t)N * H * L * sizeof *m), *row = kd_ctx_alloc(c, (size_t)L * sizeof *row);
  if (!m || !row) return -1;
  memset(m, 0, (size_t)N * H * L * sizeof *m);
  double msum_all = 0;
  for (int n = 0; n < N; n++)
    for (int h = 0; h < H; h++)
      for (int j = 0; j < Kq; j++) {
        if (!is.real[n * Kq + j]) continue;
        const float *lg = logits->data + (((size_t)n * H + h) * Kq + j) * L;
        float mx = -INFINITY;
        for (int s = 0; s < L; s++)
          if (!pad[(size_t)n * L + s] && lg[s] / p->temp > mx) mx = lg[s] / p->temp;
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int s = 0; s < L; s++) sum += row[s] = pad[(size_t)n * L + s] ? 0.0f : expf(lg[s] / p->temp - mx);
        float *mn = m + ((size_t)n * H + h) * L;
        for (int s = 0; s < L; s++) mn[s] += (float)(row[s] / sum);
      }
  for (size_t i = 0; i < (size_t)N * H * L; i++) msum_all += m[i];
  if (in->maps && query_table(c, &is, logits, pad, N, H, L, p->temp, d->K, in->img_w, in->img_h, out)) return -1;

  /* ---- mimic on the value projections ---- */
  KdTensor *sseq = sequence(c, in, 0);
  if (in->progress < p->bypass) sseq = kd_detach(c, sseq);
  KdTensor *vs = kd_add(c, kd_matmul(c, kd_reshape(c, sseq, 2, (int[]){N * L, E}), d->sv_w, 0, 1), d->sv_b);
  KdTensor *vs_n = layer_norm(c, vs, NULL, D, 1e-5f), *vt_n = layer_norm(c, kd_detach(c, vt), NULL, D, 1e-5f);
  KdTensor *wm = kd_tensor_new(c, 2, (int[]){N * L, E});
  if (!vs_n || !vt_n || !wm) return -1;
  for (int n = 0; n < N; n++)
    for (int h = 0; h < H; h++) {
      const float *mn = m + ((size_t)n * H + h) * L;
      double tot = 0;
      for (int s = 0; s < L; s++) tot += mn[s];
      const double den = p->norm == 0 ? fmax(tot, 1e-6) * N * H * D : fmax(msum_all, 1e-6) * D;
      for (int s = 0; s < L; s++) {
        float *w = wm->data + (((size_t)n * L + s) * H + h) * D;
        for (int e = 0; e < D; e++) w[e] = (float)(mn[s] / den);
      }
    }
  KdTensor *diff = kd_sub(c, vs_n, vt_n);
  kd_distill_part(out, "mimic", kd_scale(c, kd_sum_all(c, kd_mul(c, kd_square(c, diff), wm)), p->weight));
  if (in->maps && diff) /* the mimic per cell: weight x sum_{h,d} w (v_s - v_t)^2; the levels' maps sum to it */
    for (int l = 0, s0 = 0; l < in->npairs; l++) {
      const KdTensor *x = in->t.feat[in->pairs[l].t];
      const int HW = x->shape[2] * x->shape[3];
      KdTensor *g = kd_tensor_zeros(c, 4, (int[]){N, 1, x->shape[2], x->shape[3]});
      if (!g) return -1;
      for (int n = 0; n < N; n++)
        for (int s = 0; s < HW; s++) {
          const size_t o = ((size_t)n * L + s0 + s) * E;
          double acc = 0;
          for (int e = 0; e < E; e++) acc += (double)wm->data[o + e] * diff->data[o + e] * diff->data[o + e];
          g->data[(size_t)n * HW + s] = (float)(p->weight * acc);
        }
      kd_distill_gap(out, in->pairs[l].s, g);
      s0 += HW;
    }

  /* The mask per level, mean over heads (the probe's and panel's view). */
  for (int l = 0, s0 = 0; l < in->npairs; l++) {
    const KdTensor *x = in->t.feat[in->pairs[l].t];
    const int Hh = x->shape[2], Ww = x->shape[3];
    KdTensor *mm = kd_tensor_zeros(c, 4, (int[]){N, 1, Hh, Ww});
    if (!mm) return -1;
    for (int n = 0; n < N; n++)
      for (int h = 0; h < H; h++)
        for (int s = 0; s < Hh * Ww; s++) mm->data[(size_t)n * Hh * Ww + s] += m[((size_t)n * H + h) * L + s0 + s] / H;
    kd_distill_mask(out, "icd.attn", in->pairs[l].s, mm);
    s0 += Hh * Ww;
  }
  kd_distill_stat(out, "queries", (double)is.nvalid / (N > 0 ? N : 1));
  kd_distill_stat(out, "real_mass", msum_all / H / (N > 0 ? N : 1));
  return kd_distill_finish(c, out);
}

const KdMethod kd_method_icd = {
    .name = "icd",
    .label = "ICD",
    .help = "Instance-conditional KD (Kang et al., NeurIPS 2021): GT and fake instance queries attend to the teacher's "
            "features in a decoder trained by a real/fake + box task; the student's value projection mimics the "
            "teacher's where the real queries look",
    .params = params,
    .nparams = NPARAMS,
    .params_size = sizeof(IcdParams),
    .init = init,
    .init_weights = init_weights,
    .destroy = destroy,
    .loss = loss,
    .needs = KD_NEED_FEAT | KD_NEED_SAME_WIDTH | KD_NEED_GT,
    .gap_label = "value projections, LN per head, weighted by the real queries' attention",
    .gap_parts = "mimic",
};
