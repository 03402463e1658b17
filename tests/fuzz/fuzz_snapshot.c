/* libFuzzer target: snapshot files and a run's snapshot index
 * (engine/probe/snapfile.c, snapindex.c), as the window and `kdscope
 * export` read them from a run directory that may be corrupt, torn or
 * still growing.
 *   first byte even: the rest is a snapshot file; an accepted one is
 *     written back and read again, and must come back the same;
 *   odd: the rest is snapshots/index.jsonl, read in two pieces (a run
 *     appending while the reader follows) and whole: same entries; then
 *     truncated after a step: nothing later is left. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_file.h"
#include "probe/snapfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_snapshot(const KdSnapshot *a, const KdSnapshot *b) {
  if (a->step != b->step || a->nimages != b->nimages || a->img_h != b->img_h || a->img_w != b->img_w ||
      a->nlev != b->nlev || a->nfields != b->nfields || a->nclasses != b->nclasses || strcmp(a->methods, b->methods))
    __builtin_trap();
  if (memcmp(a->rgb, b->rgb, (size_t)a->nimages * (size_t)a->img_h * (size_t)a->img_w * 3)) __builtin_trap();
  for (int i = 0; i < a->nfields; i++) {
    const KdSnapField *x = &a->fields[i], *y = kd_snapshot_find(b, x->name);
    if (!y || y->ndim != x->ndim || y->numel != x->numel || memcmp(x->shape, y->shape, sizeof x->shape) ||
        memcmp(x->data, y->data, x->numel * sizeof(float)))
      __builtin_trap();
  }
  for (int i = 0; i < a->nclasses; i++)
    if (strcmp(a->class_names[i], b->class_names[i])) __builtin_trap();
}

static void snapshot_file(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size), *dir = fuzz_dir();
  if (!path || !dir) return;
  KdSnapshot *s = NULL, *s2 = NULL;
  KdError err = {{0}};
  if (kd_snapshot_read_file(path, &s, &err)) {
    if (!err.msg[0] || s) __builtin_trap();
    return;
  }
  char out[128];
  snprintf(out, sizeof out, "%s/back.safetensors", dir);
  if (kd_snapshot_write_file(out, s, 0, NULL, &err) || kd_snapshot_read_file(out, &s2, &err)) __builtin_trap();
  same_snapshot(s, s2);
  kd_snapshot_free(s);
  kd_snapshot_free(s2);
}

static int write_index(const char *path, const uint8_t *d, size_t n, const char *mode) {
  FILE *f = fopen(path, mode);
  if (!f) return -1;
  int ok = fwrite(d, 1, n, f) == n;
  return fclose(f) || !ok ? -1 : 0;
}

static void index_file(const uint8_t *data, size_t size) {
  const char *run = fuzz_dir();
  if (!run) return;
  char sdir[128], index[160];
  snprintf(sdir, sizeof sdir, "%s/snapshots", run);
  snprintf(index, sizeof index, "%s/index.jsonl", sdir);
  mkdir(sdir, 0700);
  remove(index);
  KdError err = {{0}};
  KdSnapshots *live = kd_snapshots_open(run, &err); /* before the index exists */
  if (!live) __builtin_trap();
  size_t cut = size ? data[0] % (size + 1) : 0;
  if (write_index(index, data, cut, "wb")) goto out;
  if (kd_snapshots_refresh(live, &err) < 0) __builtin_trap();
  if (write_index(index, data + cut, size - cut, "ab")) goto out;
  if (kd_snapshots_refresh(live, &err) < 0) __builtin_trap();
  KdSnapshots *whole = kd_snapshots_open(run, &err);
  if (!whole || kd_snapshots_count(whole) != kd_snapshots_count(live)) __builtin_trap();
  int n = kd_snapshots_count(whole), last = -1;
  for (int i = 0; i < n; i++) {
    int st = kd_snapshots_step(whole, i);
    if (st <= last || st != kd_snapshots_step(live, i) || kd_snapshots_bytes(whole, i) != kd_snapshots_bytes(live, i) ||
        kd_snapshots_at_step(whole, st) != i)
      __builtin_trap();
    char p1[4300], p2[4300];
    const char *a = kd_snapshots_path(whole, i, p1, sizeof p1), *b = kd_snapshots_path(live, i, p2, sizeof p2);
    if (!a || !b || strcmp(a, b) || strncmp(a, sdir, strlen(sdir)) || strstr(a + strlen(sdir) + 1, "/")) __builtin_trap();
    volatile double t = kd_snapshots_time(whole, i);
    (void)t;
    last = st;
  }
  if (n) {
    KdSnapshot *s = NULL;
    if (kd_snapshot_load(whole, 0, &s, &err) == 0) kd_snapshot_free(s);
    int after = kd_snapshots_step(whole, n / 2);
    if (kd_snapshots_truncate(run, after, &err)) __builtin_trap();
    KdSnapshots *kept = kd_snapshots_open(run, &err);
    if (!kept || kd_snapshots_count(kept) != n / 2 + 1) __builtin_trap();
    kd_snapshots_close(kept);
  }
  kd_snapshots_close(whole);
out:
  kd_snapshots_close(live);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  if (data[0] & 1) index_file(data + 1, size - 1);
  else snapshot_file(data + 1, size - 1);
  return 0;
}
