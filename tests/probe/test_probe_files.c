/* Snapshot files and the run's snapshot index: round trip (F32 exact, F16
 * within half precision), bad files refused with a message, following a
 * growing index (torn last line, garbage line, a step written twice, a
 * rewritten index), truncation for resume, and the latest-snapshot box
 * under a publishing thread. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "model/safetensors.h"
#include "probe/publish.h"
#include "probe/snapfile.h"
#include "core/fileio.h"

static KdSnapshot *make_snap(int step) {
  KdSnapshot *s = kd_snapshot_new();
  s->step = step, s->time = 1700000000.5 + step, s->capture_s = 0.01 * step;
  s->nimages = 2, s->img_h = 16, s->img_w = 16, s->nlev = 2;
  s->strides[0] = 8, s->strides[1] = 16;
  s->image_index[0] = 0, s->image_index[1] = 5, s->image_id[0] = 101, s->image_id[1] = 106;
  s->t_channels = 4, s->s_channels = 4, s->attn_temp = 0.5f;
  snprintf(s->methods, sizeof s->methods, "fitnet,defeat");
  s->nparts = 2;
  snprintf(s->parts[0].name, 48, "det.cls"), s->parts[0].value = 0.1 + 0.2; /* 15 digits would read back as 0.3 */
  snprintf(s->parts[1].name, 48, "fitnet.feat"), s->parts[1].value = NAN;
  s->nprobe_parts = 1;
  snprintf(s->probe_parts[0].name, 48, "det.box"), s->probe_parts[0].value = 0.5;
  const char *cls[3] = {"T-shirt/top", "Trouser \"x\"", "Bag"};
  kd_snapshot_set_classes(s, 3, cls);
  s->rgb = malloc(2 * 16 * 16 * 3);
  for (int k = 0; k < 2 * 16 * 16 * 3; k++) s->rgb[k] = (uint8_t)(k * 7 + step);
  for (int i = 0; i < 2; i++) {
    char n[64];
    snprintf(n, sizeof n, "img%d.P3.gap", i);
    KdSnapField *f = kd_snapshot_add2(s, n, 2, 2);
    const float v[4] = {0, 1.0f / 3, 65504.0f, 1e-5f};
    memcpy(f->data, v, sizeof v);
    f->data[0] = (float)(step + i);
    snprintf(n, sizeof n, "img%d.P4.t_cattn", i);
    f = kd_snapshot_add1(s, n, 4);
    for (int k = 0; k < 4; k++) f->data[k] = 0.1f * k + 1e-3f * step;
    snprintf(n, sizeof n, "img%d.det.s", i);
    f = kd_snapshot_add2(s, n, i, 6); /* image 0: no detections */
    for (size_t k = 0; k < f->numel; k++) f->data[k] = (float)k;
  }
  int sh[3] = {2, 2, 2};
  KdSnapField *f = kd_snapshot_add(s, "grad_fgbg.det", 3, sh);
  for (int k = 0; k < 8; k++) f->data[k] = 1.0f / (k + 1);
  CHECK(kd_snapshot_add1(s, "grad_fgbg.det", 3) == NULL); /* names are unique */
  return s;
}

static int same_snap(const KdSnapshot *a, const KdSnapshot *b, double map_tol) {
  int ok = a->step == b->step && a->time == b->time && a->nimages == b->nimages && a->img_h == b->img_h && a->nlev == b->nlev &&
           a->strides[1] == b->strides[1] && a->image_index[1] == b->image_index[1] && a->image_id[1] == b->image_id[1] &&
           a->t_channels == b->t_channels && a->attn_temp == b->attn_temp && !strcmp(a->methods, b->methods) &&
           a->nparts == b->nparts && a->parts[0].value == b->parts[0].value && isnan(b->parts[1].value) &&
           !strcmp(a->parts[1].name, b->parts[1].name) && a->nprobe_parts == b->nprobe_parts && a->nclasses == b->nclasses &&
           !strcmp(a->class_names[1], b->class_names[1]) && a->nfields == b->nfields &&
           !memcmp(a->rgb, b->rgb, (size_t)a->nimages * a->img_h * a->img_w * 3);
  CHECK_MSG(ok, "metadata differ (step %d vs %d)", a->step, b->step);
  for (int k = 0; k < a->nfields; k++) {
    const KdSnapField *x = &a->fields[k], *y = kd_snapshot_find(b, x->name);
    if (!y || y->ndim != x->ndim || y->numel != x->numel || memcmp(x->shape, y->shape, sizeof x->shape)) {
      CHECK_MSG(0, "field %s missing or reshaped", x->name);
      ok = 0;
      continue;
    }
    int is_map = strstr(x->name, ".P") != NULL;
    for (size_t q = 0; q < x->numel; q++) {
      double tol = is_map ? map_tol * fabs(x->data[q]) + (map_tol > 0 ? 6e-8 : 0) : 0;
      if (fabs((double)x->data[q] - y->data[q]) > tol) {
        CHECK_MSG(0, "%s[%zu]: %.9g vs %.9g", x->name, q, x->data[q], y->data[q]);
        ok = 0;
        break;
      }
    }
  }
  return ok;
}

