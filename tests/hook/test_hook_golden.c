/* The golden files python/kdscope_hook.py and the C side share, so neither
 * format can drift (docs/HOOK.md):
 *  - tests/hook/golden/hook_run, written by the hook (make_golden.py; its
 *    own test hook_golden.py checks the hook still writes exactly it), read
 *    here with kdscope's readers: the config over every descriptor, the
 *    set events replayed (each logged value is the config's canonical text
 *    and each "old" the value before), the run log's series and events, the
 *    control file through the run's reader (and the same commands written
 *    by kd_control_append are the golden lines but for time and pid), the
 *    snapshot index and file, whose maps are recomputed here from the
 *    closed-form features with the probe's own formulas (probe/maps.h);
 *  - tests/hook/golden/c_snapshot.safetensors, a snapshot kdscope writes
 *    (F16 maps), compared byte for byte with what this build writes; the
 *    hook's reader reads it in hook_golden.py.
 * usage: test_hook_golden [--write-c-snapshot PATH] */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fx_tmpdir.h"
#include "core/fileio.h"
#include "core/numfmt.h"
#include "probe/maps.h"
#include "probe/snapfile.h"
#include "train/control.h"
#include "train/runlog.h"
#include "train/session.h"

enum { N = 2, C = 4, SIZE = 32 };

static char golden[2048];

/* make_golden.py's closed forms, in double then float as numpy does. */
static void features(int side_t, int H, float *out) {
  for (int k = 0; k < N * C * H * H; k++)
    out[k] = side_t ? (float)sin(0.3 * k + 0.1) : (float)(0.5 * cos(0.17 * k) + 0.25);
}

static const KdSnapField *field(const KdSnapshot *s, const char *fmt, int i, const char *lv) {
  const KdSnapField *f = kd_snapshot_findf(s, fmt, i, lv);
  CHECK_MSG(f != NULL, fmt, i, lv);
  return f;
}

static void check_close(const float *a, const float *b, size_t n, double rel, const char *what) {
  double worst = 0;
  for (size_t k = 0; k < n; k++) {
    double d = fabs((double)a[k] - b[k]) / (fabs((double)b[k]) + 1e-6);
    if (d > worst) worst = d;
  }
  CHECK_MSG(worst <= rel, "%s: worst relative difference %g", what, worst);
}

