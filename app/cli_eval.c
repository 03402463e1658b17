/* kdscope eval: the twelve COCO numbers of a checkpoint on a data split,
 * optionally with the detections in COCO results format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/cocoresults.h"
#include "progress.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/session.h"
#include "train/settings.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope eval --config FILE --checkpoint CKPT [--data DIR] [--split val]\n"
    "                    [--set key=value]... [--dets-out FILE] [--json] [--max-images N]\n\n"
    "Evaluates a detector with the COCO definitions (AP@[.5:.95], AP50, AP75,\n"
    "APs/m/l, AR@1/10/100, ARs/m/l). --dets-out writes the detections in the\n"
    "COCO results format (original image ids, category ids and pixels).\n"
    "--json prints the metrics as one JSON object.\n";

int kd_cli_eval(int argc, char **argv) {
  const char *config = NULL, *ckpt = NULL, *data = NULL, *split = "val", *dets_out = NULL, *sets[64];
  int nsets = 0, json = 0, max_images = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(o, "--config") && has) config = argv[++i];
    else if (!strcmp(o, "--checkpoint") && has) ckpt = argv[++i];
    else if (!strcmp(o, "--data") && has) data = argv[++i];
    else if (!strcmp(o, "--split") && has) split = argv[++i];
    else if (!strcmp(o, "--dets-out") && has) dets_out = argv[++i];
    else if (!strcmp(o, "--max-images") && has) max_images = atoi(argv[++i]);
    else if (!strcmp(o, "--json")) json = 1;
    else if (!strcmp(o, "--set") && has && nsets < 64) sets[nsets++] = argv[++i];
    else {
      fprintf(stderr, "kdscope eval: unknown or incomplete option '%s' (see --help)\n", o);
      return 1;
    }
  }
  if (!config || !ckpt) {
    fprintf(stderr, "kdscope eval: --config and --checkpoint are required (see --help)\n");
    return 1;
  }
  KdError err;
  KdConfig *cfg = kd_config_new();
  KdModel *m = NULL;
  KdDataset *ds = NULL;
  KdProgress *prog = kd_progress_new(stderr, json);
  KdEvalResult res = {0};
  int rc = 1;
  if (!cfg || kd_settings_register_all(cfg) || kd_config_load_file(cfg, config, &err)) goto fail;
  for (int i = 0; i < nsets; i++)
    if (kd_config_set_kv(cfg, sets[i], &err)) goto fail;
  KdModelCfg mc;
  if (kd_settings_model(cfg, &mc, &err)) goto fail;
  m = kd_model_new(&mc, 0, &err);
  KdParams *store = m ? kd_model_params(m) : NULL;
  if (!m || kd_checkpoint_load(ckpt, &store, 1, 0, &err)) goto fail;
  char dir[4096];
  if (!data) data = *kd_config_str(cfg, "data.dir") ? kd_config_str(cfg, "data.dir") : NULL;
  if (kd_cli_resolve_data(data, dir, sizeof dir)) {
    rc = 1;
    goto out;
  }
  if (kd_dataset_open_dir(dir, split, &ds, &err)) goto fail;
  if (kd_dataset_num_classes(ds) != mc.head.num_classes) {
    kd_error(&err, "the model has %d classes, %s has %d", mc.head.num_classes, kd_dataset_json_path(ds), kd_dataset_num_classes(ds));
    goto fail;
  }
  if (kd_evaluate(m, cfg, ds, max_images, dets_out != NULL, kd_progress_fn, prog, &res, &err)) goto fail;
  kd_progress_done(prog);
  if (dets_out) {
    int k = kd_dataset_num_classes(ds);
    int *ids = malloc(sizeof *ids * (size_t)k);
    for (int i = 0; ids && i < k; i++) ids[i] = (int)kd_dataset_class_coco_id(ds, i);
    int wrc = ids ? kd_coco_write_results(dets_out, res.dets, res.ndets, ids, k, &err) : kd_error(&err, "out of memory");
    free(ids);
    if (wrc) goto fail;
  }
  if (json) {
    printf("{");
    for (int i = 0; i < KD_COCO_NSTATS; i++) printf("%s\"%s\": %.6f", i ? ", " : "", kd_coco_stat_names[i], res.stats[i]);
    printf(", \"images\": %d, \"detections\": %d}\n", res.images, res.ndets);
  } else {
    static const char *rows[12] = {
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]"};
    for (int i = 0; i < KD_COCO_NSTATS; i++) printf(" %s = %.3f\n", rows[i], res.stats[i]);
    printf("(%d images, %d detections, %.1f s)\n", res.images, res.ndets, res.seconds);
  }
  rc = 0;
fail:
  if (rc) fprintf(stderr, "kdscope eval: %s\n", err.msg);
out:
  free(res.dets);
  kd_dataset_free(ds);
  kd_model_free(m);
  kd_config_free(cfg);
  kd_progress_free(prog);
  return rc;
}