static void test_roundtrip(void) {
  KdSnapshot *s = make_snap(42), *r = NULL;
  KdError e;
  size_t b32 = 0, b16 = 0;
  CHECK_MSG(kd_snapshot_write_file(fx_path("a.safetensors"), s, 0, &b32, &e) == 0, "%s", e.msg);
  CHECK_MSG(kd_snapshot_read_file(fx_path("a.safetensors"), &r, &e) == 0, "%s", e.msg);
  if (r) same_snap(s, r, 0);
  kd_snapshot_free(r);
  CHECK(kd_snapshot_write_file(fx_path("b.safetensors"), s, 1, &b16, &e) == 0);
  CHECK(kd_snapshot_read_file(fx_path("b.safetensors"), &r, &e) == 0);
  if (r) {
    same_snap(s, r, 1.0 / 2048);
    CHECK(kd_snapshot_find(r, "img0.P3.gap")->data[2] == 65504.0f);
  }
  kd_snapshot_free(r);
  CHECK(b16 < b32 && b32 > 0);
  /* the file is plain safetensors: the generic reader sees the fields */
  KdSafetensors *st = kd_safetensors_open(fx_path("a.safetensors"), &e);
  CHECK(st && kd_safetensors_find(st, "img1.rgb") >= 0 && !strcmp(kd_safetensors_dtype(st, kd_safetensors_find(st, "img1.rgb")), "U8"));
  kd_safetensors_close(st);
  /* bad files: truncated, not a snapshot, missing */
  size_t len;
  char *all = kd_read_text(fx_path("a.safetensors"), &len, 1 << 24, &e);
  CHECK(all && kd_write_file_atomic(fx_path("cut.safetensors"), all, len - 10, &e) == 0);
  free(all);
  CHECK(kd_snapshot_read_file(fx_path("cut.safetensors"), &r, &e) == -1 && r == NULL && strstr(e.msg, "cut.safetensors"));
  const float one = 1;
  const char *names[1] = {"x"};
  const float *data[1] = {&one};
  int nd[1] = {0}, shp[1][4] = {{0}};
  CHECK(kd_safetensors_write(fx_path("plain.safetensors"), 1, names, data, nd, shp, NULL, &e) == 0);
  CHECK(kd_snapshot_read_file(fx_path("plain.safetensors"), &r, &e) == -1 && strstr(e.msg, "not a kdscope snapshot"));
  CHECK(kd_snapshot_read_file(fx_path("nope.safetensors"), &r, &e) == -1);
  printf("synthetic snapshot: %zu bytes F32, %zu bytes F16 maps\n", b32, b16);
  kd_snapshot_free(s);
}

static void append_raw(const char *run, const char *text) {
  char p[1024];
  snprintf(p, sizeof p, "%s/snapshots/index.jsonl", run);
  FILE *f = fopen(p, "ab");
  fputs(text, f);
  fclose(f);
}

