/* A method whose inputs a run cannot give is refused up front, with a
 * message naming the method and the missing input: by kd_distill_check on
 * a student/teacher pair (teacher FPN wider than the student's: PKD and
 * CWD need one width; a student with a P6 the teacher lacks: logit
 * methods need every level paired), on a live set (the value is refused
 * and the config keeps the old one, also for a setting the needs depend
 * on, defeat.beta_obj), and for real: kd_run_new with such a method fails,
 * kd_run_set of one is refused, while the run goes on with the rest.
 * A Faster R-CNN side gives features and RoIs, no dense logits. */
#include <string.h>

#include "check.h"
#include "distill/side.h"
#include "model/safetensors.h"
#include "run_fixture.h"
#include "train/control.h"
#include "train/run.h"

static KdModel *tiny_anchors(int fpn, int extra, float size_mult) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = fpn, mc.neck.extra_levels = extra, mc.head.convs = 1;
  mc.head.anchors.size_mult = size_mult;
  KdError err;
  KdModel *m = kd_model_new(&mc, 9, &err);
  CHECK_MSG(m != NULL, "%s", err.msg);
  return m;
}

static KdModel *tiny(int fpn, int extra) { return tiny_anchors(fpn, extra, 4); }

/* A two-stage model: P2..P5 + the max-pool P6. */
static KdModel *tiny_frcnn(int fpn) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8;
  mc.neck = (KdNeckCfg){.channels = fpn, .first_level = 2, .extra_levels = 1, .extra = KD_EXTRA_MAXPOOL};
  snprintf(mc.head.kind, sizeof mc.head.kind, "faster_rcnn");
  mc.head.roi.representation = 16;
  KdError err;
  KdModel *m = kd_model_new(&mc, 9, &err);
  CHECK_MSG(m != NULL, "%s", err.msg);
  return m;
}

/* A GFL detector of this FPN width and side bins. */
static KdModel *tiny_gfl(int fpn, int reg_max) {
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = fpn, mc.head.convs = 1;
  snprintf(mc.head.kind, sizeof mc.head.kind, "gfl");
  mc.head.gfl.reg_max = reg_max;
  KdError err;
  KdModel *m = kd_model_new(&mc, 9, &err);
  CHECK_MSG(m != NULL, "%s", err.msg);
  return m;
}

/* Refused with a message holding both strings (or accepted when a == NULL). */
static void expect(const KdConfig *cfg, const KdDistillAvail *av, const char *methods, const char *a, const char *b) {
  KdError err = {{0}};
  int rc = kd_distill_check(cfg, methods, av, &err);
  if (!a) {
    CHECK_MSG(rc == 0, "%s refused: %s", methods, err.msg);
    return;
  }
  CHECK_MSG(rc == -1 && strstr(err.msg, a) && (!b || strstr(err.msg, b)), "%s: '%s'", methods, err.msg);
}

