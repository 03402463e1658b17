/* The prober on a real (tiny) distillation session: every map present with
 * the right shape and finite; probe pixels equal the evaluation loader's;
 * the gradient split equals direct single-source backward passes on a
 * fresh ctx and the per-source vectors sum to the total's gradient; the
 * tape cut changes nothing; probing every step leaves training bitwise
 * unchanged; the budget schedule; snapshots written by the run hook read
 * back equal; publishing hands out the latest. Methods: every registered
 * one at once (more land as the method files do). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "data/loader.h"
#include "fixture.h"
#include "probe/prober.h"
#include "probe/snapfile.h"
#include "core/fileio.h"
#include "train/control.h"
#include "train/settings.h"

static FxModels M;

static const KdSnapField *need(const KdSnapshot *s, const char *name, int ndim, int d0, int d1) {
  const KdSnapField *f = kd_snapshot_find(s, name);
  CHECK_MSG(f != NULL, "no field %s", name);
  if (!f) return NULL;
  CHECK_MSG(f->ndim == ndim && f->shape[0] == d0 && (ndim < 2 || f->shape[1] == d1), "%s: %d dims %dx%d, want %d dims %dx%d",
            name, f->ndim, f->shape[0], f->ndim > 1 ? f->shape[1] : 0, ndim, d0, d1);
  int finite = 1;
  for (size_t k = 0; k < f->numel; k++) finite = finite && isfinite(f->data[k]);
  CHECK_MSG(finite, "%s has non-finite values", name);
  return f;
}

static double sum(const KdSnapField *f) {
  double a = 0;
  for (size_t k = 0; f && k < f->numel; k++) a += f->data[k];
  return a;
}

static KdProber *prober(KdSession *ss, KdConfig *c, int cut, int write, KdProbeBox *box) {
  KdProbeCfg pc;
  kd_probe_cfg_default(&pc);
  pc.settings = c, pc.cut_backward = cut, pc.write_files = write, pc.box = box, pc.min_interval = 1;
  KdError e;
  KdProber *p = kd_prober_new(ss, &pc, &e);
  CHECK_MSG(p != NULL, "%s", e.msg);
  return p;
}

/* The first 4 validation images through the evaluation loader. */
typedef struct {
  KdLoader *ld;
  const KdBatch *b;
  int crowd[512];
  KdGtImage gt[8];
  KdTrainBatch tb;
} EvalBatch;

static int eval_batch(KdSession *ss, KdConfig *c, EvalBatch *eb) {
  KdLoaderCfg lc;
  KdError e;
  kd_loader_cfg_eval(&lc);
  lc.batch_size = 4;
  if (kd_settings_image(c, &lc.image, &e)) return -1;
  eb->ld = kd_loader_new(kd_session_val(ss), &lc, &e);
  if (!eb->ld || kd_loader_next(eb->ld, &eb->b, &e) || !eb->b) return fprintf(stderr, "%s\n", e.msg), -1;
  const KdBatch *b = eb->b;
  for (int k = 0; k < b->box_off[b->n]; k++) eb->crowd[k] = b->crowd[k];
  for (int i = 0; i < b->n; i++) {
    int o = b->box_off[i];
    eb->gt[i] = (KdGtImage){.boxes = b->boxes + 4 * o, .labels = b->labels + o, .crowd = eb->crowd + o, .n = b->box_off[i + 1] - o};
  }
  eb->tb = (KdTrainBatch){.n = b->n, .h = b->h, .w = b->w, .images = b->images, .gt = eb->gt};
  return 0;
}

static int has_method(const KdSnapshot *s, const char *m) {
  char buf[260];
  snprintf(buf, sizeof buf, ",%s,", s->methods);
  char key[64];
  snprintf(key, sizeof key, ",%s,", m);
  return strstr(buf, key) != NULL;
}

