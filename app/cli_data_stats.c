/* kdscope data-stats: the box-size distribution of a COCO set per COCO
 * area range and per side, and which FPN level and anchor size fits each
 * size best, for the model's anchors and a sweep of anchor sizes.
 * `kdscope make-dataset` prints the same for the set it builds. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "model/boxstats.h"
#include "train/session.h"
#include "train/settings.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope data-stats [--data DIR] [--split train] [--config FILE] [--set key=value]... [--json]\n\n"
    "How the boxes of a COCO set (DIR/annotations/instances_<split>.json) look\n"
    "to the detector: sqrt(w*h) in network-input pixels (after data.size and\n"
    "data.resize, as training sees them) per COCO area range (the json's area,\n"
    "as the COCO evaluation bins it) and per side; for each, the FPN level of\n"
    "the best anchor, its mean IoU and the share of boxes whose best anchor\n"
    "reaches the positive IoU (anchor assignment: below it a box is matched\n"
    "only as a low-quality match). Then the same for anchor.size_mult from 1\n"
    "to 8. Anchors and levels come from the config (default: the student\n"
    "preset); without --data the default fashion-det set is used.\n";

static const float sweep[] = {1, 1.5f, 2, 3, 4, 6, 8};
#define NSWEEP ((int)(sizeof sweep / sizeof sweep[0]))

static const char *const area_names[4] = {"all", "small", "medium", "large"};

static void print_levels(const KdBoxGroup *g, const KdAnchorCfg *a) {
  for (int l = 0; l < a->nlevels; l++) printf(" %5.1f%%", g->boxes ? 100.0 * (double)g->level[l] / (double)g->boxes : 0.0);
}

static void print_group(const char *name, const KdBoxGroup *g, long total, const KdAnchorCfg *a) {
  printf("  %-16s %7ld %6.1f%% ", name, g->boxes, total ? 100.0 * (double)g->boxes / (double)total : 0.0);
  print_levels(g, a);
  double n = g->boxes ? (double)g->boxes : 1;
  printf("   %5.3f   %5.1f%%   %5.1f\n", g->best_iou_sum / n, 100.0 * (double)g->positive / n, g->pos_anchors_sum / n);
}

static void print_header(const char *first, const KdAnchorCfg *a) {
  printf("  %-16s %7s %7s ", first, "boxes", "share");
  for (int l = 0; l < a->nlevels; l++) printf("  on P%d", __builtin_ctz((unsigned)a->strides[l]));
  printf("  best IoU  >=pos  pos/box\n");
}

static cJSON *group_json(const KdBoxGroup *g, const KdAnchorCfg *a) {
  cJSON *o = cJSON_CreateObject();
  double n = g->boxes ? (double)g->boxes : 1;
  cJSON_AddNumberToObject(o, "boxes", (double)g->boxes);
  cJSON *lv = cJSON_AddObjectToObject(o, "best_level_share");
  for (int l = 0; l < a->nlevels; l++) {
    char k[8];
    snprintf(k, sizeof k, "P%d", __builtin_ctz((unsigned)a->strides[l]));
    cJSON_AddNumberToObject(lv, k, (double)g->level[l] / n);
  }
  cJSON_AddNumberToObject(o, "mean_best_iou", g->best_iou_sum / n);
  cJSON_AddNumberToObject(o, "positive_share", (double)g->positive / n);
  cJSON_AddNumberToObject(o, "positive_anchors_per_box", g->pos_anchors_sum / n);
  return o;
}

static void bin_name(int b, char *s, size_t len) {
  if (b == 0) snprintf(s, len, "< %g px", kd_box_bin_edges[0]);
  else if (b == KD_BOXSTATS_BINS - 1) snprintf(s, len, ">= %g px", kd_box_bin_edges[b - 1]);
  else snprintf(s, len, "%g-%g px", kd_box_bin_edges[b - 1], kd_box_bin_edges[b]);
}

int kd_cli_print_box_stats(const char *dir, const char *split, const KdConfig *cfg, int json) {
  KdError err;
  KdDataset *ds = NULL;
  KdModel *m = NULL;
  KdModelCfg mc;
  KdImageCfg img;
  KdBoxStats st[NSWEEP + 1];
  int rc = 1;
  if (kd_settings_model(cfg, &mc, &err) || kd_settings_image(cfg, &img, &err)) goto fail;
  if (!(m = kd_model_new(&mc, 0, &err))) goto fail;
  if (kd_dataset_open_dir(dir, split, &ds, &err)) goto fail;
  /* The head's own anchors (the RPN's for Faster R-CNN); the sweep sets
   * size_mult x stride on every level. */
  KdAnchorCfg a[NSWEEP + 1];
  KdHeadInfo hi;
  kd_model_head_info(m, &hi);
  const float pos_iou = hi.pos_iou;
  for (int k = 0; k <= NSWEEP; k++) {
    a[k] = *hi.anchors;
    if (k > 0) a[k].size_mult = sweep[k - 1], memset(a[k].level_size, 0, sizeof a[k].level_size);
    if (kd_box_stats(ds, &img, &a[k], pos_iou, &st[k], &err)) goto fail;
  }
  const int per_level = a[0].level_size[0] > 0;
  const KdBoxStats *s = &st[0];
  long total = s->area[0].boxes;
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "annotations", kd_dataset_json_path(ds));
    cJSON_AddNumberToObject(o, "images", (double)s->images);
    cJSON_AddNumberToObject(o, "boxes", (double)total);
    cJSON_AddNumberToObject(o, "crowd_left_out", (double)s->crowd);
    cJSON_AddNumberToObject(o, "input_w", s->in_w), cJSON_AddNumberToObject(o, "input_h", s->in_h);
    cJSON *q = cJSON_AddObjectToObject(o, "side_px");
    static const char *const qn[5] = {"min", "p10", "p50", "p90", "max"};
    for (int i = 0; i < 5; i++) cJSON_AddNumberToObject(q, qn[i], s->side_q[i]);
    if (!per_level) cJSON_AddNumberToObject(o, "anchor_size_mult", a[0].size_mult);
    cJSON *sz = cJSON_AddArrayToObject(o, "anchor_sizes");
    for (int l = 0; l < a[0].nlevels; l++) cJSON_AddItemToArray(sz, cJSON_CreateNumber(kd_anchor_base_size(&a[0], l)));
    cJSON_AddNumberToObject(o, "pos_iou", pos_iou);
    cJSON *ar = cJSON_AddObjectToObject(o, "by_area");
    for (int r = 0; r < 4; r++) cJSON_AddItemToObject(ar, area_names[r], group_json(&s->area[r], &a[0]));
    cJSON *bins = cJSON_AddArrayToObject(o, "by_side");
    for (int b = 0; b < KD_BOXSTATS_BINS; b++) {
      cJSON *g = group_json(&s->bin[b], &a[0]);
      char nm[32];
      bin_name(b, nm, sizeof nm);
      cJSON_AddStringToObject(g, "side", nm);
      cJSON_AddItemToArray(bins, g);
    }
    cJSON *sw = cJSON_AddArrayToObject(o, "anchor_size_sweep");
    for (int k = 1; k <= NSWEEP; k++) {
      cJSON *g = group_json(&st[k].area[0], &a[k]);
      cJSON_AddNumberToObject(g, "size_mult", sweep[k - 1]);
      cJSON_AddItemToArray(sw, g);
    }
    char *text = cJSON_PrintUnformatted(o);
    if (text) puts(text);
    free(text);
    cJSON_Delete(o);
  } else {
    printf("%s: %ld images, %ld boxes (%ld crowd left out), network input %dx%d\n", kd_dataset_json_path(ds), s->images, total,
           s->crowd, s->in_w, s->in_h);
    printf("box side sqrt(w*h) in input px: min %.1f, p10 %.1f, median %.1f, p90 %.1f, max %.1f\n", s->side_q[0], s->side_q[1],
           s->side_q[2], s->side_q[3], s->side_q[4]);
    if (per_level) printf("anchors: %s sizes on", kd_model_head_kind(m)->label);
    else printf("anchors: %.3g x stride on", a[0].size_mult);
    for (int l = 0; l < a[0].nlevels; l++) printf(" P%d %.0f px", __builtin_ctz((unsigned)a[0].strides[l]), kd_anchor_base_size(&a[0], l));
    printf(" (x %d scales, %d ratios); 'on Pk': boxes whose best anchor is there; '>=pos': best IoU >= %.2g\n",
           a[0].nscales, a[0].nratios, pos_iou);
    printf("\nby COCO area range (the json's area):\n");
    print_header("range", &a[0]);
    static const char *const labels[4] = {"all", "small <32^2", "medium 32-96^2", "large >=96^2"};
    for (int r = 0; r < 4; r++) print_group(labels[r], &s->area[r], total, &a[0]);
    printf("\nby box side sqrt(w*h), input px:\n");
    print_header("side", &a[0]);
    for (int b = 0; b < KD_BOXSTATS_BINS; b++) {
      char nm[32];
      bin_name(b, nm, sizeof nm);
      print_group(nm, &s->bin[b], total, &a[0]);
    }
    printf("\nanchor size sweep (anchor.size_mult; every box, the same levels):\n");
    printf("  %-16s %7s %7s ", "size_mult", "", "");
    for (int l = 0; l < a[0].nlevels; l++) printf("  on P%d", __builtin_ctz((unsigned)a[0].strides[l]));
    printf("  best IoU  >=pos  pos/box\n");
    for (int k = 1; k <= NSWEEP; k++) {
      char nm[32];
      snprintf(nm, sizeof nm, "%g%s", sweep[k - 1], !per_level && sweep[k - 1] == a[0].size_mult ? " (config)" : "");
      print_group(nm, &st[k].area[0], total, &a[k]);
    }
  }
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "kdscope data-stats: %s\n", err.msg);
out:
  kd_dataset_free(ds);
  kd_model_free(m);
  return rc;
}

int kd_cli_data_stats(int argc, char **argv) {
  KdTrainArgs ta = {.steps = -1};
  const char *split = "train";
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(o, "--data") && has) ta.data = argv[++i];
    else if (!strcmp(o, "--split") && has) split = argv[++i];
    else if (!strcmp(o, "--config") && has) ta.config = argv[++i];
    else if (!strcmp(o, "--set") && has && ta.nsets < 64) ta.sets[ta.nsets++] = argv[++i];
    else if (!strcmp(o, "--json")) json = 1;
    else {
      fprintf(stderr, "kdscope data-stats: unknown or incomplete option '%s' (see --help)\n", o);
      return 1;
    }
  }
  KdConfig *cfg = kd_cli_load_config(&ta, "configs/student.json", 0, "data-stats");
  if (!cfg) return 1;
  char dir[4096];
  const char *data = ta.data ? ta.data : *kd_config_str(cfg, "data.dir") ? kd_config_str(cfg, "data.dir") : NULL;
  int rc = kd_cli_resolve_data(data, dir, sizeof dir) ? 1 : kd_cli_print_box_stats(dir, split, cfg, json);
  kd_config_free(cfg);
  return rc;
}
