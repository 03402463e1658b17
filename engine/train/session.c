#include "train/session.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/fashion.h"
#include "data/loader.h"
#include "distill/distiller.h"
#include "distill/side.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"
#include "core/fileio.h"
#include "train/dist.h"
#include "train/pgm_service.h"
#include "train/settings.h"

struct KdSession {
  KdConfig *cfg;
  KdDataset *train, *val;
  KdModel *student, *teacher;
  KdConfig *teacher_cfg;
  KdDistiller *distiller;
  KdDistillAvail avail; /* what the two models give the methods */
  KdTrainer *trainer;
  KdLoader *loader;
  KdRunDir *run;
  KdPgmService *pgm; /* global-knowledge prototypes (distilling only) */
  KdProgressFn progress;
  void *user;
  int *crowd;       /* int copy of a batch's crowd flags for KdGtImage */
  size_t crowd_cap;
  double data_wait;
  char *left_logged; /* the left-out val images the run log names last (JSON array), NULL: none */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kd_settings_register_all(KdConfig *c) { return kd_settings_register(c) || kd_distill_register(c) ? -1 : 0; }

KdModel *kd_model_from_files(const char *config_path, const char *checkpoint, KdConfig **cfg_out, KdError *err) {
  KdConfig *c = kd_config_new();
  KdModelCfg mc;
  if (!c || kd_settings_register_all(c) || kd_config_load_file(c, config_path, err) || kd_settings_model(c, &mc, err)) {
    kd_config_free(c);
    return NULL;
  }
  KdModel *m = kd_model_new(&mc, (uint64_t)kd_config_int(c, "train.seed"), err);
  if (!m || (checkpoint && kd_safetensors_load(checkpoint, kd_model_params(m), 1, err))) {
    kd_model_free(m);
    kd_config_free(c);
    return NULL;
  }
  if (cfg_out) *cfg_out = c;
  else kd_config_free(c);
  return m;
}

static int open_data(KdSession *s, KdError *err) {
  char dir[4096];
  const char *d = kd_config_str(s->cfg, "data.dir");
  if (!*d) {
    if (kd_ensure_default_dataset(dir, sizeof dir, s->progress, s->user, err)) return -1;
    d = dir;
  }
  int holdout = kd_config_int(s->cfg, "data.holdout");
  if (kd_dataset_open_dir(d, "train", &s->train, err)) return -1;
  if (holdout > 0) {
    /* Weights chosen on a part of the training set, never on val. */
    if (kd_dataset_open_eval(d, "train", &s->val, err) || kd_dataset_holdout(s->train, holdout, 0, err) ||
        kd_dataset_holdout(s->val, holdout, 1, err))
      return -1;
  } else if (kd_dataset_open_eval(d, "val", &s->val, err)) {
    return -1;
  }
  int k = kd_dataset_num_classes(s->train);
  if (k != kd_config_int(s->cfg, "model.num_classes"))
    return kd_error(err, "model.num_classes is %d but the data set %s has %d classes (set model.num_classes=%d)",
                    kd_config_int(s->cfg, "model.num_classes"), d, k, k);
  return 0;
}

static int open_teacher(KdSession *s, KdError *err) {
  const char *tc = kd_config_str(s->cfg, "teacher.config"), *ck = kd_config_str(s->cfg, "teacher.checkpoint");
  if (!*tc || !*ck) return kd_error(err, "distillation needs teacher.config and teacher.checkpoint");
  s->teacher = kd_model_from_files(tc, ck, &s->teacher_cfg, err);
  if (!s->teacher) return kd_error_prefix(err, "teacher: ");
  int kt = kd_model_cfg(s->teacher)->head.num_classes, ks = kd_model_cfg(s->student)->head.num_classes;
  if (kt != ks) return kd_error(err, "teacher has %d classes, student %d", kt, ks);
  kd_params_set_requires_grad(kd_model_params(s->teacher), 0);
  return 0;
}

/* Settings given on resume that are not live (--steps, --set of a fixed
 * key) change the run from here on: config.json records them, so a later
 * resume or a window following the run sees the same schedule. */
static int persist_resume_config(KdSession *s, const char *dir, int step, KdError *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  size_t n = 0;
  char *stored = kd_read_text(path, &n, 1 << 20, err);
  char *now = kd_config_to_json(s->cfg);
  int rc = 0;
  if (!stored || !now) {
    rc = stored ? kd_error(err, "out of memory") : -1;
  } else {
    while (n > 0 && stored[n - 1] == '\n') stored[--n] = 0;
    if (strcmp(stored, now)) {
      char extra[96];
      snprintf(extra, sizeof extra, "\"steps\":%d", kd_config_int(s->cfg, "train.steps"));
      rc = kd_config_save(s->cfg, path, err) || kd_rundir_event(s->run, step, "config", extra, err) ? -1 : 0;
    }
  }
  free(stored);
  free(now);
  return rc;
}

/* The methods whose learnable parts the checkpoint holds get them before
 * it loads, in the checkpoint's order (the order they were made in): the
 * store, the optimizer's slots and later checkpoints are laid out as they
 * were before the cut. */
static int ensure_checkpoint_methods(KdSession *s, const char *path, KdError *err) {
  if (!s->distiller) return 0;
  KdSafetensors *st = kd_safetensors_open(path, err);
  if (!st) return -1;
  int rc = 0;
  for (int i = 0; !rc && i < kd_safetensors_count(st); i++) {
    const char *name = kd_safetensors_name(st, i), *dot;
    if (strncmp(name, "distill.", 8) || !(dot = strchr(name + 8, '.'))) continue;
    char method[64];
    size_t len = (size_t)(dot - name - 8);
    if (!len || len >= sizeof method) continue;
    memcpy(method, name + 8, len);
    method[len] = 0;
    if (kd_method_find(method)) rc = kd_distiller_ensure(s->distiller, method, err);
  }
  kd_safetensors_close(st);
  return rc || kd_trainer_sync(s->trainer, err) ? -1 : 0;
}

static int resume_state(KdSession *s, int step, KdError *err) {
  if (step == 0) return 0;
  char w[3400], o[3400];
  kd_rundir_checkpoint_paths(s->run, step, w, o, sizeof w);
  if (ensure_checkpoint_methods(s, w, err)) return -1;
  KdParams *stores[2] = {kd_model_params(s->student), s->distiller ? kd_distiller_params(s->distiller) : NULL};
  if (kd_checkpoint_load(w, stores, s->distiller ? 2 : 1, 1, err) ||
      kd_safetensors_load(o, kd_optim_state(kd_trainer_optim(s->trainer)), 1, err))
    return -1;
  kd_optim_set_steps_done(kd_trainer_optim(s->trainer), step);
  return 0;
}

/* The "images" list of the last images_left_out event in RUN/events.jsonl
 * (a resumed run does not name the same images twice); NULL if none. */
static char *logged_left_out(const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  size_t n;
  char *text = kd_read_text(path, &n, (size_t)1 << 30, NULL), *found = NULL;
  for (char *p = text ? strstr(text, "\"event\":\"images_left_out\"") : NULL; p; p = strstr(p + 1, "\"event\":\"images_left_out\"")) {
    char *start = p, *end = strchr(p, '\n');
    while (start > text && start[-1] != '\n') start--;
    cJSON *j = cJSON_ParseWithLength(start, end ? (size_t)(end - start) : strlen(start));
    const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(j, "images");
    if (cJSON_IsArray(imgs)) {
      free(found);
      found = cJSON_PrintUnformatted(imgs);
    }
    cJSON_Delete(j);
  }
  free(text);
  return found;
}

/* Everything a session holds that does not need the data: the config is
 * checked in full here, before a first use spends minutes building the
 * default data set. */
static int open_models(KdSession *s, KdConfig *cfg, const KdSessionOpts *o, KdError *err) {
  KdModelCfg mc;
  if (kd_settings_model(cfg, &mc, err)) return -1;
  s->student = kd_model_new(&mc, (uint64_t)kd_config_int(cfg, "train.seed"), err);
  if (!s->student || kd_evaluate_check(cfg, err)) return -1; /* image size, post-processing */
  const char *init = kd_config_str(cfg, "train.init_checkpoint");
  if (*init && !o->resume_dir) {
    KdParams *st = kd_model_params(s->student);
    if (kd_checkpoint_load(init, &st, 1, 0, err)) return -1;
  }
  if (o->distill && open_teacher(s, err)) return -1;
  if (s->teacher && kd_config_int(cfg, "student.init_from_teacher")) kd_model_inherit(s->student, s->teacher);
  if (s->teacher) {
    KdDistillShapes sh;
    kd_distill_shapes(&sh, s->student, s->teacher);
    kd_distill_avail_models(&s->avail, s->student, s->teacher);
    /* A method this pair of models cannot feed is refused here, not mid-run. */
    if (kd_distill_check(cfg, kd_config_str(cfg, "distill.methods"), &s->avail, err)) return -1;
    s->distiller = kd_distiller_new(&sh, (uint64_t)kd_config_int(cfg, "train.seed"), err);
    if (!s->distiller) return -1;
  }
  s->trainer = kd_trainer_new(cfg, s->student, s->teacher, s->distiller, err);
  return s->trainer ? 0 : -1;
}

int kd_session_check(KdConfig *cfg, const KdSessionOpts *o, KdError *err) {
  KdSession *s = calloc(1, sizeof *s);
  if (!s) return kd_error(err, "out of memory");
  s->cfg = cfg;
  int rc = open_models(s, cfg, o, err);
  kd_session_free(s);
  return rc;
}

/* Data-parallel runs: rank 0's learnable distillation parts (those its
 * checkpoint held, in their order) are made on every rank, so the stores
 * and the optimizer's slots have the same layout everywhere. */
static int share_methods(KdSession *s, KdError *err) {
  char list[2048] = "";
  KdParams *p = s->distiller ? kd_distiller_params(s->distiller) : NULL;
  size_t len = 0;
  for (int i = 0; kd_dist_rank() == 0 && p && i < kd_params_count(p); i++) {
    const char *name = kd_params_at(p, i)->name, *dot;
    if (!name || strncmp(name, "distill.", 8) || !(dot = strchr(name + 8, '.'))) continue;
    size_t n = (size_t)(dot - name - 8);
    char m[64];
    if (!n || n >= sizeof m) continue;
    memcpy(m, name + 8, n);
    m[n] = 0;
    char token[80];
    snprintf(token, sizeof token, ",%s,", m);
    if (strstr(list, token) || len + n + 2 >= sizeof list) continue;
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s,", len ? "" : ",", m);
  }
  kd_dist_bcast(list, sizeof list);
  int rc = 0;
  for (char *m = list + (*list == ','), *end; !rc && *m && (end = strchr(m, ',')); m = end + 1) {
    *end = 0;
    if (s->distiller && kd_method_find(m)) rc = kd_distiller_ensure(s->distiller, m, err);
  }
  if (!rc && s->distiller) rc = kd_trainer_sync(s->trainer, err);
  return kd_dist_agree(rc, err);
}

/* Rank 0's values of one store to every rank (its size checked first). */
static int share_store(KdParams *p, KdError *err) {
  size_t nv = 0, nb = 0, sizes[2];
  float *v = p ? kd_params_values(p, &nv) : NULL, *b = p ? kd_params_buffers(p, &nb) : NULL;
  sizes[0] = nv, sizes[1] = nb;
  kd_dist_bcast(sizes, sizeof sizes);
  int rc = sizes[0] != nv || sizes[1] != nb
               ? kd_error(err, "rank %d has %zu+%zu values where rank 0 has %zu+%zu", kd_dist_rank(), nv, nb, sizes[0], sizes[1])
               : 0;
  if (kd_dist_agree(rc, err)) return -1;
  if (nv) kd_dist_bcast(v, nv * sizeof *v);
  if (nb) kd_dist_bcast(b, nb * sizeof *b);
  return 0;
}

/* Every rank starts from rank 0's state: the step, the learnable parts,
 * weights, buffers and optimizer state (fresh or resumed: only rank 0
 * reads the run directory). */
static int share_state(KdSession *s, int *start, KdError *err) {
  kd_dist_bcast(start, sizeof *start);
  if (share_methods(s, err)) return -1;
  KdOptim *o = kd_trainer_optim(s->trainer);
  if (share_store(kd_model_params(s->student), err) ||
      share_store(s->distiller ? kd_distiller_params(s->distiller) : NULL, err) || share_store(kd_optim_state(o), err))
    return -1;
  kd_optim_set_steps_done(o, *start);
  return 0;
}

/* This rank's own part of opening: models, data and (rank 0 only) the
 * run directory with the resumed state. */
static int open_own(KdSession *s, KdConfig *cfg, const KdSessionOpts *o, int *start, KdError *err) {
  if (open_models(s, cfg, o, err) || open_data(s, err)) return -1;
  kd_trainer_set_epoch_images(s->trainer, kd_dataset_num_images(s->train));
  if (s->distiller) {
    KdPgmRun pr = {.cfg = cfg, .train = s->train, .student = s->student, .teacher = s->teacher, .distiller = s->distiller};
    if (!(s->pgm = kd_pgm_service_new(&pr, err))) return -1;
  }
  int B = kd_config_int(cfg, "train.batch"), ranks = kd_dist_size();
  if (B % ranks)
    return kd_error(err, "train.batch %d does not split over %d ranks: the global batch must be a multiple of the ranks", B, ranks);
  if (kd_dist_rank() != 0) return 0; /* rank 0 alone owns the run directory */
  if (o->resume_dir) {
    s->run = kd_rundir_resume(o->resume_dir, start, err);
    if (s->pgm) kd_pgm_service_set_rundir(s->pgm, s->run);
    if (!s->run || resume_state(s, *start, err) || persist_resume_config(s, o->resume_dir, *start, err)) return -1;
    s->left_logged = logged_left_out(o->resume_dir);
    return 0;
  }
  s->run = kd_rundir_create(o->out_dir, cfg, err);
  if (!s->run) return -1;
  if (s->pgm) kd_pgm_service_set_rundir(s->pgm, s->run);
  char extra[512];
  snprintf(extra, sizeof extra, "\"mode\":\"%s\",\"params\":%zu", o->distill ? "distill" : "train",
           kd_params_numel(kd_model_params(s->student)));
  if (ranks > 1) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"ranks\":%d", ranks);
  return kd_rundir_event(s->run, 0, "start", extra, err);
}

