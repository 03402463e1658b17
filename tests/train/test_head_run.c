/* HEAD and TF-HEAD in a real distillation: the fixture's fashion-det set
 * and RetinaNet student, a tiny Faster R-CNN teacher checkpoint, a few
 * steps of the trainer. HEAD logs head.assist.cls, head.assist.box,
 * head.akd.fc1, head.akd.fc2 and head.ckd every step, finite, the parts
 * summing to the loss; the assistant's GT losses are > 0, AKD and CKD are
 * 0 on the first step (warm-up weight 0) and > 0 after; the assistant
 * trains (its fc7, a copy of the teacher's at init: test_distill_head,
 * leaves the teacher's). TF-HEAD with 2 assistants logs
 * tfhead.assist.cls/box and tfhead.ckd the same way. DeFeat for a
 * two-stage student (defeat's feature part + defeat_roi) logs its four
 * parts, all > 0. */
#include <math.h>

#include "check.h"
#include "run_fixture.h"
#include "train/run.h"

#define STEPS 4
#define FC7 "distill.head.assist.box_head.fc7.weight"


typedef struct {
  const char *method;
  const char *names[5];
  int nnames;
  double v[STEPS + 1][5], gap[STEPS + 1], rois[STEPS + 1];
  double fc7_delta[STEPS + 1]; /* |assistant fc7 - teacher fc7| summed, after each step */
} Trace;

static void trace(void *user, KdSession *s, const KdStepStats *st) {
  Trace *t = user;
  const int k = st->step;
  if (k < 1 || k > STEPS) return;
  double sum = 0;
  for (int j = 0; j < t->nnames; j++) t->v[k][j] = NAN;
  for (int i = 0; i < st->nparts; i++) {
    for (int j = 0; j < t->nnames; j++)
      if (!strcmp(st->parts[i].name, t->names[j])) t->v[k][j] = st->parts[i].value;
    sum += st->parts[i].value;
  }
  t->gap[k] = fabs(sum - st->loss) / fmax(1e-12, fabs(st->loss));
  char rn[32];
  snprintf(rn, sizeof rn, "%s.rois", t->method);
  for (int i = 0; i < st->nstats; i++)
    if (!strcmp(st->stats[i].name, rn)) t->rois[k] = st->stats[i].value;
  KdTensor *a = kd_params_find(kd_distiller_params(kd_session_distiller(s)), FC7);
  KdTensor *b = kd_params_find(kd_model_params(kd_session_teacher(s)), "roi_heads.box_head.fc7.weight");
  t->fc7_delta[k] = NAN;
  if (a && b && a->numel == b->numel) {
    double d = 0;
    for (size_t i = 0; i < a->numel; i++) d += fabs(a->data[i] - b->data[i]);
    t->fc7_delta[k] = d;
  }
}

static void check_head(const Trace *t) {
  for (int k = 1; k <= STEPS; k++) {
    printf("head step %d: assist.cls %.5g assist.box %.5g akd.fc1 %.5g akd.fc2 %.5g ckd %.5g rois %g fc7 moved %.3g "
           "parts-vs-loss %.2g\n",
           k, t->v[k][0], t->v[k][1], t->v[k][2], t->v[k][3], t->v[k][4], t->rois[k], t->fc7_delta[k], t->gap[k]);
    for (int j = 0; j < 5; j++) CHECK_MSG(isfinite(t->v[k][j]) && t->v[k][j] >= 0, "step %d: %s %g", k, t->names[j], t->v[k][j]);
    CHECK_MSG(t->v[k][0] > 0, "step %d: assistant CE %g", k, t->v[k][0]);
    CHECK_MSG(t->rois[k] > 0, "step %d: %g RoIs", k, t->rois[k]);
    CHECK_MSG(t->gap[k] < 1e-5, "step %d: the parts miss the loss by %g", k, t->gap[k]);
    if (k == 1) CHECK_MSG(t->v[k][2] == 0 && t->v[k][3] == 0 && t->v[k][4] == 0, "step 1: warm-up weight 0, AKD/CKD %g %g %g",
                          t->v[k][2], t->v[k][3], t->v[k][4]);
    else CHECK_MSG(t->v[k][2] > 0 && t->v[k][3] > 0 && t->v[k][4] > 0, "step %d: AKD/CKD %g %g %g", k, t->v[k][2], t->v[k][3],
                   t->v[k][4]);
    CHECK_MSG(t->fc7_delta[k] > 0, "step %d: the assistant's fc7 did not train (%g)", k, t->fc7_delta[k]);
  }
}

/* The teacher's two-stage settings, for a two-stage student. */
static const char *const frcnn_kv[][2] = {{"model.head", "faster_rcnn"}, {"model.fpn_first_level", "2"},
                                          {"model.extra_levels", "1"}, {"model.extra_from", "pool"},
                                          {"rpn.anchor_sizes", "8,16,32,64,128"}, {"rpn.pre_nms_top_n_train", "200"},
                                          {"rpn.post_nms_top_n_train", "100"}, {"rpn.pre_nms_top_n_test", "100"},
                                          {"rpn.post_nms_top_n_test", "50"}, {"roi.representation", "16"},
                                          {"roi.batch_per_image", "32"}, {"roi.canonical_scale", "56"},
                                          {"defeat.beta_obj", "0"}, {"defeat.beta_bg", "0"}};

