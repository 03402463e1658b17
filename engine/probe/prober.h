/* The prober: turns the state of a training session into snapshots the UI
 * draws (snapshot.h), on a fixed set of validation images decoded once
 * without augmentation (exactly the pixels the evaluation loader gives).
 *
 * A capture runs kd_trainer_forward on the probe images in its own ctx with
 * eval-mode BN (no running-stat update), computes the maps, then one
 * backward pass per loss source (detection, each active method) to split
 * the gradient on the student's FPN features by source. It leaves training
 * as it found it: the trainer's ctx is never touched, and the parameter
 * gradients the passes accumulate are zeroed afterwards (the optimizer
 * expects zeros between steps). So: call it between steps, on the thread
 * that steps the session (kd_prober_request, _stats and _error excepted).
 * The probe batch's targets live in the prober's ctx, so the trainer's
 * last forward stays valid; methods read the live config as in a step.
 *
 * Budget: kd_prober_due says when to capture so that probing costs about
 * cfg.budget (10%) of training time: after a capture that took c seconds
 * with steps taking s seconds (a running average), the next capture is
 * max(min_interval, ceil(c / (budget * s))) steps later. The first call
 * is always due, and kd_prober_request (any thread) makes the next one due. */
#ifndef KD_PROBE_PROBER_H
#define KD_PROBE_PROBER_H

#include "probe/publish.h"
#include "probe/snapshot.h"
#include "train/session.h"

typedef struct KdProbeCfg {
  const KdConfig *settings; /* the session's config (required): image size,
                               post-processing, the methods' settings */
  int nimages;              /* the first n validation images; default 4 */
  int nindices;             /* > 0: probe these validation indices instead */
  int indices[KD_PROBE_MAX_IMAGES];
  double budget;            /* share of step time; default 0.10 */
  int min_interval;         /* steps between captures, at least; default 10 */
  int max_interval;         /* at most (0: no limit); default 0 */
  int write_files;          /* RUN_DIR/snapshots (snapfile.h); default 1 */
  int f16_maps;             /* store maps as F16 in files; default 0 */
  int cut_backward;         /* stop probe backward passes at the FPN
                               features (tapecut.h); default 1 */
  float attn_temp;          /* 0: the setting a method names as its attention
                               temperature (KdMethod.attn_temp_key; active
                               methods first), else 0.5 */
  KdProbeBox *box;          /* kd_prober_after_step publishes here; may be NULL */
  int inspect;              /* an inspect session (no training): a capture only
                               when requested (and the first), and snapshot k
                               (from 0) carries step k; default 0 */
} KdProbeCfg;

void kd_probe_cfg_default(KdProbeCfg *c);
/* Defaults, then what a run's settings say: settings = cfg, budget from
 * probe.budget (when > 0), images from probe.images. -1 with err naming
 * the key on a bad value. */
int kd_probe_cfg_from_settings(KdProbeCfg *c, const KdConfig *cfg, KdError *err);
/* probe.images: a count N ("4": the first N validation images, 1..16)
 * or a list of distinct validation indices ("3,17,42"; one index as
 * "17,"), at most 16. Fills nimages or nindices + indices. Whether the
 * indices lie inside the validation split is checked when the prober
 * binds (kd_prober_bind). -1 with err naming the key. */
int kd_probe_parse_images(KdProbeCfg *c, const char *text, KdError *err);

typedef struct KdProber KdProber;

/* Checks cfg and, given a session, binds to it. s may be NULL when the
 * session does not exist yet (a KdRun opens its own): the prober then
 * binds to the session its first after_step/run_hook call receives. */
KdProber *kd_prober_new(KdSession *s, const KdProbeCfg *cfg, KdError *err);
/* Decodes the probe images from s's validation set; when writing files,
 * snapshots of a resumed run past the current step are dropped
 * (kd_snapshots_truncate). Binding again to the same session is a no-op. */
int kd_prober_bind(KdProber *p, KdSession *s, KdError *err);
void kd_prober_free(KdProber *p);

/* 1 if step (training steps done) should be probed; last_step_seconds is
 * the duration of the step just done (<= 0: unknown, keeps the average). */
int kd_prober_due(KdProber *p, int step, double last_step_seconds);
/* Thread-safe: the next kd_prober_due returns 1. */
void kd_prober_request(KdProber *p);
/* The loss parts of the training step, recorded in the next capture. */
void kd_prober_set_step_stats(KdProber *p, const KdStepStats *st);
/* Captures now. *out holds one reference (kd_snapshot_free). */
int kd_prober_capture(KdProber *p, int step, KdSnapshot **out, KdError *err);
/* The run thread's hook after each step: if due, capture, publish to
 * cfg.box, then append to the run's snapshots (write_files; a reader in
 * this process never waits for the disk). Returns 1 when it captured, 0
 * when not due, -1 on an error (err; training can go on). */
int kd_prober_after_step(KdProber *p, KdSession *s, const KdStepStats *st, KdError *err);
/* The same with train/run.h's KdRunAfterStep signature (user = the
 * prober), so a run takes it as is (binding on the first call). An error
 * does not stop training: it is logged once per distinct message as a
 * "probe_error" event in events.jsonl and kept for kd_prober_error; a
 * prober that cannot bind stays quiet from then on. */
void kd_prober_run_hook(void *prober, KdSession *s, const KdStepStats *st);
/* Thread-safe: probe these validation indices from the next capture on
 * (which comes at the next step: it is requested too). Checked against
 * the validation split when bound (else at the bind); the run logs a
 * "probe_images" event when it takes them. Snapshots name their images,
 * so a replay shows which were probed when. */
int kd_prober_set_images(KdProber *p, const int *indices, int n, KdError *err);
/* Thread-safe: the validation indices of the next capture into out
 * (capacity KD_PROBE_MAX_IMAGES); returns their count (0 before binding). */
int kd_prober_images(KdProber *p, int *out);
/* The validation split the images come from (NULL before binding). It is
 * read-only once the session is open, so any thread may read it. */
const KdDataset *kd_prober_val(KdProber *p);
/* Thread-safe: the last error of kd_prober_run_hook into buf ("" if none). */
const char *kd_prober_error(KdProber *p, char *buf, size_t len);

typedef struct KdProbeStats {
  int captures;
  int next_step;       /* first step kd_prober_due will accept */
  double last_cost_s;  /* last capture (+ file write) */
  double total_cost_s;
  double step_s;       /* running average of step time */
  size_t last_bytes;   /* size of the last file written */
  size_t arena_peak;   /* bytes the prober's own ctx peaked at */
} KdProbeStats;
/* Thread-safe. */
KdProbeStats kd_prober_stats(KdProber *p);

#endif
