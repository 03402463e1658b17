/* kdscope import: a torchvision detector (safetensors from
 * tools/export_torchvision.py) into a kdscope config + checkpoint. The
 * work is engine/model/tv_import.c; here the options, the classes to keep
 * and the config file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "data/dataset.h"
#include "model/safetensors.h"
#include "model/tv_import.h"
#include "train/session.h"
#include "train/settings.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope import --in MODEL.safetensors --out DIR [--arch NAME] [--classes DATA_DIR|FILE.json|IDS.txt]\n"
    "                      [--set key=value]...\n\n"
    "Turns a torchvision detector's weights (written by tools/export_torchvision.py\n"
    "from a .pth or a torchvision model) into DIR/config.json + DIR/model.safetensors,\n"
    "which kdscope eval --config/--checkpoint, distill --set teacher.config=...\n"
    "--set teacher.checkpoint=... and the window take.\n\n"
    "The architecture comes from the tensors' names and shapes: ResNet depth\n"
    "(10/18/34 basic, 50/101 bottleneck) and width, FPN channels and levels,\n"
    "P6/P7 from P5 or C5 or the max-pool P6, the head (RetinaNet towers with\n"
    "or without GroupNorm; Faster R-CNN's RPN and box head). --arch NAME must\n"
    "then agree: one of retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2,\n"
    "fasterrcnn_resnet50_fpn. Older torchvision names are renamed,\n"
    "num_batches_tracked dropped; a backbone without them (FrozenBatchNorm2d)\n"
    "gets model.bn=frozen, else eval.\n\n"
    "--classes keeps only some of the checkpoint's classes, by torchvision label\n"
    "(= COCO category id): a COCO-layout data dir (annotations/instances_val.json,\n"
    "which also becomes data.dir), a COCO json's categories, or a text file of\n"
    "ids, one a line. Without it every class is kept (torchvision COCO models:\n"
    "91, the unused ids included).\n\n"
    "The config evaluates as torchvision does: its score threshold, NMS and\n"
    "detections per image, the ImageNet normalisation and its resize\n"
    "(data.resize=torchvision: short side to data.min_size=800 unless the long\n"
    "side passes data.max_size=1333, bilinear, top-left) into a data.size=1344\n"
    "square; smaller and faster: --set data.min_size=512 --set data.max_size=512\n"
    "--set data.size=512.\n";

/* COCO category ids to keep, from a data dir, a json or a list of ids. */
static int read_classes(const char *arg, int **ids, int *n, char *data_dir, size_t len, KdError *err) {
  struct stat sb;
  *n = 0, *ids = NULL, data_dir[0] = 0;
  if (stat(arg, &sb)) return kd_error(err, "--classes %s: no such file or directory", arg);
  size_t al = strlen(arg);
  KdDataset *ds = NULL;
  if (S_ISDIR(sb.st_mode)) {
    if (kd_dataset_open_eval(arg, "val", &ds, err)) return kd_error_prefix(err, "--classes %s: ", arg);
    if (!realpath(arg, data_dir)) snprintf(data_dir, len, "%s", arg);
  } else if (al > 5 && !strcmp(arg + al - 5, ".json")) {
    if (kd_dataset_open(arg, NULL, &ds, err)) return kd_error_prefix(err, "--classes %s: ", arg);
  }
  if (ds) {
    *n = kd_dataset_num_classes(ds);
    *ids = malloc(sizeof **ids * (size_t)(*n ? *n : 1));
    for (int i = 0; *ids && i < *n; i++) (*ids)[i] = (int)kd_dataset_class_coco_id(ds, i);
    kd_dataset_free(ds);
    return *ids ? 0 : kd_error(err, "out of memory");
  }
  FILE *f = fopen(arg, "r");
  if (!f) return kd_error(err, "--classes %s: cannot read it", arg);
  char line[256];
  int cap = 0, ln = 0;
  while (fgets(line, sizeof line, f)) {
    ln++;
    char *p = line, *end;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '#' || *p == '\n' || !*p) continue;
    long v = strtol(p, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (end == p || *end || v < 0 || v > 100000) {
      fclose(f);
      free(*ids);
      return kd_error(err, "--classes %s:%d: expected one category id (an integer) per line", arg, ln);
    }
    if (*n == cap) {
      cap = cap ? 2 * cap : 64;
      int *q = realloc(*ids, sizeof *q * (size_t)cap);
      if (!q) return fclose(f), free(*ids), kd_error(err, "out of memory");
      *ids = q;
    }
    (*ids)[(*n)++] = (int)v;
  }
  fclose(f);
  return *n ? 0 : kd_error(err, "--classes %s: no category ids in it", arg);
}

