/* The prober's lifecycle: probe images, budget, capture + write + publish
 * (prober.h). The maps themselves are computed in capture.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/jpeg.h"
#include "data/loader.h"
#include "probe/prober_impl.h"
#include "probe/snapfile.h"
#include "core/fileio.h"
#include "train/settings.h"

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void kd_probe_cfg_default(KdProbeCfg *c) {
  memset(c, 0, sizeof *c);
  c->nimages = 4;
  c->budget = 0.10;
  c->min_interval = 10;
  c->write_files = 1;
  c->cut_backward = 1;
}

int kd_probe_parse_images(KdProbeCfg *c, const char *text, KdError *err) {
  const char *want = "expected a count 1-16 (the first N validation images) or a list of validation indices "
                     "such as 3,17,42 (one index as 17,)";
  int n = 0, list = strchr(text, ',') != NULL, idx[KD_PROBE_MAX_IMAGES];
  for (const char *p = text; *p;) {
    while (*p == ' ') p++;
    if (!*p) break;
    char *end;
    long v = strtol(p, &end, 10);
    while (*end == ' ') end++;
    if (end == p || (*end && *end != ',') || v < 0 || v > 2000000000L) {
      int len = (int)strcspn(p, ",");
      return kd_error(err, "probe.images: '%.*s' is not %s; %s", len, p, list ? "a validation index" : "a count", want);
    }
    if (n == KD_PROBE_MAX_IMAGES) return kd_error(err, "probe.images: more than %d images listed", KD_PROBE_MAX_IMAGES);
    for (int k = 0; k < n; k++)
      if (idx[k] == (int)v) return kd_error(err, "probe.images: index %ld is listed twice", v);
    idx[n++] = (int)v;
    p = *end ? end + 1 : end;
  }
  if (n == 0) return kd_error(err, "probe.images: '%s' lists no image; %s", text, want);
  if (!list) {
    if (idx[0] < 1 || idx[0] > KD_PROBE_MAX_IMAGES)
      return kd_error(err, "probe.images: a count must be 1-%d, got %d (a single index is written %d,)", KD_PROBE_MAX_IMAGES,
                      idx[0], idx[0]);
    c->nimages = idx[0], c->nindices = 0;
    return 0;
  }
  c->nindices = n;
  memcpy(c->indices, idx, sizeof(int) * (size_t)n);
  return 0;
}

int kd_probe_cfg_from_settings(KdProbeCfg *c, const KdConfig *cfg, KdError *err) {
  kd_probe_cfg_default(c);
  c->settings = cfg;
  if (kd_config_num(cfg, "probe.budget") > 0) c->budget = kd_config_num(cfg, "probe.budget");
  return kd_probe_parse_images(c, kd_config_str(cfg, "probe.images"), err);
}

/* Decodes and prepares the probe images as the evaluation loader does:
 * same decode hint, no augmentation, boxes moved to input pixels. */
static int load_images(KdProber *p, const KdImageCfg *ic, KdError *err) {
  free(p->images), free(p->rgb), free(p->box_off), free(p->boxes), free(p->labels), free(p->crowd);
  size_t S = (size_t)ic->size, npx = 3 * S * S;
  int nb = 0;
  for (int i = 0; i < p->n; i++) nb += kd_dataset_image(p->val, p->image_index[i]).n_boxes;
  p->images = malloc(sizeof(float) * npx * (size_t)p->n);
  p->rgb = malloc(npx * (size_t)p->n);
  p->box_off = calloc((size_t)p->n + 1, sizeof(int));
  p->boxes = malloc(sizeof(float) * 4 * (size_t)(nb + 1));
  p->labels = malloc(sizeof(int) * (size_t)(nb + 1));
  p->crowd = malloc(sizeof(int) * (size_t)(nb + 1));
  KdJpeg *jp = kd_jpeg_new();
  KdImage img = {0};
  KdPrepScratch scratch = {0};
  int rc = -1;
  if (!p->images || !p->rgb || !p->box_off || !p->boxes || !p->labels || !p->crowd || !jp) {
    kd_error(err, "out of memory for the probe images");
    goto out;
  }
  for (int i = 0; i < p->n; i++) {
    int idx = p->image_index[i];
    KdDatasetImage im = kd_dataset_image(p->val, idx);
    char path[4096];
    KdXform probe = kd_xform_make(ic, im.width, im.height, 0), xf;
    int cw = (int)(im.width * probe.sx + 0.5f), ch = (int)(im.height * probe.sy + 0.5f);
    if (kd_dataset_image_path(p->val, idx, path, sizeof path)) {
      kd_error(err, "probe image %d: no image folder or path too long", idx);
      goto out;
    }
    if (kd_jpeg_read_file(jp, path, cw, ch, &img, err)) {
      kd_error_prefix(err, "probe image %d: ", idx);
      goto out;
    }
    KdAugment none = kd_augment_none();
    float *dst = p->images + npx * (size_t)i;
    if (kd_image_prepare(ic, &img, im.width, im.height, &none, dst, &xf, &scratch, err)) goto out;
    uint8_t *rgb = p->rgb + npx * (size_t)i;
    for (size_t k = 0; k < S * S; k++)
      for (int c = 0; c < 3; c++) {
        float v = (dst[(size_t)c * S * S + k] * ic->std[c] + ic->mean[c]) * 255.0f;
        rgb[3 * k + (size_t)c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrintf(v));
      }
    int off = p->box_off[i];
    kd_xform_boxes_to_input(&xf, im.boxes, p->boxes + 4 * (size_t)off, im.n_boxes);
    for (int k = 0; k < im.n_boxes; k++) p->labels[off + k] = im.labels[k], p->crowd[off + k] = im.crowd[k];
    p->box_off[i + 1] = off + im.n_boxes;
    p->image_id[i] = im.id;
  }
  for (int i = 0; i < p->n; i++) {
    int o = p->box_off[i];
    p->gt[i] = (KdGtImage){.boxes = p->boxes + 4 * (size_t)o, .labels = p->labels + o, .crowd = p->crowd + o,
                           .n = p->box_off[i + 1] - o};
  }
  p->size = ic->size;
  rc = 0;
out:
  kd_jpeg_free(jp);
  kd_image_free(&img);
  kd_prep_scratch_free(&scratch);
  return rc;
}

