/* The run browser's hyperparameter view: one chosen setting against each
 * run's last COCO AP (percent), one point per run, coloured as the runs
 * compared are. GTK-free (kdfigure). */
#ifndef KD_RUN_BROWSER_HPARAMS_H
#define KD_RUN_BROWSER_HPARAMS_H

#include "core/error.h"
#include "figure.h"
#include "run_browser_scan.h"

#define KD_HPARAM_MAX_RUNS 64
#define KD_HPARAM_MAX_KEYS 48

typedef struct KdHparamStore KdHparamStore;
KdHparamStore *kd_hparam_store_new(void);
void kd_hparam_store_free(KdHparamStore *s);

/* The numeric settings worth a scatter over these runs: train.lr,
 * train.seed and the methods' weights first, then every other numeric
 * setting whose value differs between the runs. Keys (descriptor strings,
 * static) into keys[max]; returns how many. */
int kd_hparam_keys(const KdRunSummary *const *runs, int n, const char **keys, int max);

/* The scatter of key against the last AP. Runs without an evaluation or
 * without the setting are left out (*left_out counts them). -1 with err
 * when no run has both, or there are too many runs. The spec lives in
 * store until the next build or its free. */
int kd_hparam_build(const KdRunSummary *const *runs, int n, const char *key, KdHparamStore *store, KdFigPanel *out,
                    int *left_out, KdError *err);

/* The points of the last build: how many, and point i's setting value,
 * AP (percent) and run name (any of the outputs may be NULL). */
int kd_hparam_point(const KdHparamStore *s, int i, double *x, double *ap, const char **name);

#endif