static void config_and_events(const char *dir) {
  char path[2600];
  snprintf(path, sizeof path, "%s/config.json", dir);
  KdConfig *c = kd_config_new();
  KdError e;
  CHECK(c && !kd_settings_register_all(c));
  CHECK_MSG(!kd_config_load_file(c, path, &e), "%s", e.msg);
  CHECK(kd_config_num(c, "fitnet.weight") == 1 && kd_config_num(c, "train.lr") == 0.01);
  CHECK(!strcmp(kd_config_str(c, "distill.methods"), "fitnet") && kd_config_int(c, "train.steps") == 4);
  CHECK(kd_config_int(c, "data.size") == SIZE && kd_config_int(c, "train.batch") == N);
  /* Each set event: value canonical, old = the value before. */
  KdRunLog *l = kd_runlog_open(dir, &e);
  CHECK(l && kd_runlog_refresh(l, &e) == 1);
  static const char *types[] = {"start", "set", "set_refused", "pause", "resume", "control_ignored", "control_error", "set", "finish"};
  CHECK(kd_runlog_nevents(l) == 9);
  int sets = 0;
  for (int i = 0; i < kd_runlog_nevents(l) && i < 9; i++) {
    KdRunEvent ev = kd_runlog_event(l, i);
    CHECK_MSG(!strcmp(ev.type, types[i]), "event %d is %s", i, ev.type);
    if (strcmp(ev.type, "set")) continue;
    char old[256], canon[256];
    kd_config_format(c, ev.key, old, sizeof old);
    CHECK_MSG(!strcmp(old, ev.old), "%s: old %s, config had %s", ev.key, ev.old, old);
    CHECK_MSG(!kd_control_check_set(c, ev.key, ev.value, canon, sizeof canon, &e), "%s", e.msg);
    CHECK_MSG(!strcmp(canon, ev.value), "%s: logged %s, canonical %s", ev.key, ev.value, canon);
    CHECK(!strcmp(ev.source, "cli"));
    sets++;
  }
  CHECK(sets == 2 && kd_runlog_event(l, 1).step == 1 && kd_runlog_event(l, 7).step == 3 && kd_runlog_event(l, 7).undo);
  CHECK(kd_config_num(c, "train.lr") == 5e-6);
  /* The replay a resumed run and the window do. */
  KdConfig *r = kd_config_new();
  long seq;
  int nsets;
  CHECK(r && !kd_settings_register_all(r) && !kd_config_load_file(r, path, &e));
  CHECK(!kd_control_replay_events(dir, r, &seq, &nsets, &e) && seq == 6 && nsets == 2);
  CHECK(kd_config_num(r, "fitnet.weight") == 0.5 && kd_config_num(r, "train.lr") == 5e-6);
  /* Series, as the window's curves and kdscope export read them. */
  KdRunSeries loss = kd_runlog_find(l, "loss"), feat = kd_runlog_find(l, "fitnet.feat"), ap = kd_runlog_find(l, "eval.AP");
  CHECK(loss.n == 4 && loss.x[0] == 1 && loss.x[3] == 4 && loss.y[0] == 1.125 && loss.y[1] == 0.5625);
  CHECK(feat.n == 4 && feat.y[0] == 0.125 && feat.y[1] == 0.0625);
  CHECK(ap.n == 1 && ap.x[0] == 3 && ap.y[0] == 0.125);
  CHECK(kd_runlog_find(l, "step_s").n == 4 && kd_runlog_last_step(l) == 4);
  kd_runlog_free(l);
  kd_config_free(r);
  kd_config_free(c);
}

/* A control line without its time and pid. */
static void strip(char *s) {
  char *t = strstr(s, "\"time\":\"");
  if (t) {
    char *end = strchr(t + 8, '"');
    if (end) memmove(t, end + 2, strlen(end + 2) + 1);
  }
  char *p = strstr(s, ",\"pid\":");
  if (p) snprintf(p, 2, "}");
}

static void control_file(const char *dir, const char *tmp) {
  KdError e;
  KdControlReader *rd = kd_control_reader_new(dir, 0, &e);
  KdControlCmd cmd;
  int before, rc;
  long seqs[8];
  int n = 0, bad = 0;
  KdControlCmd got[8];
  while ((rc = kd_control_next(rd, &cmd, &before, &e)) != 0 && n < 8) {
    if (rc < 0) {
      bad++;
      CHECK_MSG(strstr(e.msg, "at byte 412") != NULL, "%s", e.msg); /* the byte the hook's control_error names */
      continue;
    }
    got[n] = cmd;
    seqs[n++] = cmd.seq;
  }
  kd_control_reader_free(rd);
  CHECK(n == 6 && bad == 1);
  for (int i = 0; i < n && i < 6; i++) CHECK(seqs[i] == (i < 5 ? i + 1 : 6));
  CHECK(got[0].kind == KD_CTL_SET && !strcmp(got[0].key, "fitnet.weight") && !strcmp(got[0].value, "0.5"));
  CHECK(got[2].kind == KD_CTL_PAUSE && got[3].kind == KD_CTL_RESUME && got[5].undo && !strcmp(got[5].value, "5e-6"));
  /* kd_control_append writes the lines the hook was given. */
  KdControlCmd out[5] = {{.kind = KD_CTL_SET, .key = "fitnet.weight", .value = "0.5"},
                         {.kind = KD_CTL_SET, .key = "fitnet.mask", .value = "gt"},
                         {.kind = KD_CTL_PAUSE},
                         {.kind = KD_CTL_RESUME},
                         {.kind = KD_CTL_RESUME}};
  CHECK(!kd_control_append(tmp, out, 5, &e));
  char a[2600], b[2600];
  snprintf(a, sizeof a, "%s/control.jsonl", tmp);
  snprintf(b, sizeof b, "%s/control.jsonl", dir);
  size_t la, lb;
  char *ta = kd_read_text(a, &la, 1 << 20, &e), *tb = kd_read_text(b, &lb, 1 << 20, &e);
  CHECK(ta && tb);
  char *pa = ta, *pb = tb;
  for (int i = 0; ta && tb && i < 5; i++) {
    char *na = strchr(pa, '\n'), *nb = strchr(pb, '\n');
    if (!na || !nb) break;
    *na = *nb = 0;
    strip(pa), strip(pb);
    CHECK_MSG(!strcmp(pa, pb), "line %d: C writes %s, the golden file has %s", i + 1, pa, pb);
    pa = na + 1, pb = nb + 1;
  }
  free(ta), free(tb);
}