KdProber *kd_prober_new(KdSession *s, const KdProbeCfg *cfg, KdError *err) {
  if (!cfg->settings) return kd_error(err, "probe: settings (the session's config) are required"), NULL;
  if (!(cfg->budget > 0 && cfg->budget <= 1)) return kd_error(err, "probe: budget must be in (0, 1], got %g", cfg->budget), NULL;
  if (cfg->min_interval < 1 || cfg->max_interval < 0)
    return kd_error(err, "probe: min_interval must be >= 1 and max_interval >= 0"), NULL;
  if (cfg->nindices > KD_PROBE_MAX_IMAGES || (cfg->nindices <= 0 && (cfg->nimages < 1 || cfg->nimages > KD_PROBE_MAX_IMAGES)))
    return kd_error(err, "probe: 1..%d images (nimages %d, nindices %d)", KD_PROBE_MAX_IMAGES, cfg->nimages, cfg->nindices), NULL;
  KdProber *p = calloc(1, sizeof *p);
  if (!p) return kd_error(err, "out of memory"), NULL;
  p->cfg = *cfg;
  atomic_init(&p->requested, 0);
  pthread_mutex_init(&p->mu, NULL);
  if (s && kd_prober_bind(p, s, err)) {
    kd_prober_free(p);
    return NULL;
  }
  return p;
}

/* Indices inside the validation split, or an error naming the first that is not. */
static int check_indices(const KdDataset *val, const int *idx, int n, KdError *err) {
  int nval = kd_dataset_num_images(val);
  for (int i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= nval)
      return kd_error(err, "probe.images: index %d is outside the validation split (%d images: 0..%d)", idx[i], nval,
                      nval - 1);
  return 0;
}

int kd_prober_bind(KdProber *p, KdSession *s, KdError *err) {
  if (p->session) return p->session == s ? 0 : kd_error(err, "probe: already bound to another session");
  const KdProbeCfg *cfg = &p->cfg;
  p->trainer = kd_session_trainer(s);
  p->student = kd_session_student(s);
  p->teacher = kd_session_teacher(s);
  p->distiller = kd_session_distiller(s);
  p->val = kd_session_val(s);
  int nval = kd_dataset_num_images(p->val);
  pthread_mutex_lock(&p->mu);
  int pn = p->pend_n, pend[KD_PROBE_MAX_IMAGES];
  memcpy(pend, p->pend, sizeof pend);
  p->pend_n = 0;
  pthread_mutex_unlock(&p->mu);
  if (pn > 0 || cfg->nindices > 0) {
    const int *idx = pn > 0 ? pend : cfg->indices, n = pn > 0 ? pn : cfg->nindices;
    if (check_indices(p->val, idx, n, err)) return -1;
    memcpy(p->image_index, idx, sizeof(int) * (size_t)n);
    p->n = n;
  } else {
    p->n = cfg->nimages < nval ? cfg->nimages : nval;
    if (p->n < 1) return kd_error(err, "probe: the validation set is empty");
    for (int i = 0; i < p->n; i++) p->image_index[i] = i;
  }
  if (kd_settings_image(cfg->settings, &p->ic, err) || load_images(p, &p->ic, err)) return -1;
  if (kd_settings_post(cfg->settings, &p->post, err)) return -1;
  if (p->post.max_det > 100) p->post.max_det = 100;
  if (!p->ctx && !(p->ctx = kd_ctx_new(16u << 20))) return kd_error(err, "out of memory");
  snprintf(p->run_dir, sizeof p->run_dir, "%s", kd_rundir_path(kd_session_rundir(s)));
  if (cfg->write_files && kd_snapshots_truncate(p->run_dir, kd_session_steps_done(s), err)) return -1;
  p->session = s;
  pthread_mutex_lock(&p->mu);
  p->bound = 1;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int kd_prober_set_images(KdProber *p, const int *indices, int n, KdError *err) {
  if (n < 1 || n > KD_PROBE_MAX_IMAGES) return kd_error(err, "probe.images: 1 to %d images, got %d", KD_PROBE_MAX_IMAGES, n);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < i; k++)
      if (indices[k] == indices[i]) return kd_error(err, "probe.images: index %d is listed twice", indices[i]);
  pthread_mutex_lock(&p->mu);
  int rc = p->bound ? check_indices(p->val, indices, n, err) : 0;
  if (!rc) {
    memcpy(p->pend, indices, sizeof(int) * (size_t)n);
    p->pend_n = n;
  }
  pthread_mutex_unlock(&p->mu);
  if (!rc) kd_prober_request(p);
  return rc;
}

