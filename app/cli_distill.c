/* kdscope distill: teacher (checkpoint, no tape) -> student with the active
 * distillation methods. */
#include "cli_common.h"
#include "train/dist.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope distill [--config FILE] [--data DIR] [--set key=value]... [--steps N]\n"
    "                       [--out RUN_DIR | --resume RUN_DIR] [--quiet]\n\n"
    "Distils the teacher (teacher.config + teacher.checkpoint) into the student\n"
    "with the methods in distill.methods (e.g. --set distill.methods=defeat,fgd),\n"
    "each with its own <method>.weight. Default config: assets/configs/distill.json\n"
    "(shipped teacher -> student preset, DeFeat, fashion-det). Writes a run\n"
    "directory like `train`, with periodic COCO evaluation on the val split.\n";

int kd_cli_distill(int argc, char **argv) {
  KdTrainArgs a;
  int rc = kd_cli_train_args(argc, argv, &a, "distill", usage);
  if (rc) return rc == 2 ? 0 : 1;
  KdConfig *cfg = kd_cli_shared_config(&a, "configs/distill.json", 1, "distill");
  if (!cfg) {
    kd_dist_finalize();
    return 1;
  }
  rc = kd_cli_run_training(cfg, &a, 1, "distill");
  kd_config_free(cfg);
  kd_dist_finalize();
  return rc;
}