/* inst.* and pca.*: each instance's features pooled with kd_map_roi_avg on
 * the level the hook chose, the teacher's PCA by kd_pca2, the projections
 * by kd_pca2_project (eigenvectors from two solvers: 1e-4). */
static void instances(const KdSnapshot *s) {
  const KdSnapField *im = kd_snapshot_find(s, "inst.image"), *gi = kd_snapshot_find(s, "inst.gt");
  const KdSnapField *lv = kd_snapshot_find(s, "inst.level"), *txy = kd_snapshot_find(s, "inst.t_xy");
  const KdSnapField *sxy = kd_snapshot_find(s, "inst.s_xy"), *pm = kd_snapshot_find(s, "pca.mean");
  const KdSnapField *pa = kd_snapshot_find(s, "pca.axes"), *pv = kd_snapshot_find(s, "pca.var");
  CHECK(im && gi && lv && txy && sxy && pm && pa && pv);
  if (!(im && gi && lv && txy && sxy && pm && pa && pv)) return;
  int M = im->shape[0];
  CHECK(M == 3 && txy->shape[0] == M && pm->shape[0] == C && pa->shape[0] == 2 && pa->shape[1] == C);
  float T[3 * C], S[3 * C], mean[C], axes[2 * C], var[3], xy[2];
  for (int j = 0; j < M && j < 3; j++) {
    int i = (int)im->data[j], k = (int)gi->data[j], l = (int)lv->data[j], H = SIZE / s->strides[l];
    const KdSnapField *gt = kd_snapshot_findf(s, "img%d.gt", i);
    float *ft = malloc(sizeof(float) * N * C * H * H), *fs = malloc(sizeof(float) * N * C * H * H);
    features(1, H, ft), features(0, H, fs);
    kd_map_roi_avg(ft + (size_t)i * C * H * H, C, H, H, s->strides[l], gt->data + 6 * k, T + C * j);
    kd_map_roi_avg(fs + (size_t)i * C * H * H, C, H, H, s->strides[l], gt->data + 6 * k, S + C * j);
    free(ft), free(fs);
  }
  CHECK(!kd_pca2(T, M, C, mean, axes, var));
  check_close(pm->data, mean, C, 1e-5, "pca.mean");
  check_close(pa->data, axes, 2 * C, 1e-4, "pca.axes");
  check_close(pv->data, var, 3, 1e-4, "pca.var");
  for (int j = 0; j < M && j < 3; j++) {
    kd_pca2_project(T + C * j, C, mean, axes, xy);
    check_close(txy->data + 2 * j, xy, 2, 1e-4, "inst.t_xy");
    kd_pca2_project(S + C * j, C, mean, axes, xy);
    check_close(sxy->data + 2 * j, xy, 2, 1e-4, "inst.s_xy");
  }
}