int kd_prober_images(KdProber *p, int *out) {
  pthread_mutex_lock(&p->mu);
  int n = p->pend_n > 0 ? p->pend_n : p->bound ? p->n : 0;
  memcpy(out, p->pend_n > 0 ? p->pend : p->image_index, sizeof(int) * (size_t)n);
  pthread_mutex_unlock(&p->mu);
  return n;
}

const KdDataset *kd_prober_val(KdProber *p) {
  pthread_mutex_lock(&p->mu);
  const KdDataset *v = p->bound ? p->val : NULL;
  pthread_mutex_unlock(&p->mu);
  return v;
}

/* Takes the images kd_prober_set_images asked for (run thread), logging
 * them; on a failure to load them the old ones stay. */
static int take_images(KdProber *p, KdError *err) {
  pthread_mutex_lock(&p->mu);
  int n = p->pend_n, idx[KD_PROBE_MAX_IMAGES], old[KD_PROBE_MAX_IMAGES], nold = p->n;
  memcpy(idx, p->pend, sizeof idx);
  memcpy(old, p->image_index, sizeof old);
  if (n > 0) memcpy(p->image_index, idx, sizeof(int) * (size_t)n), p->n = n;
  p->pend_n = 0;
  pthread_mutex_unlock(&p->mu);
  if (n <= 0) return 0;
  if (load_images(p, &p->ic, err)) {
    KdError e2;
    pthread_mutex_lock(&p->mu);
    memcpy(p->image_index, old, sizeof old), p->n = nold;
    pthread_mutex_unlock(&p->mu);
    load_images(p, &p->ic, &e2);
    return -1;
  }
  char extra[256] = "\"images\":[";
  for (int i = 0; i < n; i++) {
    size_t o = strlen(extra);
    snprintf(extra + o, sizeof extra - o, "%s%d", i ? "," : "", idx[i]);
  }
  strcat(extra, "]");
  return kd_session_event(p->session, "probe_images", extra, err);
}

void kd_prober_free(KdProber *p) {
  if (!p) return;
  pthread_mutex_destroy(&p->mu);
  kd_ctx_free(p->ctx);
  free(p->images), free(p->rgb), free(p->box_off), free(p->boxes), free(p->labels), free(p->crowd);
  for (int l = 0; l < KD_MAX_LEVELS; l++) free(p->gsum[l]);
  free(p);
}

int kd_prober_due(KdProber *p, int step, double last_step_seconds) {
  if (last_step_seconds > 0) p->step_s = p->step_s > 0 ? 0.8 * p->step_s + 0.2 * last_step_seconds : last_step_seconds;
  if (atomic_load(&p->requested) || !p->started) return 1;
  return !p->cfg.inspect && step >= p->next_step;
}

void kd_prober_request(KdProber *p) { atomic_store(&p->requested, 1); }

void kd_prober_set_step_stats(KdProber *p, const KdStepStats *st) {
  if (!st) {
    p->have_stats = 0;
    return;
  }
  p->step_stats = *st;
  p->have_stats = 1;
}

/* Spends budget: the next capture comes when training has run long
 * enough for cost to be budget of it. */