/* A path inside a JSON string: quotes, backslashes and controls escaped. */
static const char *json_str(const char *s, char *buf, size_t len) {
  size_t o = 0;
  for (; *s && o + 7 < len; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') buf[o++] = '\\', buf[o++] = (char)ch;
    else if (ch < 0x20) o += (size_t)snprintf(buf + o, len - o, "\\u%04x", ch);
    else buf[o++] = (char)ch;
  }
  buf[o] = 0;
  return buf;
}

/* The config: the architecture, torchvision's evaluation settings. */
static char *config_json(const KdTvArch *a, const char *src_path, int nclasses, const char *data_path) {
  char src[2048], data_dir[8192];
  json_str(src_path, src, sizeof src);
  json_str(data_path, data_dir, sizeof data_dir);
  const KdModelCfg *m = &a->model;
  static const char *const bn[] = {"train", "eval", "frozen"}, *const ex[] = {"p5", "c5", "pool"};
  int retina = !strcmp(m->head.kind, "retinanet");
  size_t cap = 16384;
  char *s = malloc(cap);
  if (!s) return NULL;
  int o = snprintf(s, cap,
                   "{\n  \"_comment\": \"kdscope import of %s (%s%s): torchvision's architecture and evaluation settings\",\n"
                   "  \"name\": \"%s\",\n"
                   "  \"model\": {\"head\": \"%s\", \"depth\": %d, \"width\": %d, \"bn\": \"%s\", \"fpn_channels\": %d,\n"
                   "            \"fpn_first_level\": %d, \"extra_levels\": %d, \"extra_from\": \"%s\", \"num_classes\": %d",
                   src, a->name, a->known ? "" : ", a custom build", a->name, m->head.kind, m->backbone.depth, m->backbone.width,
                   bn[m->backbone.bn], m->neck.channels, m->neck.first_level, m->neck.extra_levels, ex[m->neck.extra], nclasses);
  if (retina)
    o += snprintf(s + o, cap - (size_t)o, ",\n            \"head_convs\": %d, \"head_norm\": \"%s\"},\n", m->head.convs,
                  m->head.gn ? "gn" : "none");
  else
    o += snprintf(s + o, cap - (size_t)o,
                  "},\n  \"rpn\": {\"conv_depth\": %d},\n"
                  "  \"roi\": {\"box_head\": \"%s\", \"representation\": %d, \"conv_channels\": %d, \"conv_gn\": %s},\n",
                  m->head.rpn.conv_depth, m->head.roi.box_head, m->head.roi.representation, m->head.roi.conv_channels,
                  m->head.roi.conv_gn ? "true" : "false");
  /* torchvision: RetinaNet score 0.05, 1000 per level, NMS 0.5, 300 per image; Faster R-CNN 0.05, 0.5, 100 */
  o += snprintf(s + o, cap - (size_t)o,
                "  \"eval\": {\"score_thresh\": 0.05, \"nms_iou\": 0.5, \"topk\": 1000, \"max_dets\": %d},\n"
                "  \"_batch\": \"evaluation batches are train.batch images of data.size squared: 1 keeps 1344 px in memory\",\n"
                "  \"train\": {\"batch\": 1},\n"
                "  \"data\": {\"resize\": \"torchvision\", \"min_size\": 800, \"max_size\": 1333, \"size\": 1344%s%s%s}\n}\n",
                retina ? 300 : 100, *data_dir ? ", \"dir\": \"" : "", data_dir, *data_dir ? "\"" : "");
  return s;
}

