/* An inspect session's config (cli_inspect.c). */
#ifndef KD_APP_INSPECT_H
#define KD_APP_INSPECT_H

#include <stddef.h>

#include "cli_common.h"

/* DIR's model: kdscope import's output (config.json + model.safetensors)
 * or a run directory (config.json + its latest checkpoint). Absolute paths
 * into config and ckpt (len each); -1 with err naming DIR. */
int kd_cli_model_source(const char *dir, char *config, char *ckpt, size_t len, KdError *err);
/* The base config (--config, else configs/distill.json: methods and their
 * settings), then the student's architecture, anchors, detection-loss,
 * evaluation and image-size settings from its own config (its data.dir too
 * when --data is absent), its weights as train.init_checkpoint, the
 * teacher's config and weights (when teacher is NULL: the base config's
 * teacher), then --data and --set. NULL with the message printed. */
KdConfig *kd_cli_inspect_config(const KdTrainArgs *a, const char *teacher, const char *student, const char *verb);

#endif