KdSession *kd_session_open(KdConfig *cfg, const KdSessionOpts *o, KdError *err) {
  KdSession *s = calloc(1, sizeof *s);
  if (!s) {
    kd_dist_abort(1); /* the other ranks would wait for this one */
    return kd_error(err, "out of memory"), NULL;
  }
  int rank = kd_dist_rank(), ranks = kd_dist_size();
  /* Every rank reaches every kd_dist_agree below, failed or not. */
  s->cfg = cfg;
  s->progress = o->progress;
  s->user = o->user;
  int start = 0;
  /* Rank 0 first (it may build the default data set that the others on
   * its machine then find), then the others. */
  int rc = rank == 0 ? open_own(s, cfg, o, &start, err) : 0;
  if (kd_dist_agree(rc, err)) goto fail;
  rc = rank != 0 ? open_own(s, cfg, o, &start, err) : 0;
  if (kd_dist_agree(rc, err) || (ranks > 1 && share_state(s, &start, err))) goto fail;
  KdLoaderCfg lc;
  kd_loader_cfg_default(&lc);
  lc.batch_size = kd_config_int(cfg, "train.batch");
  lc.seed = (uint64_t)kd_config_int(cfg, "train.seed");
  lc.start_step = start;
  lc.shards = ranks, lc.shard = rank;
  rc = kd_settings_image(cfg, &lc.image, err) || !(s->loader = kd_loader_new(s->train, &lc, err)) ? -1 : 0;
  if (kd_dist_agree(rc, err)) goto fail;
  return s;
fail:
  kd_session_free(s);
  return NULL;
}

