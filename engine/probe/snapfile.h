/* Snapshot files of a run (docs/SNAPSHOTS.md): RUN_DIR/snapshots/
 * step_<8 digits>.safetensors, one per snapshot, written whole (temp +
 * fsync + rename), then one line appended to RUN_DIR/snapshots/index.jsonl:
 *   {"step":1234,"file":"step_00001234.safetensors","bytes":251904,
 *    "time":1712345678.25,"capture_s":0.041}
 * A file therefore exists before its index line does. Readers take the
 * index as a log: per step the last line naming it wins (a resumed run
 * rewrites the steps after its checkpoint), entries sorted by step; a line
 * without its '\n' (a write in progress or a torn tail) is not read yet,
 * a line that does not parse is skipped. Another process can follow a live
 * run by calling kd_snapshots_refresh now and then.
 *
 * Inside a file: the fields of snapshot.h as tensors (maps F32, or F16 when
 * asked; img<i>.rgb as U8), and "__metadata__" {"format":
 * "kdscope-snapshot-1", "snapshot": JSON text of the scalar metadata}. */
#ifndef KD_PROBE_SNAPFILE_H
#define KD_PROBE_SNAPFILE_H

#include <stddef.h>

#include "core/error.h"
#include "probe/snapshot.h"

#define KD_SNAPSHOT_FORMAT "kdscope-snapshot-1"

/* ---- one file ---- */
/* f16_maps: store the per-level maps (img<i>.<L>.*) as F16. *bytes (may be
 * NULL) receives the file size. */
int kd_snapshot_write_file(const char *path, const KdSnapshot *s, int f16_maps, size_t *bytes, KdError *err);
int kd_snapshot_read_file(const char *path, KdSnapshot **out, KdError *err);

/* ---- a run's snapshot directory ---- */
/* Writes the snapshot's file and appends its index line. */
int kd_snapshots_append(const char *run_dir, const KdSnapshot *s, int f16_maps, size_t *bytes, KdError *err);
/* For a resumed run: drops index lines (and their files) with step >
 * after_step. A missing index is fine. */
int kd_snapshots_truncate(const char *run_dir, int after_step, KdError *err);

typedef struct KdSnapshots KdSnapshots;

/* Works before the directory or the index exists (a run that has not
 * probed yet): the reader is then empty until a refresh finds lines. */
KdSnapshots *kd_snapshots_open(const char *run_dir, KdError *err);
void kd_snapshots_close(KdSnapshots *r);
/* Reads index lines added since the last call (a rewritten index is read
 * again from the start). Returns how many entries were added or replaced,
 * or -1 when the index cannot be read. */
int kd_snapshots_refresh(KdSnapshots *r, KdError *err);
int kd_snapshots_count(const KdSnapshots *r);
int kd_snapshots_step(const KdSnapshots *r, int i);
double kd_snapshots_time(const KdSnapshots *r, int i);
size_t kd_snapshots_bytes(const KdSnapshots *r, int i);
/* Index of the last snapshot with step <= step (scrubbing), -1 if none. */
int kd_snapshots_at_step(const KdSnapshots *r, int step);
/* Full path of entry i's file into buf; NULL when it does not fit. */
const char *kd_snapshots_path(const KdSnapshots *r, int i, char *buf, size_t len);
int kd_snapshot_load(KdSnapshots *r, int i, KdSnapshot **out, KdError *err);

#endif
