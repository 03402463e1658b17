/* The PGM service (pgm_service.h): pool, features, selection, events. */
#include "train/pgm_service.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "data/jpeg.h"
#include "data/transform.h"
#include "distill/gk.h"
#include "distill/pgm.h"
#include "train/settings.h"

#define BATCH 16

typedef struct {
  int slot;    /* index into img[] */
  int label;
  float box[4]; /* input pixels */
} PoolInst;

struct KdPgmService {
  KdPgmRun r;
  int K, npairs, s_lev[KD_MAX_LEVELS], t_lev[KD_MAX_LEVELS], stride[KD_MAX_LEVELS], cs, ct;
  KdImageCfg ic;
  /* the pool and the settings it was made with */
  int built, max_images;
  double min_size;
  long seed;
  int nimg, *img;      /* dataset indices, ascending */
  int ninst;
  PoolInst *inst;      /* image by image */
  int **cls, *ncls;    /* per class: instance indices in the class's shuffled image order */
  unsigned char *bad;  /* [ninst]: its image failed to load */
  float *tfeat[KD_MAX_LEVELS], *sfeat[KD_MAX_LEVELS]; /* ninst x C per paired level */
  int have_t;
  KdCtx *ctx;
  KdPgmCost cost;
  int gk;              /* the registry index of method gk */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void free_pool(KdPgmService *p) {
  for (int k = 0; p->cls && k < p->K; k++) free(p->cls[k]);
  free(p->cls), free(p->ncls), free(p->img), free(p->inst), free(p->bad);
  for (int l = 0; l < KD_MAX_LEVELS; l++) free(p->tfeat[l]), free(p->sfeat[l]), p->tfeat[l] = p->sfeat[l] = NULL;
  p->cls = NULL, p->ncls = NULL, p->img = NULL, p->inst = NULL, p->bad = NULL;
  p->built = p->have_t = 0, p->nimg = p->ninst = 0;
}

KdPgmService *kd_pgm_service_new(const KdPgmRun *r, KdError *err) {
  KdPgmService *p = calloc(1, sizeof *p);
  if (!p) return kd_error(err, "out of memory"), NULL;
  p->r = *r;
  p->K = kd_dataset_num_classes(r->train);
  p->gk = -1;
  for (int i = 0; i < kd_method_count(); i++)
    if (!strcmp(kd_method_at(i)->name, "gk")) p->gk = i;
  const KdLevels *sl = kd_model_levels(r->student), *tl = kd_model_levels(r->teacher);
  for (int i = 0; i < sl->n; i++) {
    const int j = kd_levels_find(tl, sl->stride[i]);
    if (j < 0) continue;
    p->s_lev[p->npairs] = i, p->t_lev[p->npairs] = j, p->stride[p->npairs++] = sl->stride[i];
  }
  p->cs = kd_model_channels(r->student), p->ct = kd_model_channels(r->teacher);
  if (kd_settings_image(r->cfg, &p->ic, err)) {
    free(p);
    return NULL;
  }
  return p; /* the forward context is made at the first generation */
}

void kd_pgm_service_free(KdPgmService *p) {
  if (!p) return;
  free_pool(p);
  kd_ctx_free(p->ctx);
  free(p);
}

void kd_pgm_service_set_rundir(KdPgmService *p, KdRunDir *run) { p->r.run = run; }

void kd_pgm_service_cost(const KdPgmService *p, KdPgmCost *out) { *out = p->cost; }

/* The pool: per class the images with a qualifying box, shuffled, cut. */
static int build_pool(KdPgmService *p, KdError *err) {
  free_pool(p);
  const KdDataset *ds = p->r.train;
  const int N = kd_dataset_num_images(ds), K = p->K;
  p->min_size = kd_config_num(p->r.cfg, "gk.min_size");
  p->max_images = (int)kd_config_num(p->r.cfg, "gk.max_images");
  p->seed = kd_config_int(p->r.cfg, "train.seed");
  int **imgs = calloc((size_t)K, sizeof *imgs), *nimgs = calloc((size_t)K, sizeof *nimgs);
  unsigned char *keep = calloc((size_t)N * K, 1); /* (image, class) kept */
  float *tmp = NULL;
  size_t tmp_cap = 0;
  int rc = -1;
  p->cls = calloc((size_t)K, sizeof *p->cls), p->ncls = calloc((size_t)K, sizeof *p->ncls);
  if (!imgs || !nimgs || !keep || !p->cls || !p->ncls) goto oom;
  for (int k = 0; k < K; k++)
    if (!(imgs[k] = malloc(sizeof(int) * (size_t)(N ? N : 1)))) goto oom;
  /* Qualifying boxes, in input pixels as the evaluation loader maps them. */
  for (int i = 0; i < N; i++) {
    KdDatasetImage im = kd_dataset_image(ds, i);
    if ((size_t)im.n_boxes * 4 > tmp_cap) {
      free(tmp);
      tmp_cap = (size_t)im.n_boxes * 4;
      if (!(tmp = malloc(sizeof *tmp * tmp_cap))) goto oom;
    }
    KdXform xf = kd_xform_make(&p->ic, im.width, im.height, 0);
    kd_xform_boxes_to_input(&xf, im.boxes, tmp, im.n_boxes);
    for (int b = 0; b < im.n_boxes; b++) {
      const float *x = tmp + 4 * b;
      const int k = im.labels[b];
      if (im.crowd[b] || k < 0 || k >= K || !(x[2] - x[0] > p->min_size && x[3] - x[1] > p->min_size)) continue;
      if (!nimgs[k] || imgs[k][nimgs[k] - 1] != i) imgs[k][nimgs[k]++] = i;
    }
  }
  for (int k = 0; k < K; k++) {
    KdRng r;
    kd_rng_seed(&r, (uint64_t)p->seed, 0x70676d00u + (uint64_t)k);
    for (int i = nimgs[k] - 1; i > 0; i--) {
      const int j = (int)kd_rng_below(&r, (uint32_t)i + 1), t = imgs[k][i];
      imgs[k][i] = imgs[k][j], imgs[k][j] = t;
    }
    if (nimgs[k] > p->max_images) nimgs[k] = p->max_images;
    for (int i = 0; i < nimgs[k]; i++) keep[(size_t)imgs[k][i] * K + k] = 1;
  }
  /* Images and their instances in data-set order. */
  int *slot = malloc(sizeof(int) * (size_t)(N ? N : 1)), ninst = 0, cap = 1024;
  p->img = malloc(sizeof(int) * (size_t)(N ? N : 1));
  p->inst = malloc(sizeof *p->inst * (size_t)cap);
  if (!slot || !p->img || !p->inst) {
    free(slot);
    goto oom;
  }
  for (int i = 0; i < N; i++) {
    slot[i] = -1;
    int any = 0;
    for (int k = 0; k < K; k++) any |= keep[(size_t)i * K + k];
    if (!any) continue;
    slot[i] = p->nimg, p->img[p->nimg++] = i;
    KdDatasetImage im = kd_dataset_image(ds, i);
    KdXform xf = kd_xform_make(&p->ic, im.width, im.height, 0);
    kd_xform_boxes_to_input(&xf, im.boxes, tmp, im.n_boxes);
    for (int b = 0; b < im.n_boxes; b++) {
      const float *x = tmp + 4 * b;
      const int k = im.labels[b];
      if (im.crowd[b] || k < 0 || k >= K || !keep[(size_t)i * K + k] ||
          !(x[2] - x[0] > p->min_size && x[3] - x[1] > p->min_size))
        continue;
      if (ninst == cap) {
        PoolInst *g = realloc(p->inst, sizeof *g * (size_t)(cap *= 2));
        if (!g) {
          free(slot);
          goto oom;
        }
        p->inst = g;
      }
      p->inst[ninst++] = (PoolInst){.slot = slot[i], .label = k, .box = {x[0], x[1], x[2], x[3]}};
    }
  }
  p->ninst = ninst;
  /* Each class's instances in its shuffled image order. */
  for (int k = 0; k < K; k++) {
    int n = 0;
    for (int j = 0; j < ninst; j++) n += p->inst[j].label == k;
    if (!(p->cls[k] = malloc(sizeof(int) * (size_t)(n ? n : 1)))) {
      free(slot);
      goto oom;
    }
    for (int i = 0; i < nimgs[k]; i++)
      for (int j = 0; j < ninst; j++)
        if (p->inst[j].label == k && p->inst[j].slot == slot[imgs[k][i]]) p->cls[k][p->ncls[k]++] = j;
  }
  free(slot);
  p->bad = calloc((size_t)(ninst ? ninst : 1), 1);
  for (int l = 0; l < p->npairs; l++) {
    p->tfeat[l] = malloc(sizeof(float) * (size_t)(ninst ? ninst : 1) * p->ct);
    p->sfeat[l] = malloc(sizeof(float) * (size_t)(ninst ? ninst : 1) * p->cs);
    if (!p->tfeat[l] || !p->sfeat[l]) goto oom;
  }
  if (!p->bad) goto oom;
  p->built = 1;
  rc = 0;
  goto done;
oom:
  kd_error(err, "pgm: out of memory for the pool");
done:
  for (int k = 0; imgs && k < K; k++) free(imgs[k]);
  free(imgs), free(nimgs), free(keep), free(tmp);
  return rc;
}

/* Crop means of every instance of pool images [i0, i1) on the paired
 * levels of model m (teacher: 1) after its eval forward. */
static int features(KdPgmService *p, KdModel *m, int teacher, KdError *err) {
  const int S = p->ic.size, C = teacher ? p->ct : p->cs;
  const size_t npx = 3 * (size_t)S * S;
  float *images = malloc(sizeof(float) * npx * BATCH);
  KdJpeg *jp = kd_jpeg_new();
  KdImage img = {0};
  KdPrepScratch scratch = {0};
  int rc = -1, j0 = 0;
  if (!images || !jp) {
    kd_error(err, "pgm: out of memory for the images");
    goto out;
  }
  for (int i0 = 0; i0 < p->nimg; i0 += BATCH) {
    const int n = p->nimg - i0 < BATCH ? p->nimg - i0 : BATCH;
    unsigned char ok[BATCH];
    for (int b = 0; b < n; b++) {
      const int idx = p->img[i0 + b];
      KdDatasetImage im = kd_dataset_image(p->r.train, idx);
      char path[4096];
      KdXform probe = kd_xform_make(&p->ic, im.width, im.height, 0), xf;
      const int cw = (int)(im.width * probe.sx + 0.5f), ch = (int)(im.height * probe.sy + 0.5f);
      KdError e;
      KdAugment none = kd_augment_none();
      ok[b] = !kd_dataset_image_path(p->r.train, idx, path, sizeof path) && !kd_jpeg_read_file(jp, path, cw, ch, &img, &e);
      if (ok[b] && kd_image_prepare(&p->ic, &img, im.width, im.height, &none, images + npx * b, &xf, &scratch, err)) goto out;
      if (!ok[b]) memset(images + npx * b, 0, sizeof(float) * npx);
    }
    KdCtx *c = p->ctx;
    kd_ctx_reset(c);
    KdDetOut o;
    if (kd_model_forward(m, c, kd_tensor_wrap(c, images, 4, (int[]){n, 3, S, S}), 0, &o)) {
      kd_error(err, "pgm: %s forward: %s", teacher ? "teacher" : "student", kd_ctx_error(c));
      goto out;
    }
    for (; j0 < p->ninst && p->inst[j0].slot < i0 + n; j0++) {
      const PoolInst *x = &p->inst[j0];
      const int b = x->slot - i0;
      if (!ok[b]) {
        p->bad[j0] = 1;
        continue;
      }
      for (int l = 0; l < p->npairs; l++) {
        KdTensor *f = kd_to_plain(c, o.feat[teacher ? p->t_lev[l] : p->s_lev[l]]);
        if (!f) {
          kd_error(err, "pgm: %s", kd_ctx_error(c));
          goto out;
        }
        const int H = f->shape[2], W = f->shape[3];
        int r0, r1, c0, c1;
        kd_gk_crop(x->box, p->stride[l], S, S, H, W, &r0, &r1, &c0, &c1);
        float *dst = (teacher ? p->tfeat[l] : p->sfeat[l]) + (size_t)j0 * C;
        const double inv = 1.0 / ((r1 - r0 + 1) * (c1 - c0 + 1));
        for (int k = 0; k < C; k++) {
          const float *q = f->data + ((size_t)b * C + k) * H * W;
          double s = 0.0;
          for (int y = r0; y <= r1; y++)
            for (int xx = c0; xx <= c1; xx++) s += q[y * W + xx];
          dst[k] = (float)(s * inv);
        }
      }
    }
  }
  kd_ctx_reset(p->ctx);
  rc = 0;
out:
  free(images);
  kd_jpeg_free(jp);
  kd_image_free(&img);
  kd_prep_scratch_free(&scratch);
  return rc;
}

static void event(KdPgmService *p, int step, const char *type, const char *extra) {
  if (p->r.run) kd_rundir_event(p->r.run, step, type, extra, NULL);
}

/* PGM on every paired level and class into the gk state. */
static int select_all(KdPgmService *p, KdParams *store, int step, int *nproto, int *distinct, KdError *err) {
  KdPgmCfg pc = {.num_prototypes = (int)kd_config_num(p->r.cfg, "gk.num_prototypes"),
                 .sigma = kd_config_num(p->r.cfg, "gk.sigma"),
                 .cut = kd_config_num(p->r.cfg, "gk.cut"),
                 .alpha = kd_config_num(p->r.cfg, "gk.alpha")};
  const int P = pc.num_prototypes, K = p->K;
  int cap = p->ninst ? p->ninst : 1, rc = -1;
  float *fs = malloc(sizeof(float) * (size_t)cap * p->cs), *ft = malloc(sizeof(float) * (size_t)cap * p->ct);
  float *ps = malloc(sizeof(float) * (size_t)K * P * p->cs), *pt = malloc(sizeof(float) * (size_t)K * P * p->ct);
  int *rows = malloc(sizeof(int) * (size_t)cap), *lab = malloc(sizeof(int) * (size_t)K * P), *idx = malloc(sizeof(int) * P);
  unsigned char *empty = calloc((size_t)K * KD_MAX_LEVELS, 1);
  if (!fs || !ft || !ps || !pt || !rows || !lab || !idx || !empty) {
    kd_error(err, "pgm: out of memory");
    goto out;
  }
  *nproto = *distinct = 0;
  for (int l = 0; l < p->npairs; l++) {
    int m = 0;
    for (int k = 0; k < K; k++) {
      int n = 0;
      for (int i = 0; i < p->ncls[k]; i++) {
        const int j = p->cls[k][i];
        if (p->bad[j]) continue;
        memcpy(fs + (size_t)n * p->cs, p->sfeat[l] + (size_t)j * p->cs, sizeof(float) * p->cs);
        memcpy(ft + (size_t)n * p->ct, p->tfeat[l] + (size_t)j * p->ct, sizeof(float) * p->ct);
        rows[n++] = j;
      }
      const int got = kd_pgm_select(fs, p->cs, ft, p->ct, n, &pc, idx, NULL, err);
      if (got < 0) goto out;
      if (!got) empty[k * KD_MAX_LEVELS + l] = 1;
      for (int q = 0; q < got; q++, m++) {
        memcpy(ps + (size_t)m * p->cs, fs + (size_t)idx[q] * p->cs, sizeof(float) * p->cs);
        memcpy(pt + (size_t)m * p->ct, ft + (size_t)idx[q] * p->ct, sizeof(float) * p->ct);
        lab[m] = k;
        int seen = 0;
        for (int r = 0; r < q; r++) seen |= idx[r] == idx[q];
        *distinct += !seen;
      }
    }
    if (kd_gk_set_level(store, l, pt, ps, lab, m, err)) goto out;
    *nproto += m;
  }
  for (int k = 0; k < K; k++) {
    char levels[128] = "", extra[512];
    size_t o = 0;
    for (int l = 0; l < p->npairs; l++)
      if (empty[k * KD_MAX_LEVELS + l]) o += (size_t)snprintf(levels + o, sizeof levels - o, "%s\"P%d\"", o ? "," : "", (int)log2(p->stride[l]));
    if (!o) continue;
    char name[128];
    kd_json_escape(kd_dataset_class_name(p->r.train, k), name, sizeof name);
    snprintf(extra, sizeof extra, "\"class\":%d,\"name\":\"%s\",\"levels\":[%s],\"instances\":%d", k, name, levels,
             p->ncls[k]);
    event(p, step, "gk_no_prototypes", extra);
  }
  rc = 0;
out:
  free(fs), free(ft), free(ps), free(pt), free(rows), free(lab), free(idx), free(empty);
  return rc;
}

int kd_pgm_service_before_step(KdPgmService *p, int step, int *ran, KdError *err) {
  if (ran) *ran = 0;
  if (p->gk < 0) return 0;
  int active[KD_DISTILL_MAX_OUT]; /* no allocation in a step that generates nothing */
  if (kd_distill_parse_methods(kd_config_str(p->r.cfg, "distill.methods"), active, err)) return -1;
  const int listed = active[p->gk];
  KdParams *store = kd_distiller_params(p->r.distiller);
  float *gen = kd_gk_epoch(store);
  if (!listed || !gen) return 0;
  const int N = kd_dataset_num_images(p->r.train);
  const int epoch = N > 0 ? (int)((long long)step * kd_config_int(p->r.cfg, "train.batch") / N) : 0;
  if (lrintf(gen[0]) == epoch) return 0; /* rounded: ranks average buffers */
  if (!p->ctx) {
    if (!(p->ctx = kd_ctx_new(128u << 20))) return kd_error(err, "pgm: out of memory for the forward context");
    kd_ctx_set_grad(p->ctx, 0);
  }
  const double t0 = now_s();
  double tt = 0.0;
  if (!p->built || p->min_size != kd_config_num(p->r.cfg, "gk.min_size") ||
      p->max_images != (int)kd_config_num(p->r.cfg, "gk.max_images") || p->seed != kd_config_int(p->r.cfg, "train.seed")) {
    if (build_pool(p, err)) return -1;
  }
  if (!p->have_t) {
    const double t1 = now_s();
    if (features(p, p->r.teacher, 1, err)) return -1;
    p->have_t = 1, tt = now_s() - t1;
  }
  int nproto, distinct;
  if (features(p, p->r.student, 0, err) || select_all(p, store, step, &nproto, &distinct, err)) return -1;
  gen = kd_gk_epoch(store); /* the store may have moved */
  gen[0] = (float)epoch;
  int bad = 0;
  for (int j = 0; j < p->ninst; j++) bad += p->bad[j];
  p->cost = (KdPgmCost){.seconds = now_s() - t0, .teacher_seconds = tt, .images = p->nimg, .instances = p->ninst, .epoch = epoch};
  char extra[512];
  snprintf(extra, sizeof extra,
           "\"epoch\":%d,\"seconds\":%.3f,\"teacher_seconds\":%.3f,\"images\":%d,\"instances\":%d,\"unreadable\":%d,"
           "\"prototypes\":%d,\"distinct\":%d",
           epoch, p->cost.seconds, tt, p->nimg, p->ninst, bad, nproto, distinct);
  event(p, step, "pgm", extra);
  if (ran) *ran = 1;
  return 0;
}