static void test_index(void) {
  char run[1024];
  snprintf(run, sizeof run, "%s", fx_path("run"));
  KdError e;
  KdSnapshots *r = kd_snapshots_open(run, &e); /* nothing yet */
  CHECK(r && kd_snapshots_count(r) == 0 && kd_snapshots_refresh(r, &e) == 0);
  for (int s = 10; s <= 20; s += 10) {
    KdSnapshot *x = make_snap(s);
    CHECK_MSG(kd_snapshots_append(run, x, 0, NULL, &e) == 0, "%s", e.msg);
    kd_snapshot_free(x);
  }
  CHECK(kd_snapshots_refresh(r, &e) == 2 && kd_snapshots_count(r) == 2 && kd_snapshots_step(r, 1) == 20);
  CHECK(kd_snapshots_bytes(r, 0) > 0 && kd_snapshots_time(r, 1) == 1700000020.5);
  /* a line being written: not read until its newline arrives */
  KdSnapshot *x = make_snap(30);
  char path[1200];
  snprintf(path, sizeof path, "%s/snapshots/step_00000030.safetensors", run);
  CHECK(kd_snapshot_write_file(path, x, 0, NULL, &e) == 0);
  append_raw(run, "{\"step\":30,\"file\":\"step_000");
  CHECK(kd_snapshots_refresh(r, &e) == 0 && kd_snapshots_count(r) == 2);
  append_raw(run, "00030.safetensors\",\"bytes\":1,\"time\":3}\nnot json at all\n{\"step\":40,\"file\":\"../escape\"}\n");
  CHECK(kd_snapshots_refresh(r, &e) == 1 && kd_snapshots_count(r) == 3 && kd_snapshots_step(r, 2) == 30);
  /* step 20 again (a resumed run re-probing): replaced, not duplicated */
  KdSnapshot *y = make_snap(20);
  y->capture_s = 99;
  CHECK(kd_snapshots_append(run, y, 1, NULL, &e) == 0);
  CHECK(kd_snapshots_refresh(r, &e) == 1 && kd_snapshots_count(r) == 3);
  CHECK(kd_snapshots_at_step(r, 25) == 1 && kd_snapshots_at_step(r, 5) == -1 && kd_snapshots_at_step(r, 1000) == 2);
  KdSnapshot *l = NULL;
  CHECK(kd_snapshot_load(r, 2, &l, &e) == 0 && l && same_snap(x, l, 0));
  kd_snapshot_free(l);
  CHECK(kd_snapshot_load(r, 1, &l, &e) == 0 && l && l->capture_s == 99);
  kd_snapshot_free(l);
  CHECK(kd_snapshot_load(r, 7, &l, &e) == -1 && strstr(e.msg, "out of range"));
  /* a second reader opened now sees the same */
  KdSnapshots *r2 = kd_snapshots_open(run, &e);
  CHECK(r2 && kd_snapshots_count(r2) == 3);
  kd_snapshots_close(r2);
  /* resume at step 15: later snapshots and their files go */
  CHECK(kd_snapshots_truncate(run, 15, &e) == 0);
  struct stat sb;
  CHECK(stat(path, &sb) != 0);
  snprintf(path, sizeof path, "%s/snapshots/step_00000010.safetensors", run);
  CHECK(stat(path, &sb) == 0);
  CHECK(kd_snapshots_refresh(r, &e) >= 1 && kd_snapshots_count(r) == 1 && kd_snapshots_step(r, 0) == 10);
  KdSnapshot *z = make_snap(16);
  CHECK(kd_snapshots_append(run, z, 0, NULL, &e) == 0);
  CHECK(kd_snapshots_refresh(r, &e) == 1 && kd_snapshots_count(r) == 2);
  CHECK(kd_snapshots_truncate(fx_path("no-such-run"), 5, &e) == 0);
  kd_snapshot_free(x), kd_snapshot_free(y), kd_snapshot_free(z);
  kd_snapshots_close(r);
}

typedef struct {
  KdProbeBox *box;
  int n;
} Pub;

static void *publisher(void *arg) {
  Pub *p = arg;
  for (int k = 1; k <= p->n; k++) {
    KdSnapshot *s = kd_snapshot_new();
    s->step = k;
    kd_snapshot_add1(s, "x", 64);
    kd_probe_publish(p->box, s);
  }
  return NULL;
}

/* The box's notify: called once per publish, with that publish's generation. */
typedef struct {
  int calls;
  uint64_t last;
  int in_order;
} Notified;

static void notified(void *user, uint64_t gen) {
  Notified *n = user;
  n->in_order &= gen == n->last + 1;
  n->last = gen;
  n->calls++;
}

static void test_publish(void) {
  KdProbeBox *box = kd_probe_box_new();
  Notified nt = {0, 0, 1};
  kd_probe_box_set_notify(box, notified, &nt);
  uint64_t g = 7;
  CHECK(kd_probe_latest(box, &g) == NULL && g == 0 && nt.calls == 0);
  KdSnapshot *a = make_snap(1), *b = make_snap(2);
  kd_probe_publish(box, a);
  CHECK(nt.calls == 1 && nt.last == 1);
  KdSnapshot *held = kd_probe_latest(box, &g);
  CHECK(held == a && g == 1);
  kd_probe_publish(box, b); /* the box lets go of a; we still hold it */
  CHECK(held->step == 1 && kd_snapshot_find(held, "img1.P3.gap") != NULL);
  kd_snapshot_free(held);
  KdSnapshot *now = kd_probe_latest(box, NULL);
  CHECK(now == b && kd_probe_generation(box) == 2);
  kd_snapshot_free(now);
  /* a reader polling while a thread publishes: steps never go back */
  Pub pub = {box, 3000};
  pthread_t th;
  pthread_create(&th, NULL, publisher, &pub);
  int last = 0, back = 0, reads = 0;
  while (last < pub.n) {
    KdSnapshot *s = kd_probe_latest(box, NULL);
    if (s && s->step != 2) {
      back += s->step < last;
      last = s->step;
      back += kd_snapshot_find(s, "x") == NULL;
    }
    reads++;
    kd_snapshot_free(s);
  }
  pthread_join(th, NULL);
  CHECK(back == 0 && reads > 0);
  CHECK_MSG(nt.calls == 2 + pub.n && nt.in_order && nt.last == (uint64_t)(2 + pub.n), "notify: %d calls, last %llu",
            nt.calls, (unsigned long long)nt.last);
  kd_probe_box_free(box);
}

int main(void) {
  fx_tmpdir("probefiles");
  test_roundtrip();
  test_index();
  test_publish();
  return check_status("test_probe_files");
}