static int write_text(const char path[4200], const char *text, KdError *err) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return kd_error(err, "%s: cannot write", tmp);
  int bad = fputs(text, f) < 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path)) return kd_error(err, "%s: cannot write", path);
  return 0;
}

int kd_cli_import(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *arch = NULL, *classes = NULL, *sets[64];
  int nsets = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(o, "--in") && has) in = argv[++i];
    else if (!strcmp(o, "--out") && has) out = argv[++i];
    else if (!strcmp(o, "--arch") && has) arch = argv[++i];
    else if (!strcmp(o, "--classes") && has) classes = argv[++i];
    else if (!strcmp(o, "--set") && has && nsets < 64) sets[nsets++] = argv[++i];
    else {
      fprintf(stderr, "kdscope import: unknown or incomplete option '%s' (see --help)\n", o);
      return 1;
    }
  }
  if (!in || !out) {
    fprintf(stderr, "kdscope import: --in and --out are required (see --help)\n");
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  KdError err;
  KdTvArch a;
  KdModel *m = NULL;
  KdConfig *cfg = NULL;
  int *ids = NULL, nids = 0, rc = 1;
  char data_dir[4096] = "", path[4200], *json = NULL;
  KdTvImport *t = kd_tv_open(in, &err);
  if (!t || kd_tv_infer(t, &a, &err) || (arch && kd_tv_check_arch(&a, arch, &err))) goto fail;
  if (classes && read_classes(classes, &ids, &nids, data_dir, sizeof data_dir, &err)) goto fail;
  KdModelCfg mc = a.model;
  mc.head.num_classes = ids ? nids : a.file_classes;
  if (mkdir(out, 0777) && access(out, W_OK)) {
    kd_error(&err, "--out %s: cannot create the directory", out);
    goto fail;
  }
  /* The config goes through the settings as eval reads it: a value out of
   * range fails here, not at the first eval. */
  json = config_json(&a, in, mc.head.num_classes, data_dir);
  snprintf(path, sizeof path, "%s/config.json", out);
  if (!json || write_text(path, json, &err)) goto fail;
  cfg = kd_config_new();
  if (!cfg || kd_settings_register_all(cfg) || kd_config_load_file(cfg, path, &err)) goto fail;
  for (int i = 0; i < nsets; i++)
    if (kd_config_set_kv(cfg, sets[i], &err)) goto fail;
  if (nsets && kd_config_save(cfg, path, &err)) goto fail;
  if (kd_settings_model(cfg, &mc, &err)) goto fail;
  m = kd_model_new(&mc, 0, &err);
  if (!m || kd_tv_load(t, &a, ids, ids ? nids : 0, kd_model_params(m), &err)) goto fail;
  snprintf(path, sizeof path, "%s/model.safetensors", out);
  const char *meta[] = {"format", "kdscope-1", "imported_from", in, "arch", a.name, NULL};
  if (kd_safetensors_save(path, kd_model_params(m), meta, &err)) goto fail;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%s: %s (ResNet-%d width %d, FPN %d, %s%s), %d classes%s; %d tensors renamed, %d num_batches_tracked dropped, BN %s\n"
         "wrote %s/config.json and %s/model.safetensors in %.2f s\n",
         in, a.name, mc.backbone.depth, mc.backbone.width, mc.neck.channels, mc.head.kind, mc.head.gn ? " GN" : "",
         mc.head.num_classes, ids ? " kept" : "", a.renamed, a.dropped, a.frozen_bn ? "frozen" : "eval (running statistics)", out,
         out, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "kdscope import: %s\n", err.msg);
out:
  free(json);
  free(ids);
  kd_config_free(cfg);
  kd_model_free(m);
  kd_tv_close(t);
  return rc;
}