static int run_method(const char *method, const char *const (*kv)[2], int nkv, Trace *t, const char *tag) {
  char tmp[4096], out[4300];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, tag) == 0);
  KdRun *run = NULL;
  int rc = fixture_method_run_of(tmp, FIXTURE_FRCNN_TEACHER_JSON, method, kv, nkv, STEPS, trace, t, &run, out, sizeof out);
  CHECK(rc == 0);
  if (!check_status("test_head_run")) fixture_rmrf(tmp);
  else fprintf(stderr, "test_head_run: kept %s for inspection\n", tmp);
  return rc;
}

int main(void) {
  if (!fixture_have_source()) {
    printf("test_head_run: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  /* At the default warm-up (200 steps) the AKD/CKD weight is 0 on the
   * first step and k/200 on step k + 1. */
  Trace h = {.method = "head", .names = {"head.assist.cls", "head.assist.box", "head.akd.fc1", "head.akd.fc2", "head.ckd"},
             .nnames = 5};
  if (run_method("head", NULL, 0, &h, "head") == 0) check_head(&h);
  Trace f = {.method = "tfhead", .names = {"tfhead.assist.cls", "tfhead.assist.box", "tfhead.ckd"}, .nnames = 3};
  if (run_method("tfhead", NULL, 0, &f, "tfhead") == 0)
    for (int k = 1; k <= STEPS; k++) {
      printf("tfhead step %d: assist.cls %.5g assist.box %.5g ckd %.5g rois %g parts-vs-loss %.2g\n", k, f.v[k][0], f.v[k][1],
             f.v[k][2], f.rois[k], f.gap[k]);
      for (int j = 0; j < 3; j++) CHECK_MSG(isfinite(f.v[k][j]) && f.v[k][j] >= 0, "step %d: %s %g", k, f.names[j], f.v[k][j]);
      CHECK_MSG(f.v[k][0] > 0 && f.rois[k] > 0, "step %d: tfhead CE %g, %g RoIs", k, f.v[k][0], f.rois[k]);
      CHECK_MSG(k == 1 ? f.v[k][2] == 0 : f.v[k][2] > 0, "step %d: tfhead.ckd %g", k, f.v[k][2]);
      CHECK_MSG(f.gap[k] < 1e-5, "step %d: the parts miss the loss by %g", k, f.gap[k]);
    }
  /* DeFeat for a two-stage pair: its feature part (defeat, dense head
   * terms off) and the decoupled RoI KL, the student's RoI head on the
   * teacher's sampled RoIs. */
  Trace d = {.method = "defeat_roi",
             .names = {"defeat_roi.roi_obj", "defeat_roi.roi_bg", "defeat.neck_obj", "defeat.neck_bg"},
             .nnames = 4};
  if (run_method("defeat,defeat_roi", frcnn_kv, (int)(sizeof frcnn_kv / sizeof frcnn_kv[0]), &d, "defeatroi") == 0)
    for (int k = 1; k <= STEPS; k++) {
      printf("defeat_roi step %d: roi_obj %.5g roi_bg %.5g neck_obj %.5g neck_bg %.5g rois %g parts-vs-loss %.2g\n", k,
             d.v[k][0], d.v[k][1], d.v[k][2], d.v[k][3], d.rois[k], d.gap[k]);
      for (int j = 0; j < 4; j++) CHECK_MSG(isfinite(d.v[k][j]) && d.v[k][j] > 0, "step %d: %s %g", k, d.names[j], d.v[k][j]);
      CHECK_MSG(d.rois[k] > 0 && d.gap[k] < 1e-5, "step %d: %g RoIs, parts miss the loss by %g", k, d.rois[k], d.gap[k]);
    }
  /* Global knowledge for a two-stage pair: the student's positive sampled
   * RoIs as the instances, both RoI heads' K+1 logits in the soft term,
   * the levels averaged (the released two-stage path). */
  static const char *gk_kv[sizeof frcnn_kv / sizeof frcnn_kv[0] + 1][2];
  const int nf = (int)(sizeof frcnn_kv / sizeof frcnn_kv[0]);
  for (int i = 0; i < nf; i++) gk_kv[i][0] = frcnn_kv[i][0], gk_kv[i][1] = frcnn_kv[i][1];
  gk_kv[nf][0] = "gk.reduce", gk_kv[nf][1] = "mean";
  Trace g = {.method = "gk", .names = {"gk.feat_fg", "gk.feat_bg", "gk.soft"}, .nnames = 3};
  if (run_method("gk", (const char *const(*)[2])gk_kv, nf + 1, &g, "gkroi") == 0)
    for (int k = 1; k <= STEPS; k++) {
      printf("gk (two-stage) step %d: feat_fg %.5g feat_bg %.5g soft %.5g sampled RoIs %g parts-vs-loss %.2g\n", k, g.v[k][0],
             g.v[k][1], g.v[k][2], g.rois[k], g.gap[k]);
      for (int j = 0; j < 3; j++) CHECK_MSG(isfinite(g.v[k][j]) && g.v[k][j] > 0, "step %d: %s %g", k, g.names[j], g.v[k][j]);
      CHECK_MSG(g.rois[k] > 0 && g.gap[k] < 1e-5, "step %d: %g RoIs, parts miss the loss by %g", k, g.rois[k], g.gap[k]);
    }
  return check_status("test_head_run");
}
