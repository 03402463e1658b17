/* kdscope eval: the twelve COCO numbers of a checkpoint on a data split,
 * optionally with the detections in COCO results format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/cocoresults.h"
#include "progress.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/evaluate.h"
#include "train/session.h"
#include "train/settings.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope eval --config FILE --checkpoint CKPT [--data DIR] [--split val]\n"
    "                    [--set key=value]... [--dets-out FILE] [--json] [--max-images N] [--strict]\n\n"
    "Evaluates a detector with the COCO definitions (AP@[.5:.95], AP50, AP75,\n"
    "APs/m/l, AR@1/10/100, ARs/m/l) on the first N images of the split (all\n"
    "by default). --dets-out writes the detections in the COCO results format\n"
    "(original image ids, category ids and pixels). --json prints the metrics\n"
    "as one JSON object, with images, images_evaluated, images_left_out and\n"
    "left_out (file, image_id and reason of each).\n\n"
    "An image that cannot be read or decoded (corrupt, missing) is left out:\n"
    "stderr names it and why, and it counts with no detections, so its ground\n"
    "truth lowers recall and AP. --strict makes any left-out image an error.\n"
    "Without --data the default fashion-det set is used (built on first use,\n"
    "after the config and checkpoint are checked).\n\n"
    "Under mpirun (-np N) each rank evaluates every N-th batch and rank 0\n"
    "gathers the detections and prints: the same numbers as one process.\n";

/* Names every left-out image on stderr; with strict, they are an error. */
static int report_left_out(const KdDataset *ds, const KdEvalResult *res, int strict, KdError *err) {
  if (!res->left_out) return 0;
  fprintf(stderr, "kdscope eval: %d of %d images could not be used; each counts with no detections:\n", res->left_out, res->images);
  char first[4096] = "";
  for (int i = 0; i < res->left_out; i++) {
    char path[4096];
    if (kd_dataset_image_path(ds, res->left[i].index, path, sizeof path))
      snprintf(path, sizeof path, "%s", kd_dataset_image(ds, res->left[i].index).file_name);
    fprintf(stderr, "  %s: %s\n", path, res->left[i].reason);
    if (!i) snprintf(first, sizeof first, "%s", path);
  }
  if (!strict) return 0;
  if (res->left_out > 1)
    return kd_error(err, "--strict: %s could not be used: %s (and %d more, listed above)", first, res->left[0].reason, res->left_out - 1);
  return kd_error(err, "--strict: %s could not be used: %s", first, res->left[0].reason);
}

int kd_cli_eval(int argc, char **argv) {
  const char *config = NULL, *ckpt = NULL, *data = NULL, *split = "val", *dets_out = NULL, *sets[64];
  int nsets = 0, json = 0, max_images = 0, strict = 0;
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
    else if (!strcmp(o, "--strict")) strict = 1;
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
  if (kd_dist_init(&err)) {
    fprintf(stderr, "kdscope eval: %s\n", err.msg);
    return 1;
  }
  int rank0 = kd_dist_rank() == 0;
  KdConfig *cfg = kd_config_new();
  KdModel *m = NULL;
  KdDataset *ds = NULL;
  KdProgress *prog = kd_progress_new(stderr, json || !rank0);
  KdEvalResult res = {0};
  int rc = 1;
  if (!cfg || kd_settings_register_all(cfg) || kd_config_load_file(cfg, config, &err)) goto fail;
  for (int i = 0; i < nsets; i++)
    if (kd_config_set_kv(cfg, sets[i], &err)) goto fail;
  KdModelCfg mc;
  if (kd_settings_model(cfg, &mc, &err)) goto fail;
  m = kd_model_new(&mc, 0, &err);
  KdParams *store = m ? kd_model_params(m) : NULL;
  if (!m || kd_checkpoint_load(ckpt, &store, 1, 0, &err) || kd_evaluate_check(cfg, &err)) goto fail;
  char dir[4096];
  if (!data) data = *kd_config_str(cfg, "data.dir") ? kd_config_str(cfg, "data.dir") : NULL;
  if (kd_cli_resolve_data(data, dir, sizeof dir)) {
    rc = 1;
    goto out;
  }
  int bad = kd_dataset_open_eval(dir, split, &ds, &err);
  if (!bad && kd_dataset_num_classes(ds) != mc.head.num_classes)
    bad = kd_error(&err, "the model has %d classes, %s has %d", mc.head.num_classes, kd_dataset_json_path(ds), kd_dataset_num_classes(ds));
  /* The ranks of a sharded evaluation go on together or not at all. */
  if (kd_dist_agree(bad, &err)) goto fail;
  if (kd_evaluate(m, cfg, ds, max_images, dets_out != NULL, kd_progress_fn, prog, &res, &err)) goto fail;
  kd_progress_done(prog);
  if (!rank0) {
    rc = 0;
    goto out;
  }
  if (report_left_out(ds, &res, strict, &err)) goto fail;
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
    char *left = kd_eval_left_out_json(ds, &res, 0, NULL);
    if (!left) {
      kd_error(&err, "out of memory");
      goto fail;
    }
    printf(", \"images\": %d, \"images_evaluated\": %d, \"images_left_out\": %d, \"left_out\": %s, \"detections\": %d}\n",
           res.images, res.evaluated, res.left_out, left, res.ndets);
    free(left);
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
    if (res.left_out)
      printf("(%d images: %d evaluated, %d left out; %d detections, %.1f s)\n", res.images, res.evaluated, res.left_out, res.ndets,
             res.seconds);
    else
      printf("(%d images, %d detections, %.1f s)\n", res.images, res.ndets, res.seconds);
  }
  rc = 0;
fail:
  if (rc && kd_dist_size() > 1) fprintf(stderr, "kdscope eval: rank %d: %s\n", kd_dist_rank(), err.msg);
  else if (rc) fprintf(stderr, "kdscope eval: %s\n", err.msg);
out:
  kd_eval_result_free(&res);
  kd_dataset_free(ds);
  kd_model_free(m);
  kd_config_free(cfg);
  kd_progress_free(prog);
  kd_dist_finalize();
  return rc;
}