void kd_session_free(KdSession *s) {
  if (!s) return;
  kd_loader_free(s->loader);
  kd_pgm_service_free(s->pgm);
  kd_trainer_free(s->trainer);
  kd_distiller_free(s->distiller);
  kd_rundir_free(s->run);
  kd_model_free(s->student);
  kd_model_free(s->teacher);
  kd_config_free(s->teacher_cfg);
  kd_dataset_free(s->train);
  kd_dataset_free(s->val);
  free(s->crowd);
  free(s->left_logged);
  free(s);
}

int kd_session_step(KdSession *s, KdStepStats *st, KdError *err) {
  const KdBatch *b;
  /* Between steps, on this (the run's) thread: prototypes of a new epoch. */
  if (s->pgm && (kd_trainer_sync(s->trainer, err) || kd_pgm_service_before_step(s->pgm, kd_session_steps_done(s), NULL, err)))
    return -1;
  double t0 = now_s();
  if (kd_loader_next(s->loader, &b, err)) return -1;
  s->data_wait = now_s() - t0;
  if (!b) return kd_error(err, "the training loader ended");
  if (b->warnings) {
    char esc[1800], extra[2048];
    kd_json_escape(b->warnings, esc, sizeof esc);
    snprintf(extra, sizeof extra, "\"message\":\"%s\"", esc);
    kd_rundir_event(s->run, kd_session_steps_done(s), "data_warning", extra, NULL);
  }
  size_t nb = (size_t)b->box_off[b->n];
  if (nb > s->crowd_cap) {
    int *c = realloc(s->crowd, nb * sizeof *c);
    if (!c) return kd_error(err, "out of memory");
    s->crowd = c;
    s->crowd_cap = nb;
  }
  for (size_t i = 0; i < nb; i++) s->crowd[i] = b->crowd[i];
  KdGtImage gt[256];
  if (b->n > 256) return kd_error(err, "train.batch above 256 is not supported");
  for (int i = 0; i < b->n; i++) {
    int o = b->box_off[i];
    gt[i] = (KdGtImage){.boxes = b->boxes + 4 * o, .labels = b->labels + o, .crowd = s->crowd + o, .n = b->box_off[i + 1] - o};
  }
  KdTrainBatch tb = {.n = b->n, .h = b->h, .w = b->w, .images = b->images, .gt = gt};
  if (kd_trainer_step(s->trainer, &tb, st, err)) return -1;
  if (st->skipped) {
    char extra[256];
    snprintf(extra, sizeof extra, "\"reason\":\"non-finite %s\",\"part\":\"%s\"", st->bad_part, st->bad_part);
    kd_rundir_event(s->run, st->step, "nonfinite", extra, NULL);
    return 0;
  }
  int every = kd_config_int(s->cfg, "train.log_every");
  if (st->step % (every > 0 ? every : 1) == 0 && kd_rundir_log_step(s->run, st, s->data_wait, err)) return -1;
  return 0;
}