static void snapshot(const char *dir) {
  KdError e;
  KdSnapshots *idx = kd_snapshots_open(dir, &e);
  CHECK_MSG(idx != NULL, "%s", e.msg);
  if (!idx) return;
  CHECK(kd_snapshots_count(idx) == 1 && kd_snapshots_step(idx, 0) == 3 && kd_snapshots_at_step(idx, 4) == 0);
  KdSnapshot *s = NULL;
  CHECK_MSG(!kd_snapshot_load(idx, 0, &s, &e), "%s", e.msg);
  kd_snapshots_close(idx);
  if (!s) return;
  CHECK(s->step == 3 && s->nimages == N && s->img_h == SIZE && s->img_w == SIZE && s->nlev == 2);
  CHECK(s->strides[0] == 8 && s->strides[1] == 16 && s->t_channels == C && s->s_channels == C);
  CHECK(s->image_index[1] == 5 && s->image_id[1] == 106 && !strcmp(s->methods, "fitnet"));
  CHECK(s->nclasses == 2 && !strcmp(s->class_names[1], "shoe") && s->attn_temp == 0.5f);
  CHECK(s->nparts == 2 && !strcmp(s->parts[0].name, "det.cls") && s->parts[0].value == 1.0 / 3.0);
  CHECK(s->nprobe_parts == 2 && s->probe_parts[1].value == 0.0625);
  CHECK(s->time == 1800000003.25 && s->capture_s == 0.25); /* the fixed clock */
  for (int k = 0; k < N * SIZE * SIZE * 3; k++)
    if (s->rgb[k] != (uint8_t)((k * 37) % 256)) {
      CHECK_MSG(0, "rgb byte %d", k);
      break;
    }
  const KdSnapField *dt = kd_snapshot_find(s, "img0.det.t"), *ds = kd_snapshot_find(s, "img0.det.s");
  CHECK(dt && dt->shape[0] == 1 && dt->shape[1] == 6 && dt->data[4] == 0.875f && ds && ds->shape[0] == 0);
  const float w = 0.5f; /* fitnet.weight at step 3 */
  for (int l = 0; l < 2; l++) {
    int H = SIZE / s->strides[l], HW = H * H;
    char lv[8];
    kd_snapshot_level_name(s, l, lv, sizeof lv);
    float *t = malloc(sizeof(float) * N * C * HW), *sf = malloc(sizeof(float) * N * C * HW);
    float *g = malloc(sizeof(float) * C * HW), *m = malloc(sizeof(float) * HW), *m2 = malloc(sizeof(float) * C);
    features(1, H, t), features(0, H, sf);
    for (int i = 0; i < N; i++) {
      const float *ti = t + (size_t)i * C * HW, *si = sf + (size_t)i * C * HW;
      kd_map_energy(ti, C, HW, m);
      check_close(field(s, "img%d.%s.t_energy", i, lv)->data, m, HW, 1e-5, "t_energy");
      kd_map_energy(si, C, HW, m);
      check_close(field(s, "img%d.%s.s_energy", i, lv)->data, m, HW, 1e-5, "s_energy");
      kd_map_gap(si, ti, C, HW, m);
      check_close(field(s, "img%d.%s.gap", i, lv)->data, m, HW, 1e-5, "gap");
      for (int q = 0; q < HW; q++) m[q] *= w / (float)(N * HW);
      check_close(field(s, "img%d.%s.gap.fitnet", i, lv)->data, m, HW, 1e-5, "gap.fitnet");
      kd_map_spatial_attn(ti, C, HW, 0.5f, m);
      check_close(field(s, "img%d.%s.t_sattn", i, lv)->data, m, HW, 1e-5, "t_sattn");
      kd_map_channel_attn(si, C, HW, 0.5f, m2);
      check_close(field(s, "img%d.%s.s_cattn", i, lv)->data, m2, C, 1e-5, "s_cattn");
      /* gradients: det = S, fitnet = w (S - T), total = their sum */
      kd_map_norm(si, C, HW, m);
      const KdSnapField *gd = field(s, "img%d.%s.grad.det", i, lv);
      check_close(gd->data, m, HW, 1e-5, "grad.det");
      for (int k = 0; k < C * HW; k++) g[k] = w * (si[k] - ti[k]);
      kd_map_norm(g, C, HW, m);
      check_close(field(s, "img%d.%s.grad.fitnet", i, lv)->data, m, HW, 1e-5, "grad.fitnet");
      for (int k = 0; k < C * HW; k++) g[k] += si[k];
      kd_map_norm(g, C, HW, m);
      check_close(field(s, "img%d.%s.grad.total", i, lv)->data, m, HW, 1e-5, "grad.total");
      /* fg: the probe's box cells of the stored GT (crowd boxes left out) */
      const KdSnapField *gt = kd_snapshot_findf(s, "img%d.gt", i), *fg = field(s, "img%d.%s.fg", i, lv);
      memset(m, 0, sizeof(float) * HW);
      for (int b = 0; gt && b < gt->shape[0]; b++) {
        int x0, y0, x1, y1;
        if (gt->data[6 * b + 5] != 0 || !kd_map_box_cells(gt->data + 6 * b, s->strides[l], H, H, &x0, &y0, &x1, &y1)) continue;
        for (int y = y0; y <= y1; y++)
          for (int x = x0; x <= x1; x++) m[y * H + x] = 1;
      }
      CHECK_MSG(!memcmp(fg->data, m, sizeof(float) * HW), "img%d.%s.fg differs from kd_map_box_cells", i, lv);
      if (i == 0) CHECK(!memcmp(field(s, "img%d.%s.mask.fitnet.where", 1, lv)->data, m, sizeof(float) * HW));
      /* grad_fgbg / fgbg_count: the means over fg and bg cells */
      double a[2] = {0, 0}, c[2] = {0, 0};
      for (int q = 0; q < HW; q++) a[fg->data[q] > 0.5f ? 0 : 1] += gd->data[q], c[fg->data[q] > 0.5f ? 0 : 1]++;
      const KdSnapField *fb = kd_snapshot_find(s, "grad_fgbg.det"), *cnt = kd_snapshot_find(s, "fgbg_count");
      CHECK(fb && cnt && fb->shape[0] == N && fb->shape[1] == 2 && fb->shape[2] == 2);
      for (int k = 0; fb && cnt && k < 2; k++) {
        CHECK(cnt->data[(i * 2 + l) * 2 + k] == (float)c[k]);
        CHECK_NEAR(fb->data[(i * 2 + l) * 2 + k], c[k] ? a[k] / c[k] : 0, 1e-6 * (1 + fabs(a[k])));
      }
    }
    free(t), free(sf), free(g), free(m), free(m2);
  }
  instances(s);
  kd_snapshot_free(s);
}

