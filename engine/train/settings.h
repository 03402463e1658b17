/* The descriptor tables for the detector, data and training settings, and
 * conversions from a loaded KdConfig to the structs the engine uses.
 * Distillation methods declare their own tables in engine/distill/. */
#ifndef KD_SETTINGS_H
#define KD_SETTINGS_H

#include "core/config.h"
#include "data/transform.h"
#include "detect/postprocess.h"
#include "model/detector.h"
#include "train/optim.h"

/* Registers model.*, anchor.*, data.*, train.*, loss.*, eval.* settings. */
int kd_settings_register(KdConfig *c);
/* Same tables for the teacher: "teacher.model.*" keys are not used; the
 * teacher has its own config file (teacher.config) and checkpoint. */
int kd_settings_model(const KdConfig *c, KdModelCfg *m, KdError *err);
int kd_settings_optim(const KdConfig *c, KdOptimCfg *o, KdError *err);
/* The detection losses' settings (loss.*), read at every step. */
void kd_settings_det_loss(const KdConfig *c, KdDetLossCfg *l);
int kd_settings_post(const KdConfig *c, KdPostCfg *p, KdError *err);
/* Image pipeline (augment fields from data.*). */
int kd_settings_image(const KdConfig *c, KdImageCfg *img, KdError *err);

#endif