/* Names the left-out val images in the run log once, and again only when
 * the list changes; every evaluation counts them in metrics.jsonl. */
static int log_left_out(KdSession *s, const KdEvalResult *res, KdError *err) {
  if (!res->left_out) return 0;
  int listed = 0;
  char *list = kd_eval_left_out_json(s->val, res, 3000, &listed);
  if (!list) return kd_error(err, "out of memory");
  if (s->left_logged && !strcmp(s->left_logged, list)) {
    free(list);
    return 0;
  }
  char extra[3600];
  snprintf(extra, sizeof extra, "\"split\":\"val\",\"count\":%d,\"listed\":%d,\"images\":%s", res->left_out, listed, list);
  free(s->left_logged);
  s->left_logged = list;
  return kd_rundir_event(s->run, kd_session_steps_done(s), "images_left_out", extra, err);
}

int kd_session_evaluate(KdSession *s, KdEvalResult *res, KdError *err) {
  if (kd_evaluate(s->student, s->cfg, s->val, kd_config_int(s->cfg, "train.eval_images"), 0, s->progress, s->user, res, err)) return -1;
  if (!s->run) return 0; /* a data-parallel rank other than 0: its share is in rank 0's numbers */
  if (log_left_out(s, res, err)) return -1;
  const char *split = kd_config_int(s->cfg, "data.holdout") > 0 ? "holdout" : "val";
  return kd_rundir_log_eval(s->run, kd_session_steps_done(s), split, res, err);
}

