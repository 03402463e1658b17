/* The prober on a tiny two-stage pair (Faster R-CNN teacher and student,
 * FitNet): the RPN's top proposals, its objectness per level and the RoI
 * head's features of the GT boxes are in the snapshot with the right
 * shapes, and equal an independent recomputation from each model's own
 * evaluation forward on the evaluation loader's images: objectness as the
 * max over anchors of the sigmoid of the RPN's logits, proposals as that
 * forward's best, RoI features through the RoI hook projected on the
 * snapshot's basis. A RetinaNet pair gets none of these fields. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "data/loader.h"
#include "fixture.h"
#include "probe/prober.h"
#include "train/settings.h"

#define NPROBE 4
#define NPROPS 20 /* the top proposals a snapshot keeps (docs/SNAPSHOTS.md) */

static FxModels M;

static const char *const frcnn_keys[][2] = {
    {"model.head", "faster_rcnn"},   {"model.fpn_first_level", "2"},  {"model.extra_levels", "1"},
    {"model.extra_from", "pool"},    {"rpn.anchor_sizes", "8,16,32,64,128"}, {"rpn.pre_nms_top_n_train", "200"},
    {"rpn.post_nms_top_n_train", "100"}, {"rpn.pre_nms_top_n_test", "100"}, {"rpn.post_nms_top_n_test", "50"},
    {"roi.representation", "32"},    {"roi.batch_per_image", "32"},   {"roi.canonical_scale", "56"},
};
#define NKEYS (int)(sizeof frcnn_keys / sizeof frcnn_keys[0])

static int write_frcnn_teacher(void) {
  char json[2048];
  int o = snprintf(json, sizeof json,
                   "{\"model\": {\"depth\": %d, \"width\": %d, \"fpn_channels\": %d, \"num_classes\": 10, \"head\": \"faster_rcnn\","
                   " \"fpn_first_level\": 2, \"extra_levels\": 1, \"extra_from\": \"pool\"},"
                   " \"rpn\": {\"anchor_sizes\": \"8,16,32,64,128\", \"pre_nms_top_n_test\": 100, \"post_nms_top_n_test\": 50},"
                   " \"roi\": {\"representation\": 32, \"canonical_scale\": 56},",
                   M.t_depth, M.t_width, M.fpn);
  snprintf(json + o, sizeof json - o, " \"data\": {\"size\": %d}, \"train\": {\"seed\": 7}}", M.size);
  return fx_write_teacher_json(json);
}

static const KdSnapField *field(const KdSnapshot *s, const char *name, int ndim, int d0, int d1) {
  const KdSnapField *f = kd_snapshot_find(s, name);
  CHECK_MSG(f != NULL, "no field %s", name);
  if (!f) return NULL;
  CHECK_MSG(f->ndim == ndim && (d0 < 0 || f->shape[0] == d0) && (ndim < 2 || f->shape[1] == d1), "%s: %d dims %dx%d", name,
            f->ndim, f->shape[0], f->ndim > 1 ? f->shape[1] : 0);
  return f;
}

