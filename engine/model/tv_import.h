/* Importing a torchvision detector's state_dict (a safetensors file, as
 * tools/export_torchvision.py writes it): the architecture inferred from
 * the tensors' names and shapes, then the tensors into a kdscope model of
 * that architecture. Our parameter names are torchvision's (MODEL.md), so
 * the load is by name after three normalisations:
 *   - names of older torchvision versions renamed (FPN `inner_blocks.i.w`
 *     -> `inner_blocks.i.0.w`, RetinaNet head `conv.2i.w` -> `conv.i.0.w`,
 *     RPN `rpn.head.conv.w` -> `rpn.head.conv.0.0.w`) and a DataParallel
 *     `module.` prefix dropped;
 *   - `num_batches_tracked` dropped (our BN has no counter);
 *   - optionally the class rows sliced to a subset of the file's classes
 *     (COCO's 91 down to a data set's): RetinaNet logit rows a*K0+id for
 *     every anchor a, Faster R-CNN predictor rows 0 (background) and id.
 * A backbone without `num_batches_tracked` was FrozenBatchNorm2d (what
 * torchvision builds around pretrained weights): it becomes model.bn =
 * frozen; with them, model.bn = eval (running statistics). */
#ifndef KD_TV_IMPORT_H
#define KD_TV_IMPORT_H

#include "core/error.h"
#include "core/params.h"
#include "model/detector.h"
#include "model/safetensors.h"

#define KD_TV_MAX_TENSORS 4096

typedef struct KdTvArch {
  char name[64];     /* "retinanet_resnet50_fpn", ... or a description of a custom build */
  int known;         /* name is a torchvision builder's */
  KdModelCfg model;  /* the architecture, num_classes as the file holds it */
  int file_classes;  /* K0: RetinaNet logits per anchor; Faster R-CNN classes without background */
  int frozen_bn;     /* no num_batches_tracked in the backbone */
  int renamed;       /* tensors renamed from older torchvision names */
  int dropped;       /* num_batches_tracked tensors dropped */
} KdTvArch;

typedef struct KdTvImport KdTvImport;

/* Opens and validates the file (a truncated or corrupt one is an error
 * naming it) and normalises its names. */
KdTvImport *kd_tv_open(const char *path, KdError *err);
void kd_tv_close(KdTvImport *t);
/* The "arch" its exporter wrote into __metadata__, or "". */
const char *kd_tv_meta_arch(const KdTvImport *t);
/* Infers the architecture; an error names the tensor that decided (a
 * classification checkpoint, a missing or odd-shaped tensor). */
int kd_tv_infer(KdTvImport *t, KdTvArch *out, KdError *err);
/* want (a torchvision builder name) must be the inferred architecture. */
int kd_tv_check_arch(const KdTvArch *a, const char *want, KdError *err);
/* Fills every tensor of p (a model built from a->model with num_classes =
 * nkeep, or the file's count when keep is NULL) from the file. keep: class
 * indices of the file to keep, in order (RetinaNet 0..K0-1, Faster R-CNN
 * 1..K0, torchvision's label = COCO category id). Every problem (a tensor
 * missing, of another shape, unused by the model) names the tensor. */
int kd_tv_load(KdTvImport *t, const KdTvArch *a, const int *keep, int nkeep, KdParams *p, KdError *err);
/* The torchvision builders kdscope imports, comma-separated (for help). */
const char *kd_tv_known_archs(void);

#endif