static void check_maps(const KdSnapshot *s, const EvalBatch *eb, KdConfig *c) {
  CHECK(s->nimages == 4 && s->img_h == M.size && s->img_w == M.size && s->nlev == 3);
  CHECK(s->strides[0] == 8 && s->strides[1] == 16 && s->strides[2] == 32);
  CHECK(s->t_channels == M.fpn && s->s_channels == M.fpn);
  CHECK(s->nclasses == 10 && !strcmp(s->class_names[0], kd_fashion_class_names[0]));
  CHECK_MSG(!strcmp(s->methods, kd_config_str(c, "distill.methods")), "methods %s", s->methods);
  CHECK(s->nprobe_parts >= 3 && !strcmp(s->probe_parts[0].name, "det.cls") && isfinite(s->probe_parts[0].value));
  /* pixels: the evaluation loader's, denormalised */
  KdImageCfg ic;
  KdError e;
  kd_settings_image(c, &ic, &e);
  int S = M.size, bad = 0;
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < S * S; k++)
      for (int ch = 0; ch < 3; ch++) {
        float v = (eb->b->images[((size_t)i * 3 + ch) * S * S + k] * ic.std[ch] + ic.mean[ch]) * 255.0f;
        int want = (int)lrintf(v < 0 ? 0 : v > 255 ? 255 : v);
        bad += abs(want - s->rgb[((size_t)i * S * S + k) * 3 + ch]) > 0;
      }
  CHECK_MSG(bad == 0, "%d probe pixels differ from the evaluation loader's", bad);
  int M_inst = 0, nsrc = 2;
  char srcs[16][32] = {"det", "total"};
  for (int m = 0; m < kd_method_count(); m++)
    if (has_method(s, kd_method_at(m)->name)) snprintf(srcs[nsrc++], 32, "%s", kd_method_at(m)->name);
  for (int i = 0; i < 4; i++) {
    char n[640];
    snprintf(n, sizeof n, "img%d.gt", i);
    const KdSnapField *gt = need(s, n, 2, eb->gt[i].n, 6);
    CHECK(gt && eb->gt[i].n > 0 && gt->data[0] == eb->gt[i].boxes[0] && gt->data[4] == eb->gt[i].labels[0]);
    M_inst += eb->gt[i].n;
    for (int w = 0; w < 2; w++) {
      snprintf(n, sizeof n, "img%d.det.%s", i, w ? "t" : "s");
      const KdSnapField *d = kd_snapshot_find(s, n);
      CHECK_MSG(d && d->ndim == 2 && d->shape[1] == 6 && d->shape[0] <= 100, "%s", n);
      for (int k = 0; d && k < d->shape[0]; k++)
        CHECK(d->data[6 * k + 4] >= 0.05f && d->data[6 * k + 4] <= 1 && d->data[6 * k + 5] >= 0 && d->data[6 * k + 5] < 10);
    }
    for (int l = 0; l < 3; l++) {
      int H = S / s->strides[l], C = M.fpn;
      char L[8];
      kd_snapshot_level_name(s, l, L, sizeof L);
      const char *hw[] = {"s_energy", "t_energy", "gap", "s_sattn", "t_sattn", "fg"};
      for (int k = 0; k < 6; k++) {
        snprintf(n, sizeof n, "img%d.%s.%s", i, L, hw[k]);
        const KdSnapField *f = need(s, n, 2, H, H);
        if (k < 3)
          for (size_t q = 0; f && q < f->numel; q++) CHECK(f->data[q] >= 0);
        if (k == 3 || k == 4) CHECK_NEAR(sum(f), H * H, 1e-3 * H * H);
      }
      const KdSnapField *a = kd_snapshot_findf(s, "img%d.%s.s_cattn", i, L), *b = kd_snapshot_findf(s, "img%d.%s.t_cattn", i, L);
      CHECK(a && a->ndim == 1 && a->shape[0] == C && b && b->shape[0] == C);
      CHECK_NEAR(sum(a), C, 1e-3 * C);
      CHECK_NEAR(sum(b), C, 1e-3 * C);
      for (int m = 0; m < kd_method_count(); m++)
        if (kd_method_at(m)->gap_label && has_method(s, kd_method_at(m)->name))
          need(s, (snprintf(n, sizeof n, "img%d.%s.gap.%s", i, L, kd_method_at(m)->name), n), 2, H, H);
      const KdSnapField *fg = kd_snapshot_findf(s, "img%d.%s.fg", i, L), *cnt = kd_snapshot_find(s, "fgbg_count");
      for (int k = 0; k < nsrc; k++) {
        snprintf(n, sizeof n, "img%d.%s.grad.%s", i, L, srcs[k]);
        const KdSnapField *g = need(s, n, 2, H, H);
        snprintf(n, sizeof n, "grad_fgbg.%s", srcs[k]);
        const KdSnapField *fb = kd_snapshot_find(s, n);
        CHECK_MSG(fb && fb->ndim == 3 && fb->shape[0] == 4 && fb->shape[1] == 3 && fb->shape[2] == 2, "%s", n);
        if (!g || !fg || !fb || !cnt) continue;
        double a2[2] = {0, 0}, c2[2] = {0, 0};
        for (int q = 0; q < H * H; q++) a2[fg->data[q] > 0.5f ? 0 : 1] += g->data[q], c2[fg->data[q] > 0.5f ? 0 : 1]++;
        for (int z = 0; z < 2; z++) {
          CHECK(cnt->data[(i * 3 + l) * 2 + z] == c2[z]);
          CHECK_NEAR(fb->data[(i * 3 + l) * 2 + z], c2[z] ? a2[z] / c2[z] : 0, 1e-5 * (1 + fabs(a2[z])));
        }
      }
    }
  }
  CHECK(need(s, "inst.t_xy", 2, M_inst, 2) && need(s, "inst.s_xy", 2, M_inst, 2));
  need(s, "inst.label", 1, M_inst, 0);
  const KdSnapField *lv = need(s, "inst.level", 1, M_inst, 0), *var = need(s, "pca.var", 1, 3, 0);
  need(s, "pca.axes", 2, 2, M.fpn);
  for (int k = 0; lv && k < M_inst; k++) CHECK(lv->data[k] >= 0 && lv->data[k] <= 2);
  if (var) CHECK(var->data[0] >= var->data[1] && var->data[1] >= 0 && var->data[0] + var->data[1] <= var->data[2] * 1.0001f);
  int masks = 0;
  for (int k = 0; k < s->nfields; k++) masks += strstr(s->fields[k].name, ".mask.") != NULL;
  printf("snapshot: %d fields (%d mask fields), methods %s\n", s->nfields, masks, s->methods);
}