/* A snapshot as kdscope writes it, for the hook's reader. */
static KdSnapshot *c_snapshot(void) {
  KdSnapshot *s = kd_snapshot_new();
  s->step = 120, s->time = 1800000000.5, s->capture_s = 0.125;
  s->nimages = 1, s->img_h = 8, s->img_w = 16, s->nlev = 2, s->strides[0] = 4, s->strides[1] = 8;
  s->image_index[0] = 7, s->image_id[0] = 1007, s->t_channels = 3, s->s_channels = 2, s->attn_temp = 0.5f;
  snprintf(s->methods, sizeof s->methods, "fitnet,defeat");
  s->nparts = 1, s->nprobe_parts = 1;
  snprintf(s->parts[0].name, sizeof s->parts[0].name, "det.cls"), s->parts[0].value = 0.1 + 0.2;
  snprintf(s->probe_parts[0].name, sizeof s->probe_parts[0].name, "defeat.neck_bg"), s->probe_parts[0].value = 0.25;
  const char *cls[2] = {"T-shirt/top", "Bag"};
  kd_snapshot_set_classes(s, 2, cls);
  s->rgb = malloc(8 * 16 * 3);
  for (int k = 0; k < 8 * 16 * 3; k++) s->rgb[k] = (uint8_t)(k * 5 % 251);
  for (int l = 0; l < 2; l++) {
    int H = 8 / s->strides[l], W = 16 / s->strides[l];
    char name[64];
    snprintf(name, sizeof name, "img0.P%d.gap", l + 2);
    KdSnapField *f = kd_snapshot_add2(s, name, H, W);
    for (int k = 0; k < H * W; k++) f->data[k] = 0.25f * k + l; /* exact in F16 */
    snprintf(name, sizeof name, "img0.P%d.t_cattn", l + 2);
    f = kd_snapshot_add1(s, name, 3);
    for (int k = 0; k < 3; k++) f->data[k] = 1.0f / (k + 3); /* rounded to F16 */
  }
  KdSnapField *f = kd_snapshot_add2(s, "img0.gt", 1, 6);
  const float gt[6] = {1, 2, 9, 7, 1, 0};
  memcpy(f->data, gt, sizeof gt);
  int sh[3] = {1, 2, 2};
  f = kd_snapshot_add(s, "grad_fgbg.det", 3, sh);
  for (int k = 0; k < 4; k++) f->data[k] = 1.0f / (k + 1); /* F32: not a per-level map */
  return s;
}