/* The snapshot's fields of one side against that model's own forward. */
static void check_side(const KdSnapshot *s, KdModel *m, const char *who, KdTensor *x, const KdGtImage *gt) {
  KdCtx *c = kd_ctx_new(64u << 20);
  kd_ctx_set_grad(c, 0);
  KdDetOut o;
  CHECK_MSG(kd_model_forward(m, c, x, 0, &o) == 0, "%s forward: %s", who, kd_ctx_error(c));
  KdTensor *const *obj = kd_det_out(&o, "objectness");
  CHECK(obj != NULL && s->nlev == 5 && o.nlev == 5);
  double worst = 0;
  int cells = 0;
  for (int l = 0; obj && l < s->nlev; l++) {
    const KdTensor *t = obj[l];
    int A = t->shape[1], H = t->shape[2], W = t->shape[3];
    CHECK(H == M.size / s->strides[l] && W == H);
    char L[8], name[64];
    kd_snapshot_level_name(s, l, L, sizeof L);
    for (int i = 0; i < NPROBE; i++) {
      snprintf(name, sizeof name, "img%d.%s.%s_obj", i, L, who);
      const KdSnapField *f = field(s, name, 2, H, W);
      for (int q = 0; f && q < H * W; q++, cells++) {
        double best = 0; /* max over anchors of sigmoid, in float64 */
        for (int a = 0; a < A; a++) best = fmax(best, 1.0 / (1.0 + exp(-(double)t->data[(((size_t)i * A + a) * H * W) + q])));
        worst = fmax(worst, fabs(best - f->data[q]));
      }
    }
  }
  CHECK_MSG(worst < 1e-6 && cells > 0, "%s objectness: worst difference %g over %d cells", who, worst, cells);
  const double obj_worst = worst;
  const KdRpnProposals *pr = &o.head.rois.props;
  for (int i = 0; i < NPROBE; i++) {
    char name[64];
    snprintf(name, sizeof name, "img%d.props.%s", i, who);
    int want = pr->count[i] < NPROPS ? pr->count[i] : NPROPS;
    const KdSnapField *f = field(s, name, 2, want, 6);
    CHECK(want == NPROPS); /* a random RPN at 64 px has more than 20 after NMS */
    for (int k = 0; f && k < want; k++) {
      const float *b = pr->boxes + 4 * ((size_t)i * pr->cap + k), *r = f->data + 6 * k;
      CHECK(r[0] == b[0] && r[1] == b[1] && r[2] == b[2] && r[3] == b[3] && r[4] == pr->scores[(size_t)i * pr->cap + k] && r[5] == -1);
      CHECK(r[4] > 0 && r[4] < 1 && (k == 0 || r[4] <= r[-2]));
    }
    snprintf(name, sizeof name, "img%d.det.%s", i, who);
    field(s, name, 2, -1, 6);
  }
  /* RoI features of the non-crowd GT boxes, projected on roi.pca */
  float rois[5 * 256];
  int nr = 0;
  for (int i = 0; i < NPROBE; i++)
    for (int k = 0; k < gt[i].n; k++)
      if (!gt[i].crowd[k] && nr < 256) {
        rois[5 * nr] = (float)i;
        memcpy(rois + 5 * nr + 1, gt[i].boxes + 4 * k, 4 * sizeof(float));
        nr++;
      }
  KdHeadOut ho;
  KdError e;
  CHECK_MSG(kd_model_roi_forward(m, c, o.feat, rois, nr, &ho, &e) == 0, "%s", e.msg);
  char name[32];
  snprintf(name, sizeof name, "roi.%s_xy", who);
  const KdSnapField *xy = field(s, name, 2, nr, 2), *mean = field(s, "roi.pca.mean", 1, 32, 0),
                    *axes = field(s, "roi.pca.axes", 2, 2, 32), *inst = field(s, "inst.image", 1, nr, 0);
  worst = 0;
  for (int j = 0; xy && mean && axes && inst && ho.rois.rep && j < nr; j++) {
    CHECK(inst->data[j] == rois[5 * j]);
    for (int a = 0; a < 2; a++) {
      double v = 0;
      for (int q = 0; q < 32; q++) v += ((double)ho.rois.rep->data[j * 32 + q] - mean->data[q]) * axes->data[a * 32 + q];
      worst = fmax(worst, fabs(v - xy->data[2 * j + a]) / (1 + fabs(v)));
    }
  }
  CHECK_MSG(ho.rois.rep && worst < 1e-4, "%s RoI features: worst relative difference %g", who, worst);
  printf("%s: objectness over %d cells within %.2g, %d proposals an image, %d RoI features within %.2g\n", who, cells,
         obj_worst, NPROPS, nr, worst);
  kd_ctx_free(c);
}

static size_t snapshot_bytes(const KdSnapshot *s, const char *mid) {
  size_t b = 0;
  for (int k = 0; k < s->nfields; k++)
    if (!mid || strstr(s->fields[k].name, mid)) b += 4 * s->fields[k].numel;
  return b;
}