/* Each method's loss maps, over images, levels and cells, sum to the
 * parts it names (gap_parts) of the same forward (probe_parts). */
static void check_gap_sums(const KdSnapshot *s) {
  int checked = 0;
  for (int m = 0; m < kd_method_count(); m++) {
    const KdMethod *me = kd_method_at(m);
    if (!me->gap_label || !has_method(s, me->name)) continue;
    double maps = 0, parts = 0;
    for (int i = 0; i < s->nimages; i++)
      for (int l = 0; l < s->nlev; l++) {
        char L[8];
        kd_snapshot_level_name(s, l, L, sizeof L);
        maps += sum(kd_snapshot_findf(s, "img%d.%s.gap.%s", i, L, me->name));
      }
    size_t ml = strlen(me->name);
    int nparts = 0;
    for (int k = 0; k < s->nprobe_parts; k++) {
      const char *pn = s->probe_parts[k].name;
      if (strncmp(pn, me->name, ml) || pn[ml] != '.' || !kd_method_gap_part(me, pn + ml + 1)) continue;
      parts += s->probe_parts[k].value, nparts++;
    }
    CHECK_MSG(nparts > 0 && parts > 0, "%s: no parts for its map", me->name);
    CHECK_MSG(fabs(maps - parts) <= 1e-4 * fabs(parts), "%s: maps sum to %.9g, its parts to %.9g", me->name, maps, parts);
    printf("gap.%s: maps sum %.6g, parts %.6g\n", me->name, maps, parts);
    checked++;
  }
  int labelled = 0;
  for (int m = 0; m < kd_method_count(); m++) labelled += kd_method_at(m)->gap_label != NULL;
  CHECK_MSG(checked == labelled && checked >= 5, "%d methods with loss maps checked, %d have one", checked, labelled);
}

/* Direct backward passes on a fresh ctx (whole tape, no cut): each
 * source's gradient norm equals the prober's map; the sources' vectors
 * sum to the total loss's gradient. */