static void test_pairs(KdConfig *cfg) {
  KdModel *s = tiny(16, 0), *wide = tiny(32, 0), *p6 = tiny(16, 1), *same = tiny(16, 0);
  KdDistillAvail av;
  kd_distill_avail_models(&av, s, wide);
  expect(cfg, &av, "pkd", "method pkd needs neck features of one width", "teacher's neck is 32 wide, the student's 16");
  expect(cfg, &av, "fitnet,cwd", "method cwd needs", "32 wide");
  expect(cfg, &av, "fitnet,defeat,fgd,logitkd", NULL, NULL);
  expect(cfg, &av, "rm", NULL, NULL);
  expect(cfg, &av, "pfi", "method pfi needs neck features of one width", "teacher's neck is 32 wide, the student's 16");
  kd_distill_avail_models(&av, p6, same);
  expect(cfg, &av, "logitkd", "method logitkd needs dense class logits", "only 3 of the student's 4 levels");
  expect(cfg, &av, "defeat", "method defeat needs dense class logits", NULL); /* its head terms are on */
  expect(cfg, &av, "fitnet,pkd,cwd,fgd", NULL, NULL);
  expect(cfg, &av, "pdk", "unknown method 'pdk'", NULL);
  /* A live set under which an active method would lack an input is
   * refused and leaves the config as it was. */
  KdError err;
  CHECK(kd_config_set(cfg, "distill.methods", "defeat", &err) == 0);
  CHECK(kd_config_set(cfg, "defeat.beta_obj", "0", &err) == 0 && kd_config_set(cfg, "defeat.beta_bg", "0", &err) == 0);
  expect(cfg, &av, "defeat", NULL, NULL); /* neck terms only: no logits needed */
  CHECK(kd_control_check_set_avail(cfg, &av, "defeat.beta_obj", "0.5", NULL, 0, &err) == -1 &&
        strstr(err.msg, "method defeat needs dense class logits"));
  CHECK(kd_config_num(cfg, "defeat.beta_obj") == 0.0);
  CHECK(kd_control_check_set_avail(cfg, &av, "distill.methods", "defeat,logitkd", NULL, 0, &err) == -1 &&
        strstr(err.msg, "logitkd"));
  CHECK(!strcmp(kd_config_str(cfg, "distill.methods"), "defeat"));
  CHECK(kd_control_check_set_avail(cfg, &av, "distill.methods", "defeat,pkd", NULL, 0, &err) == 0);
  CHECK(!strcmp(kd_config_str(cfg, "distill.methods"), "defeat,pkd"));
  /* Anchors of other sizes: the logits are not of one layout; features are. */
  KdModel *a3 = tiny_anchors(16, 0, 3);
  kd_distill_avail_models(&av, s, a3);
  CHECK(kd_config_set(cfg, "defeat.beta_obj", "1", &err) == 0 && kd_config_set(cfg, "defeat.beta_bg", "1", &err) == 0);
  expect(cfg, &av, "logitkd", "method logitkd needs dense class logits", "teacher's anchors are 3 x stride, the student's 4 x stride");
  expect(cfg, &av, "fitnet,pkd,cwd,fgd", NULL, NULL);
  kd_model_free(a3);
  /* A Faster R-CNN teacher has features on P3..P5 but no dense logits. */
  KdModel *fr = tiny_frcnn(16);
  kd_distill_avail_models(&av, s, fr);
  expect(cfg, &av, "logitkd", "method logitkd needs dense class logits", "the teacher's Faster R-CNN head has none");
  expect(cfg, &av, "rm", "method rm needs dense class logits", "the teacher's Faster R-CNN head has none");
  expect(cfg, &av, "pfi", "method pfi needs dense class logits", "the teacher's Faster R-CNN head has none");
  expect(cfg, &av, "frs", "method frs needs dense class logits", "the teacher's Faster R-CNN head has none");
  expect(cfg, &av, "fitnet,pkd,cwd,fgd", NULL, NULL);
  expect(cfg, &av, "head,tfhead", NULL, NULL); /* HEAD's pair: a two-stage teacher, a RetinaNet student */
  /* FRS's mask on FitNet needs the teacher's class logits too. */
  CHECK(kd_config_set(cfg, "fitnet.mask", "frs", &err) == 0);
  expect(cfg, &av, "fitnet", "method fitnet needs dense class logits", "the teacher's Faster R-CNN head has none");
  CHECK(kd_config_set(cfg, "fitnet.mask", "none", &err) == 0);
  CHECK(av.have & KD_NEED_ROIS);
  kd_distill_avail_models(&av, s, same);
  expect(cfg, &av, "head", "method head needs the teacher's proposals (RoIs)", "the teacher's RetinaNet head makes none");
  expect(cfg, &av, "tfhead", NULL, NULL);
  kd_distill_avail_models(&av, fr, s);
  expect(cfg, &av, "head", "method head needs the student's dense anchor assignment", "Faster R-CNN head has none");
  expect(cfg, &av, "tfhead", "method tfhead needs the student's dense anchor assignment", NULL);
  expect(cfg, &av, "logitkd", "method logitkd needs dense class logits", "the student's Faster R-CNN head has none");
  expect(cfg, &av, "rm", "method rm needs dense class logits", "the student's Faster R-CNN head has none");
  CHECK(!(av.have & KD_NEED_ROIS) && !(av.have & KD_NEED_ASSIGN));
  kd_distill_avail_models(&av, s, fr);
  expect(cfg, &av, "defeat_roi", "method defeat_roi needs an RoI head on the student", "the student's RetinaNet head has none");
  kd_distill_avail_models(&av, fr, s);
  expect(cfg, &av, "defeat_roi", "method defeat_roi needs the teacher's proposals", "the teacher's RetinaNet head makes none");
  KdModel *fr2 = tiny_frcnn(16);
  kd_distill_avail_models(&av, fr2, fr);
  expect(cfg, &av, "defeat_roi", NULL, NULL);
  kd_model_free(fr2);
  kd_model_free(fr);
  /* LD needs GFL heads on both sides with the same bins (a RetinaNet side
   * fails on the logits' layout first: the first missing need is named). */
  KdModel *g16 = tiny_gfl(16, 16), *g8 = tiny_gfl(16, 8);
  kd_distill_avail_models(&av, g16, s);
  CHECK(!(av.have & KD_NEED_DIST));
  expect(cfg, &av, "ld", "method ld needs dense class logits", "the teacher has 9 anchors x 10 classes per location, the student 1");
  kd_distill_avail_models(&av, g8, g16);
  expect(cfg, &av, "ld", "method ld needs box-side distributions", "the teacher's sides have 17 bins, the student's 9");
  kd_distill_avail_models(&av, g16, g16);
  expect(cfg, &av, "ld,fitnet,pkd,logitkd", NULL, NULL);
  /* PGD (and FitNet with PGD's mask) read a GFL teacher's predictions: refused up front on other heads. */
  expect(cfg, &av, "pgd", NULL, NULL);
  kd_distill_avail_models(&av, s, s);
  expect(cfg, &av, "pgd", "method pgd needs box-side distributions", "the teacher's RetinaNet head has none");
  kd_model_free(g16), kd_model_free(g8);
  kd_model_free(s), kd_model_free(wide), kd_model_free(p6), kd_model_free(same);
}