int kd_session_checkpoint(KdSession *s, KdError *err) {
  char step[32], seed[32];
  snprintf(step, sizeof step, "%d", kd_session_steps_done(s));
  snprintf(seed, sizeof seed, "%d", kd_config_int(s->cfg, "train.seed"));
  const char *meta[] = {"step", step, "seed", seed, "format", "kdscope-1", NULL};
  KdParams *stores[2] = {kd_model_params(s->student), s->distiller ? kd_distiller_params(s->distiller) : NULL};
  return kd_rundir_save_checkpoint(s->run, kd_session_steps_done(s), stores, s->distiller ? 2 : 1,
                                   kd_optim_state(kd_trainer_optim(s->trainer)), meta, err);
}

int kd_session_event(KdSession *s, const char *type, const char *extra_json, KdError *err) {
  return kd_rundir_event(s->run, kd_session_steps_done(s), type, extra_json, err);
}

int kd_session_steps_done(const KdSession *s) { return kd_trainer_steps_done(s->trainer); }
int kd_session_total_steps(const KdSession *s) { return kd_config_int(s->cfg, "train.steps"); }
KdRunDir *kd_session_rundir(KdSession *s) { return s->run; }
KdModel *kd_session_student(KdSession *s) { return s->student; }
KdModel *kd_session_teacher(KdSession *s) { return s->teacher; }
const KdDataset *kd_session_val(const KdSession *s) { return s->val; }
KdTrainer *kd_session_trainer(KdSession *s) { return s->trainer; }
KdDistiller *kd_session_distiller(KdSession *s) { return s->distiller; }
const KdDistillAvail *kd_session_distill_avail(const KdSession *s) { return s->distiller ? &s->avail : NULL; }
double kd_session_data_wait(const KdSession *s) { return s->data_wait; }