static void check_grad_split(KdSession *ss, const KdSnapshot *s, const EvalBatch *eb) {
  KdCtx *c = kd_ctx_new(16u << 20);
  KdForward f;
  KdError e;
  CHECK_MSG(kd_trainer_forward(kd_session_trainer(ss), c, &eb->tb, 0, &f, &e) == 0, "%s", e.msg);
  CHECK_NEAR(f.det.parts[0].value->data[0], s->probe_parts[0].value, 1e-6 * fabs(s->probe_parts[0].value));
  int nsrc = 1 + f.nmethods;
  float *sumv[3], *g0 = NULL;
  double worst_norm = 0, worst_sum = 0, scale = 0;
  for (int l = 0; l < 3; l++) sumv[l] = calloc(f.sout.feat[l]->numel, sizeof(float));
  for (int k = 0; k <= nsrc; k++) {
    KdTensor *loss = k == 0 ? f.det.total : k < nsrc ? f.outs[k - 1].loss : f.total;
    const char *name = k == 0 ? "det" : k < nsrc ? f.methods[k - 1]->name : "total";
    kd_ctx_clear_step_grads(c);
    CHECK(kd_backward(c, loss) == 0);
    for (int l = 0; l < 3; l++) {
      KdTensor *S = f.sout.feat[l];
      int C = S->shape[1], HW = S->shape[2] * S->shape[3];
      const float *g = S->grad;
      char L[8];
      kd_snapshot_level_name(s, l, L, sizeof L);
      for (int i = 0; i < 4; i++) {
        const KdSnapField *m = kd_snapshot_findf(s, "img%d.%s.grad.%s", i, L, name);
        if (!m) {
          CHECK_MSG(0, "no grad map %s", name);
          continue;
        }
        for (int q = 0; q < HW; q++) {
          double a = 0;
          for (int ch = 0; g && ch < C; ch++) a += (double)g[((size_t)i * C + ch) * HW + q] * g[((size_t)i * C + ch) * HW + q];
          a = sqrt(a);
          scale = fmax(scale, a);
          worst_norm = fmax(worst_norm, fabs(a - m->data[q]) / (1e-6 + a));
        }
      }
      for (size_t q = 0; g && q < S->numel; q++) {
        if (k < nsrc) sumv[l][q] += g[q];
        else worst_sum = fmax(worst_sum, fabs(sumv[l][q] - g[q]));
      }
      if (k == 0 && l == 0) g0 = (float *)g;
    }
  }
  CHECK_MSG(worst_norm < 1e-4, "prober grad maps differ from direct backward by %g (relative)", worst_norm);
  CHECK_MSG(worst_sum <= 1e-5 * scale + 1e-9, "sum of per-source gradients differs from the total's by %g (scale %g)", worst_sum, scale);
  CHECK(g0 != NULL && scale > 0);
  printf("grad split: worst relative norm diff %.2g, worst |sum - total| %.2g (max norm %.3g), %d sources\n", worst_norm,
         worst_sum, scale, nsrc);
  for (int l = 0; l < 3; l++) free(sumv[l]);
  kd_params_zero_grad(kd_model_params(kd_session_student(ss)));
  kd_params_zero_grad(kd_distiller_params(kd_session_distiller(ss)));
  kd_ctx_free(c);
}

/* Without the tape cut the maps are the same (and the cut saves time). */
static void check_cut(KdSession *ss, KdConfig *c, const KdSnapshot *cut) {
  KdProber *p = prober(ss, c, 0, 0, NULL);
  KdSnapshot *s;
  KdError e;
  if (!p) return;
  CHECK_MSG(kd_prober_capture(p, 2, &s, &e) == 0, "%s", e.msg);
  CHECK(s->nfields == cut->nfields);
  int diff = 0;
  for (int k = 0; k < cut->nfields; k++) {
    const KdSnapField *a = &cut->fields[k], *b = kd_snapshot_find(s, a->name);
    if (!b || b->numel != a->numel || memcmp(a->data, b->data, a->numel * sizeof(float))) diff++;
  }
  CHECK_MSG(diff == 0, "%d fields differ between cut and full backward", diff);
  kd_snapshot_free(s);
  kd_prober_free(p);
}