/* The same through a real run: data, a teacher file with a wider FPN. */
static void test_run(void) {
  char dir[4096], data[4200], tcfg[4300], tck[4300], out[4300];
  if (fixture_tmpdir(dir, sizeof dir, "needs") || fixture_data(dir, data, sizeof data)) {
    CHECK(0);
    return;
  }
  snprintf(tcfg, sizeof tcfg, "%s/teacher.json", dir);
  snprintf(tck, sizeof tck, "%s/teacher.safetensors", dir);
  FILE *f = fopen(tcfg, "w");
  CHECK(f != NULL);
  if (!f) return;
  fprintf(f, "{\"model\": {\"depth\": 10, \"width\": 8, \"fpn_channels\": 32, \"head_convs\": 1}, \"data\": {\"size\": 64}}\n");
  fclose(f);
  KdError err;
  KdModel *t = tiny(32, 0);
  CHECK(t && kd_safetensors_save(tck, kd_model_params(t), NULL, &err) == 0);
  kd_model_free(t);
  for (int pass = 0; pass < 2; pass++) {
    KdConfig *cfg = fixture_config(data, 4);
    CHECK(cfg && kd_config_set(cfg, "teacher.config", tcfg, &err) == 0 && kd_config_set(cfg, "teacher.checkpoint", tck, &err) == 0);
    CHECK(kd_config_set(cfg, "distill.methods", pass ? "fitnet" : "fitnet,pkd", &err) == 0);
    snprintf(out, sizeof out, "%s/run%d", dir, pass);
    KdRunOpts o = {0};
    o.session.out_dir = out;
    o.session.distill = 1;
    o.no_control_file = 1;
    KdRun *r = kd_run_new(cfg, &o, &err);
    if (pass == 0) {
      CHECK_MSG(!r && strstr(err.msg, "method pkd needs neck features of one width"), "open: %s", r ? "opened" : err.msg);
    } else {
      CHECK_MSG(r != NULL, "%s", err.msg);
      if (r) {
        CHECK(kd_run_set(r, "distill.methods", "fitnet,cwd", "ui", &err) == -1 && strstr(err.msg, "method cwd needs"));
        CHECK(kd_run_set(r, "distill.methods", "fitnet,defeat", "ui", &err) == 0);
        CHECK(kd_run_start(r, &err) == 0 && kd_run_wait(r) == 0);
        KdRunStatus st;
        kd_run_status(r, &st);
        CHECK(st.state == KD_RUN_FINISHED && st.step == 4);
        int nparts = 0;
        for (int i = 0; i < st.last.nparts; i++) nparts += !strncmp(st.last.parts[i].name, "defeat.", 7);
        CHECK(nparts == 4); /* the accepted set took effect */
      }
      kd_run_free(r);
    }
    kd_config_free(cfg);
  }
  fixture_rmrf(dir);
}

int main(void) {
  KdConfig *cfg = kd_config_new();
  CHECK(cfg && kd_settings_register_all(cfg) == 0);
  test_pairs(cfg);
  kd_config_free(cfg);
  if (!fixture_have_source()) {
    if (check_failures) return check_status("test_needs");
    printf("run part skipped: no Fashion-MNIST source\n");
    return 77;
  }
  test_run();
  return check_status("test_needs");
}