int main(int argc, char **argv) {
  KdSnapshot *cs = c_snapshot();
  KdError e;
  if (argc == 3 && !strcmp(argv[1], "--write-c-snapshot")) {
    int rc = kd_snapshot_write_file(argv[2], cs, 1, NULL, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    kd_snapshot_free(cs);
    return rc ? 1 : 0;
  }
  /* The number format the hook restates (kdscope_hook.num_format; the
   * same table is in hook_golden.py). */
  static const struct { double v; const char *s; } nums[] = {{0.5, "0.5"}, {1.0, "1"}, {5e-6, "5e-6"}, {0.0001, "0.0001"},
    {123456789.0, "123456789"}, {1e9, "1e9"}, {0.1 + 0.2, "0.30000000000000004"}, {-2.5e-7, "-2.5e-7"}, {0.0, "0"},
    {100.0, "100"}, {1.5e10, "1.5e10"}};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    char buf[64];
    kd_num_format(nums[i].v, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, nums[i].s), "kd_num_format(%.17g) = %s, the hook writes %s", nums[i].v, buf, nums[i].s);
  }
  const char *root = getenv("KD_SOURCE_ROOT");
  snprintf(golden, sizeof golden, "%s/tests/hook/golden", root ? root : ".");
  const char *tmp = fx_tmpdir("hook-golden");
  char dir[2300], path[2300], mine[2300];
  snprintf(dir, sizeof dir, "%s/hook_run", golden);
  config_and_events(dir);
  control_file(dir, tmp);
  snapshot(dir);
  /* The C-written golden snapshot is what this build writes, byte for byte. */
  snprintf(path, sizeof path, "%s/c_snapshot.safetensors", golden);
  snprintf(mine, sizeof mine, "%s/c_snapshot.safetensors", tmp);
  CHECK(!kd_snapshot_write_file(mine, cs, 1, NULL, &e));
  size_t la = 0, lb = 0;
  char *a = kd_read_text(path, &la, 1 << 20, &e), *b = kd_read_text(mine, &lb, 1 << 20, &e);
  CHECK_MSG(a && b && la == lb && !memcmp(a, b, la), "%s differs from what kdscope writes (regenerate with --write-c-snapshot)", path);
  free(a), free(b);
  kd_snapshot_free(cs);
  return check_status("hook_golden");
}