static void check_budget(KdSession *ss, KdConfig *c) {
  KdProber *p = prober(ss, c, 1, 0, NULL);
  if (!p) return;
  KdSnapshot *s;
  KdError e;
  CHECK(kd_prober_due(p, 0, 0.001) == 1); /* the first is always due */
  CHECK(kd_prober_capture(p, 0, &s, &e) == 0);
  kd_snapshot_free(s);
  KdProbeStats st = kd_prober_stats(p);
  int want = (int)ceil(st.last_cost_s / (0.10 * 0.001));
  CHECK_MSG(st.next_step == (want > 1 ? want : 1), "next %d, cost %g s, want %d", st.next_step, st.last_cost_s, want);
  CHECK(kd_prober_due(p, st.next_step - 1, 0) == 0 && kd_prober_due(p, st.next_step, 0) == 1);
  kd_prober_request(p);
  CHECK(kd_prober_due(p, 1, 0) == 1);
  kd_prober_free(p);
  /* Slow steps: the minimum interval rules; a cap bounds the gap. */
  KdProbeCfg pc;
  kd_probe_cfg_default(&pc);
  pc.settings = c, pc.write_files = 0;
  p = kd_prober_new(ss, &pc, &e);
  CHECK(p && kd_prober_due(p, 100, 1000.0) == 1 && kd_prober_capture(p, 100, &s, &e) == 0);
  kd_snapshot_free(s);
  CHECK(kd_prober_stats(p).next_step == 110 && kd_prober_due(p, 109, 0) == 0 && kd_prober_due(p, 110, 0) == 1);
  kd_prober_free(p);
  pc.max_interval = 3, pc.min_interval = 2;
  p = kd_prober_new(ss, &pc, &e);
  CHECK(p && kd_prober_due(p, 5, 1e-6) == 1 && kd_prober_capture(p, 5, &s, &e) == 0);
  kd_snapshot_free(s);
  CHECK(kd_prober_stats(p).next_step == 8);
  kd_prober_free(p);
  pc.budget = 0;
  CHECK(kd_prober_new(ss, &pc, &e) == NULL && strstr(e.msg, "budget"));
  kd_probe_cfg_default(&pc);
  pc.settings = c, pc.nindices = 1, pc.indices[0] = 999;
  CHECK(kd_prober_new(ss, &pc, &e) == NULL && strstr(e.msg, "999"));
  pc.indices[0] = 5;
  p = kd_prober_new(ss, &pc, &e);
  CHECK(p && kd_prober_capture(p, 0, &s, &e) == 0 && s->nimages == 1 && s->image_index[0] == 5);
  if (p) kd_snapshot_free(s);
  kd_prober_free(p);
}

/* probe.images: counts and lists parsed, bad text refused naming the key;
 * indices outside the validation split refused at bind; images changed
 * between captures (kd_prober_set_images) are those of the next capture,
 * which is requested, and the change is logged as an event. */