static void schedule(KdProber *p, int step, double cost) {
  long gap = p->cfg.min_interval;
  if (p->step_s > 0) {
    double k = ceil(cost / (p->cfg.budget * p->step_s));
    if (k > gap) gap = k > 1e9 ? 1000000000L : (long)k;
  }
  if (p->cfg.max_interval > 0 && gap > p->cfg.max_interval) gap = p->cfg.max_interval;
  long next = (long)step + gap;
  p->next_step = next > 2000000000L ? 2000000000 : (int)next;
  p->stats.next_step = p->next_step;
  p->stats.step_s = p->step_s;
}

int kd_prober_capture(KdProber *p, int step, KdSnapshot **out, KdError *err) {
  double t0 = mono_now();
  *out = NULL;
  if (!p->session) return kd_error(err, "probe: not bound to a session yet");
  atomic_store(&p->requested, 0);
  KdSnapshot *s = kd_snapshot_new();
  if (!s) return kd_error(err, "out of memory");
  s->step = step;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->time = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  if (p->have_stats) {
    s->nparts = p->step_stats.nparts;
    memcpy(s->parts, p->step_stats.parts, sizeof s->parts);
  }
  kd_ctx_reset(p->ctx);
  kd_ctx_clear_error(p->ctx);
  int rc = take_images(p, err) ? -1 : kd_probe_fill(p, s, err);
  /* Whatever happened, leave no gradient behind for the optimizer. */
  kd_params_zero_grad(kd_model_params(p->student));
  if (p->distiller) kd_params_zero_grad(kd_distiller_params(p->distiller));
  kd_ctx_reset(p->ctx);
  kd_ctx_clear_error(p->ctx);
  p->started = 1;
  double cost = mono_now() - t0;
  s->capture_s = cost;
  pthread_mutex_lock(&p->mu);
  p->stats.captures++;
  p->stats.last_cost_s = cost;
  p->stats.total_cost_s += cost;
  schedule(p, step, cost);
  p->arena_peak = kd_arena_peak(kd_ctx_arena(p->ctx));
  pthread_mutex_unlock(&p->mu);
  if (rc) {
    kd_snapshot_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

int kd_prober_after_step(KdProber *p, KdSession *s, const KdStepStats *st, KdError *err) {
  if (s && kd_prober_bind(p, s, err)) return -1;
  if (!p->session) return kd_error(err, "probe: not bound to a session yet");
  /* An inspect session's snapshots are its captures, numbered. */
  int step = p->cfg.inspect ? p->stats.captures : st ? st->step : kd_session_steps_done(p->session);
  if (!kd_prober_due(p, step, st ? st->seconds : 0)) return 0;
  kd_prober_set_step_stats(p, st);
  KdSnapshot *snap;
  if (kd_prober_capture(p, step, &snap, err)) return -1;
  /* The reader in this process first (in memory, no wait for the disk),
   * then the file that follow and replay read. */
  if (p->cfg.box) kd_probe_publish(p->cfg.box, kd_snapshot_ref(snap));
  if (p->cfg.write_files) {
    double t0 = mono_now();
    size_t bytes = 0;
    int rc = kd_snapshots_append(p->run_dir, snap, p->cfg.f16_maps, &bytes, err);
    double w = mono_now() - t0;
    pthread_mutex_lock(&p->mu);
    p->stats.last_cost_s += w;
    p->stats.total_cost_s += w;
    p->stats.last_bytes = bytes;
    schedule(p, step, p->stats.last_cost_s);
    pthread_mutex_unlock(&p->mu);
    if (rc) {
      kd_snapshot_free(snap);
      return -1;
    }
  }
  kd_snapshot_free(snap);
  return 1;
}

void kd_prober_run_hook(void *prober, KdSession *s, const KdStepStats *st) {
  KdProber *p = prober;
  KdError e;
  if (p->dead) return;
  int unbound = !p->session;
  if (kd_prober_after_step(p, s, st, &e) >= 0) return;
  if (unbound && !p->session) p->dead = 1; /* cannot bind (bad indices...): stop trying */
  pthread_mutex_lock(&p->mu);
  int same = !strcmp(e.msg, p->error);
  snprintf(p->error, sizeof p->error, "%s", e.msg);
  pthread_mutex_unlock(&p->mu);
  if (same) return;
  char esc[1200], extra[1300];
  kd_json_escape(e.msg, esc, sizeof esc);
  snprintf(extra, sizeof extra, "\"message\":\"%s\"", esc);
  kd_session_event(s ? s : p->session, "probe_error", extra, NULL);
}

const char *kd_prober_error(KdProber *p, char *buf, size_t len) {
  pthread_mutex_lock(&p->mu);
  snprintf(buf, len, "%s", p->error);
  pthread_mutex_unlock(&p->mu);
  return buf;
}

KdProbeStats kd_prober_stats(KdProber *p) {
  pthread_mutex_lock(&p->mu);
  KdProbeStats st = p->stats;
  st.arena_peak = p->arena_peak;
  pthread_mutex_unlock(&p->mu);
  return st;
}
