/* kdscope train: a detector alone (teacher pretraining, student baseline). */
#include "cli_common.h"
#include "train/dist.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope train --config FILE [--data DIR] [--set key=value]... [--steps N]\n"
    "                     [--out RUN_DIR | --resume RUN_DIR] [--quiet]\n\n"
    "Trains a detector alone (e.g. the teacher). Writes a run directory with\n"
    "config.json, metrics.jsonl, metrics.csv, events.jsonl and checkpoints/.\n"
    "Without --data the default fashion-det set is used (built on first use).\n"
    "Ctrl+C stops cleanly after the current step and writes a checkpoint.\n";

int kd_cli_train(int argc, char **argv) {
  KdTrainArgs a;
  int rc = kd_cli_train_args(argc, argv, &a, "train", usage);
  if (rc) return rc == 2 ? 0 : 1;
  KdConfig *cfg = kd_cli_shared_config(&a, NULL, 0, "train");
  if (!cfg) {
    kd_dist_finalize();
    return 1;
  }
  rc = kd_cli_run_training(cfg, &a, 0, "train");
  kd_config_free(cfg);
  kd_dist_finalize();
  return rc;
}