static void check_images(KdSession *ss, KdConfig *c) {
  KdProbeCfg pc;
  KdError e;
  kd_probe_cfg_default(&pc);
  CHECK(kd_probe_parse_images(&pc, "4", &e) == 0 && pc.nimages == 4 && pc.nindices == 0);
  CHECK(kd_probe_parse_images(&pc, " 3, 17 ,42", &e) == 0 && pc.nindices == 3 && pc.indices[1] == 17 && pc.indices[2] == 42);
  CHECK(kd_probe_parse_images(&pc, "17,", &e) == 0 && pc.nindices == 1 && pc.indices[0] == 17);
  static const char *const bad[][2] = {
      {"0", "a count must be 1-16, got 0"},      {"17", "a count must be 1-16, got 17 (a single index is written 17,)"},
      {"x", "'x' is not a count"},               {"3,x", "'x' is not a validation index"},
      {"3,-1", "'-1' is not a validation index"}, {"1,2,1", "index 1 is listed twice"},
      {"", "lists no image"},                    {"1.5,2", "'1.5' is not a validation index"},
      {"0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "more than 16 images"}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    int rc = kd_probe_parse_images(&pc, bad[k][0], &e);
    CHECK_MSG(rc == -1 && strstr(e.msg, "probe.images: ") == e.msg && strstr(e.msg, bad[k][1]), "'%s': %s", bad[k][0],
              rc ? e.msg : "accepted");
  }
  CHECK(kd_config_set(c, "probe.images", "6,1", &e) == 0 && kd_probe_cfg_from_settings(&pc, c, &e) == 0 && pc.nindices == 2);
  pc.min_interval = 1, pc.write_files = 0;
  pc.indices[0] = 8; /* the fixture's split has 8 images */
  CHECK(kd_prober_new(ss, &pc, &e) == NULL && !strcmp(e.msg, "probe.images: index 8 is outside the validation split (8 images: 0..7)"));
  pc.indices[0] = 6;
  KdProber *p = kd_prober_new(ss, &pc, &e);
  CHECK_MSG(p != NULL, "%s", e.msg);
  if (!p) return;
  int got[KD_PROBE_MAX_IMAGES];
  KdSnapshot *s = NULL;
  CHECK(kd_prober_images(p, got) == 2 && got[0] == 6 && got[1] == 1);
  CHECK(kd_prober_capture(p, 1, &s, &e) == 0 && s->nimages == 2 && s->image_index[0] == 6 && s->image_index[1] == 1);
  kd_snapshot_free(s);
  CHECK(kd_prober_set_images(p, (int[]){7, 8}, 2, &e) == -1 && strstr(e.msg, "index 8 is outside"));
  CHECK(kd_prober_set_images(p, (int[]){7, 7}, 2, &e) == -1 && strstr(e.msg, "listed twice"));
  CHECK(!kd_prober_due(p, 1, 0)); /* the capture at 1 was the last */
  CHECK(kd_prober_set_images(p, (int[]){7, 0, 3}, 3, &e) == 0);
  CHECK(kd_prober_due(p, 1, 0)); /* requested */
  CHECK(kd_prober_images(p, got) == 3 && got[0] == 7 && got[2] == 3);
  s = NULL;
  CHECK_MSG(kd_prober_capture(p, 2, &s, &e) == 0, "%s", e.msg);
  CHECK(s && s->nimages == 3 && s->image_index[0] == 7 && s->image_index[1] == 0 && s->image_index[2] == 3);
  CHECK(s && kd_snapshot_find(s, "img2.P3.gap.defeat") && !kd_snapshot_find(s, "img3.P3.gap.defeat"));
  kd_snapshot_free(s);
  kd_prober_free(p);
  char events[1100];
  snprintf(events, sizeof events, "%s/events.jsonl", kd_rundir_path(kd_session_rundir(ss)));
  size_t len;
  char *txt = kd_read_text(events, &len, 1 << 20, &e);
  CHECK_MSG(txt && strstr(txt, "\"probe_images\"") && strstr(txt, "\"images\":[7,0,3]"), "no probe_images event");
  free(txt);
  /* a resume (or a follower) reads the picked images back from the log */
  {
    KdConfig *rc = kd_config_new();
    long seq;
    int nsets;
    CHECK(rc && kd_settings_register_all(rc) == 0);
    CHECK(kd_control_replay_events(kd_rundir_path(kd_session_rundir(ss)), rc, &seq, &nsets, &e) == 0);
    CHECK_MSG(!strcmp(kd_config_str(rc, "probe.images"), "7,0,3"), "replayed probe.images '%s'", kd_config_str(rc, "probe.images"));
    kd_config_free(rc);
  }
  CHECK(kd_config_set(c, "probe.images", "4", &e) == 0);
}

/* The run hook: a snapshot directory that cannot be made is an error
 * logged once as an event, and kept; the hook returns normally. */
static void check_hook_error(KdSession *ss, KdConfig *c) {
  char blocker[1100], events[1100];
  snprintf(blocker, sizeof blocker, "%s/snapshots", kd_rundir_path(kd_session_rundir(ss)));
  snprintf(events, sizeof events, "%s/events.jsonl", kd_rundir_path(kd_session_rundir(ss)));
  FILE *f = fopen(blocker, "w"); /* a file where the directory should be */
  if (f) fclose(f);
  /* unbound: binds to the session of its first call, as a KdRun's hook */
  KdProbeCfg pc;
  kd_probe_cfg_default(&pc);
  pc.settings = c, pc.min_interval = 1;
  KdError e;
  KdProber *p = kd_prober_new(NULL, &pc, &e);
  CHECK_MSG(p != NULL, "%s", e.msg);
  if (!p) return;
  KdSnapshot *s;
  CHECK(kd_prober_capture(p, 0, &s, &e) == -1 && strstr(e.msg, "not bound"));
  KdStepStats st = {.step = 3, .seconds = 0.01};
  char msg[1024];
  CHECK(!strcmp(kd_prober_error(p, msg, sizeof msg), ""));
  for (int k = 0; k < 3; k++) {
    kd_prober_request(p);
    kd_prober_run_hook(p, ss, &st);
  }
  CHECK_MSG(strstr(kd_prober_error(p, msg, sizeof msg), "snapshots") != NULL, "error: %s", msg);
  CHECK(kd_prober_stats(p).captures == 3);
  size_t len;
  char *txt = kd_read_text(events, &len, 1 << 20, &e);
  int n = 0;
  for (char *q = txt; q && (q = strstr(q, "probe_error")); q++) n++;
  CHECK_MSG(n == 1, "%d probe_error events", n);
  free(txt);
  kd_prober_free(p);
  remove(blocker);
  /* a prober that cannot bind says so once and then stays quiet */
  pc.nindices = 1, pc.indices[0] = 500;
  p = kd_prober_new(NULL, &pc, &e);
  for (int k = 0; p && k < 3; k++) kd_prober_run_hook(p, ss, &st);
  CHECK(p && strstr(kd_prober_error(p, msg, sizeof msg), "500") && kd_prober_stats(p).captures == 0);
  txt = kd_read_text(events, &len, 1 << 20, &e);
  n = 0;
  for (char *q = txt; q && (q = strstr(q, "probe_error")); q++) n++;
  CHECK_MSG(n == 2, "%d probe_error events", n);
  free(txt);
  kd_prober_free(p);
}

/* A session without a teacher (plain training): student maps, detection
 * gradients, student-only instances; no teacher fields. */
/* No teacher maps without a teacher, nor with a loaded teacher that no
 * active method runs (a baseline through `distill`). */
static void check_no_teacher(int distill) {
  KdConfig *c = fx_config(&M, "");
  KdSessionOpts o = {.out_dir = fx_path(distill ? "run-baseline" : "run-alone"), .distill = distill};
  KdError e;
  KdSession *ss = c ? kd_session_open(c, &o, &e) : NULL;
  CHECK_MSG(ss != NULL, "%s", c ? e.msg : "config");
  KdProber *p = ss ? prober(ss, c, 1, 0, NULL) : NULL;
  KdSnapshot *s = NULL;
  if (p) CHECK_MSG(kd_prober_capture(p, 0, &s, &e) == 0, "%s", e.msg);
  if (s) {
    CHECK(s->t_channels == 0 && !strcmp(s->methods, ""));
    need(s, "img0.P3.s_energy", 2, M.size / 8, M.size / 8);
    need(s, "img3.P5.grad.det", 2, M.size / 32, M.size / 32);
    need(s, "img3.P5.grad.total", 2, M.size / 32, M.size / 32);
    CHECK(!kd_snapshot_find(s, "img0.P3.t_energy") && !kd_snapshot_find(s, "img0.P3.gap") && !kd_snapshot_find(s, "img0.det.t"));
    CHECK(kd_snapshot_find(s, "inst.s_xy") && !kd_snapshot_find(s, "inst.t_xy") && kd_snapshot_find(s, "img0.det.s"));
    const KdSnapField *a = kd_snapshot_find(s, "img1.P4.grad.det"), *b = kd_snapshot_find(s, "img1.P4.grad.total");
    CHECK(a && b && !memcmp(a->data, b->data, a->numel * sizeof(float))); /* one source: total = det */
  }
  kd_snapshot_free(s);
  kd_prober_free(p);
  kd_session_free(ss);
  kd_config_free(c);
}

static int same_store(KdParams *a, KdParams *b, const char *what) {
  size_t na, nb, ba, bb;
  float *va = kd_params_values(a, &na), *vb = kd_params_values(b, &nb);
  float *xa = kd_params_buffers(a, &ba), *xb = kd_params_buffers(b, &bb);
  int same = na == nb && ba == bb && !memcmp(va, vb, na * sizeof(float)) && (!ba || !memcmp(xa, xb, ba * sizeof(float)));
  CHECK_MSG(same, "%s differ", what);
  return same;
}

/* Two identical runs, one probed (and written, and published) after every
 * step: the weights, BN statistics and optimizer state stay bitwise equal. */
static void check_no_side_effects(void) {
  KdConfig *ca = fx_config(&M, fx_all_methods());
  KdConfig *cb = fx_config(&M, fx_all_methods());
  KdSession *a = fx_session(ca, "run-a"), *b = fx_session(cb, "run-b");
  KdProbeBox *box = kd_probe_box_new();
  KdProber *p = b ? prober(b, cb, 1, 1, box) : NULL;
  KdError e;
  int steps = 6, captured = 0;
  for (int k = 0; a && b && p && k < steps; k++) {
    KdStepStats sa, sb;
    CHECK(kd_session_step(a, &sa, &e) == 0 && kd_session_step(b, &sb, &e) == 0);
    CHECK_MSG(sa.loss == sb.loss, "step %d: loss %.9g vs %.9g", k + 1, sa.loss, sb.loss);
    kd_prober_request(p);
    int rc = kd_prober_after_step(p, b, &sb, &e);
    CHECK_MSG(rc == 1, "after_step: %s", e.msg);
    captured += rc == 1;
  }
  if (a && b && p) {
    same_store(kd_model_params(kd_session_student(a)), kd_model_params(kd_session_student(b)), "student weights");
    same_store(kd_distiller_params(kd_session_distiller(a)), kd_distiller_params(kd_session_distiller(b)), "distiller weights");
    same_store(kd_optim_state(kd_trainer_optim(kd_session_trainer(a))), kd_optim_state(kd_trainer_optim(kd_session_trainer(b))),
               "optimizer states");
    /* the run's snapshot files: one per capture, reading back what was published */
    KdSnapshots *r = kd_snapshots_open(kd_rundir_path(kd_session_rundir(b)), &e);
    CHECK_MSG(r && kd_snapshots_count(r) == captured, "%d snapshots indexed, %d captured", r ? kd_snapshots_count(r) : -1, captured);
    KdSnapshot *last = kd_probe_latest(box, NULL), *disk = NULL;
    CHECK(last && last->step == steps);
    CHECK(r && kd_snapshot_load(r, kd_snapshots_count(r) - 1, &disk, &e) == 0);
    if (last && disk) {
      CHECK(disk->step == steps && disk->nfields == last->nfields && disk->nparts == last->nparts && disk->nparts > 0);
      CHECK(!memcmp(disk->rgb, last->rgb, (size_t)4 * M.size * M.size * 3));
      int diff = 0;
      for (int k = 0; k < last->nfields; k++) {
        const KdSnapField *x = &last->fields[k], *y = kd_snapshot_find(disk, x->name);
        diff += !y || y->numel != x->numel || y->ndim != x->ndim || memcmp(y->data, x->data, x->numel * sizeof(float));
      }
      CHECK_MSG(diff == 0, "%d fields differ after the file round trip", diff);
      CHECK(!strcmp(disk->parts[0].name, last->parts[0].name) && disk->parts[0].value == last->parts[0].value);
      printf("snapshot file: %zu bytes (%d fields)\n", kd_snapshots_bytes(r, kd_snapshots_count(r) - 1), disk->nfields);
    }
    kd_snapshot_free(last);
    kd_snapshot_free(disk);
    kd_snapshots_close(r);
  }
  kd_prober_free(p);
  kd_probe_box_free(box);
  kd_session_free(a), kd_session_free(b);
  kd_config_free(ca), kd_config_free(cb);
}

int main(void) {
  M = fx_tiny;
  fx_tmpdir("probe");
  int rc = fx_build_data(32, 8, M.size);
  if (rc) return rc;
  if (fx_write_teacher(&M)) return 1;
  printf("methods: %s\n", fx_all_methods());
  KdConfig *c = fx_config(&M, fx_all_methods());
  KdSession *ss = c ? fx_session(c, "run") : NULL;
  if (!ss) return 1;
  /* a couple of steps so BN statistics and weights are not at init */
  KdStepStats st;
  KdError e;
  for (int k = 0; k < 2; k++) CHECK_MSG(kd_session_step(ss, &st, &e) == 0, "%s", e.msg);
  EvalBatch eb = {0};
  CHECK(eval_batch(ss, c, &eb) == 0);
  KdProber *p = prober(ss, c, 1, 0, NULL);
  KdSnapshot *s = NULL;
  if (p && eb.b) {
    CHECK_MSG(kd_prober_capture(p, 2, &s, &e) == 0, "%s", e.msg);
    if (s) {
      check_maps(s, &eb, c);
      check_gap_sums(s);
      check_grad_split(ss, s, &eb);
      check_cut(ss, c, s);
    }
  }
  kd_snapshot_free(s);
  kd_prober_free(p);
  kd_loader_free(eb.ld);
  check_budget(ss, c);
  check_images(ss, c);
  check_hook_error(ss, c);
  kd_session_free(ss);
  kd_config_free(c);
  check_no_teacher(0);
  check_no_teacher(1);
  check_no_side_effects();
  return check_status("test_probe_session");
}