int main(void) {
  M = fx_tiny;
  fx_tmpdir("probe_rpn");
  int rc = fx_build_data(16, NPROBE, M.size);
  if (rc) return rc;
  if (write_frcnn_teacher()) return 1;
  KdConfig *c = fx_config(&M, "fitnet");
  for (int k = 0; c && k < NKEYS; k++) CHECK(fx_set(c, frcnn_keys[k][0], "%s", frcnn_keys[k][1]) == 0);
  KdSession *ss = c ? fx_session(c, "run") : NULL;
  if (!ss) return 1;
  KdStepStats st;
  KdError e;
  CHECK_MSG(kd_session_step(ss, &st, &e) == 0, "%s", e.msg);
  KdProbeCfg pc;
  kd_probe_cfg_default(&pc);
  pc.settings = c, pc.write_files = 0;
  KdProber *p = kd_prober_new(ss, &pc, &e);
  CHECK_MSG(p != NULL, "%s", e.msg);
  KdSnapshot *s = NULL;
  if (p) CHECK_MSG(kd_prober_capture(p, 1, &s, &e) == 0, "%s", e.msg);
  /* the evaluation loader's images (the probe's pixels, tested in test_probe_session) */
  KdLoaderCfg lc;
  kd_loader_cfg_eval(&lc);
  lc.batch_size = NPROBE;
  const KdBatch *b = NULL;
  KdLoader *ld = kd_settings_image(c, &lc.image, &e) ? NULL : kd_loader_new(kd_session_val(ss), &lc, &e);
  CHECK_MSG(ld && kd_loader_next(ld, &b, &e) == 0 && b, "%s", e.msg);
  if (s && b) {
    KdGtImage gt[NPROBE];
    static int crowd[512];
    for (int k = 0; k < b->box_off[NPROBE] && k < 512; k++) crowd[k] = b->crowd[k];
    for (int i = 0; i < NPROBE; i++) {
      int o = b->box_off[i];
      gt[i] = (KdGtImage){.boxes = b->boxes + 4 * o, .labels = b->labels + o, .crowd = crowd + o, .n = b->box_off[i + 1] - o};
    }
    int shape[4] = {NPROBE, 3, M.size, M.size};
    KdCtx *xc = kd_ctx_new(1u << 20);
    KdTensor *x = kd_tensor_wrap(xc, b->images, 4, shape);
    check_side(s, kd_session_student(ss), "s", x, gt);
    check_side(s, kd_session_teacher(ss), "t", x, gt);
    field(s, "roi.pca.var", 1, 3, 0);
    printf("two-stage fields: %zu bytes of objectness, %zu of proposals, %zu of RoI projection; snapshot %zu bytes of fields\n",
           snapshot_bytes(s, "_obj"), snapshot_bytes(s, ".props."), snapshot_bytes(s, "roi."), snapshot_bytes(s, NULL));
    kd_ctx_free(xc);
  }
  kd_loader_free(ld);
  kd_snapshot_free(s);
  kd_prober_free(p);
  kd_session_free(ss);
  kd_config_free(c);
  /* a RetinaNet pair: none of the two-stage fields */
  if (fx_write_teacher(&M)) return 1;
  c = fx_config(&M, "fitnet");
  ss = c ? fx_session(c, "run1") : NULL;
  pc.settings = c;
  p = ss ? kd_prober_new(ss, &pc, &e) : NULL;
  s = NULL;
  CHECK_MSG(p && kd_prober_capture(p, 0, &s, &e) == 0, "%s", e.msg);
  if (s) CHECK(snapshot_bytes(s, "_obj") == 0 && snapshot_bytes(s, ".props.") == 0 && snapshot_bytes(s, "roi.") == 0);
  kd_snapshot_free(s);
  kd_prober_free(p);
  kd_session_free(ss);
  kd_config_free(c);
  return check_status("test_probe_rpn");
}
