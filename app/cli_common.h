/* What the training verbs share: their flags, loading the config (file,
 * then --data/--steps/--set overrides), and driving a live run with a
 * progress display. */
#ifndef KD_CLI_COMMON_H
#define KD_CLI_COMMON_H

#include "core/config.h"

typedef struct KdTrainArgs {
  const char *config, *data, *out, *resume;
  const char *sets[64];
  int nsets;
  long steps; /* -1: from config */
  int quiet;
} KdTrainArgs;

/* Parses argv (after the verb). Returns 0, 1 for a user error (message
 * printed), 2 when --help was printed. */
int kd_cli_train_args(int argc, char **argv, KdTrainArgs *a, const char *verb, const char *usage);
/* Registers every setting and loads the config as the args say. Relative
 * paths in a config file (teacher.*, data.dir) are taken relative to that
 * file. */
KdConfig *kd_cli_load_config(const KdTrainArgs *a, const char *default_config, int distill, const char *verb);
/* kd_cli_load_config for train and distill: joins the data-parallel job
 * when mpirun started the process (train/dist.h), and every rank takes
 * rank 0's config. Every rank gets NULL when rank 0 fails. Call
 * kd_dist_finalize when the verb is done. */
KdConfig *kd_cli_shared_config(const KdTrainArgs *a, const char *default_config, int distill, const char *verb);
/* Runs to train.steps through a KdRun (train/run.h): the run thread
 * trains, this thread draws the progress from its status; Ctrl+C stops
 * cleanly; other processes control it through the run directory
 * (kdscope set|pause|resume|stop). Returns the exit status. */
int kd_cli_run_training(KdConfig *cfg, const KdTrainArgs *a, int distill, const char *verb);
/* Path of a file shipped in assets/ (source tree or installed), into buf. */
const char *kd_cli_asset(const char *rel, char *buf, size_t len);

#endif
