/* Global knowledge's tensors in a `kdscope loss` file (docs/LOSS-CLI.md,
 * "gk"): instance rows that stand in for the student's positive anchors,
 * the prototypes of each level with their classes, the training progress.
 * Read next to the other inputs (loss_inputs.c) and checked once every
 * tensor is known (kd_loss_inputs_check_gk). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss_inputs.h"

static int whole(float v) { return isfinite(v) && v == floorf(v); }

/* "proto.teacher.P3" -> side 0, level 0; "proto.labels.P4" -> side 2, level 1. */
static int proto_name(const char *name, int *side, int *l) {
  static const char *const sides[3] = {"proto.teacher.P", "proto.student.P", "proto.labels.P"};
  for (int s = 0; s < 3; s++) {
    size_t n = strlen(sides[s]);
    if (strncmp(name, sides[s], n) || name[n] < '3' || name[n] > '7' || name[n + 1]) continue;
    *side = s, *l = name[n] - '3';
    return 1;
  }
  return 0;
}

int kd_loss_inputs_read_gk(KdLossInputs *in, int i, const char *name, const int *shape, int nd, const char *ss,
                           KdError *err) {
  int side, l;
  if (proto_name(name, &side, &l)) {
    if ((side < 2 && nd != 2) || (side == 2 && nd != 1))
      return kd_error(err, "%s: tensor '%s' has shape %s; expected %s", in->path, name, ss,
                      side < 2 ? "(M,C): one prototype a row" : "(M): the class of each prototype");
    float **dst = side == 0 ? &in->proto_t[l] : side == 1 ? &in->proto_s[l] : &in->proto_lab[l];
    if (!(*dst = kd_loss_inputs_tensor(in, i, NULL, err))) return -1;
    in->proto_m[side][l] = shape[0];
    if (side < 2) in->proto_c[side][l] = shape[1];
    in->has_proto = 1;
    return 0;
  }
  if (!strcmp(name, "inst.boxes")) {
    if (nd != 2 || shape[1] != 5)
      return kd_error(err, "%s: tensor 'inst.boxes' has shape %s; expected (R,5): image index, x1, y1, x2, y2", in->path, ss);
    in->nr = shape[0], in->has_inst = 1;
    return (in->inst_boxes = kd_loss_inputs_tensor(in, i, NULL, err)) ? 0 : -1;
  }
  if (!strcmp(name, "inst.labels")) {
    if (nd != 1) return kd_error(err, "%s: tensor 'inst.labels' has shape %s; expected (R)", in->path, ss);
    in->inst_nlab = shape[0];
    return (in->inst_labels = kd_loss_inputs_tensor(in, i, NULL, err)) ? 0 : -1;
  }
  if (!strcmp(name, "inst.teacher.cls") || !strcmp(name, "inst.student.cls")) {
    const int s = name[5] == 's';
    if (nd != 2) return kd_error(err, "%s: tensor '%s' has shape %s; expected (R,K): each instance's class logits", in->path, name, ss);
    memcpy(in->inst_cls_shape[s], shape, 2 * sizeof(int));
    return (in->inst_cls[s] = kd_loss_inputs_tensor(in, i, NULL, err)) ? 0 : -1;
  }
  if (!strcmp(name, "progress")) {
    size_t n;
    float *v = kd_loss_inputs_tensor(in, i, &n, err);
    if (!v) return -1;
    int ok = nd == 1 && n == 1 && v[0] >= 0.0f && v[0] <= 1.0f;
    in->progress = ok ? v[0] : 0, in->has_progress = 1;
    free(v);
    return ok ? 0 : kd_error(err, "%s: tensor 'progress' must be (1): the training progress in [0, 1]", in->path);
  }
  return 1;
}

int kd_loss_inputs_check_gk(KdLossInputs *in, KdError *err) {
  if (in->has_inst) {
    if (!in->inst_labels || in->inst_nlab != in->nr)
      return kd_error(err, "%s: tensor 'inst.labels' (R) must come with 'inst.boxes' (R,5), R = %d", in->path, in->nr);
    if (!in->inst_cls[0] != !in->inst_cls[1])
      return kd_error(err, "%s: %s given without %s; the instance logits come together", in->path,
                      in->inst_cls[0] ? "inst.teacher.cls" : "inst.student.cls",
                      in->inst_cls[0] ? "inst.student.cls" : "inst.teacher.cls");
    for (int s = 0; in->inst_cls[0] && s < 2; s++)
      if (in->inst_cls_shape[s][0] != in->nr || in->inst_cls_shape[s][1] != in->inst_cls_shape[0][1])
        return kd_error(err, "%s: tensor '%s' has shape (%d,%d); expected (%d,%d), one row per instance", in->path,
                        s ? "inst.student.cls" : "inst.teacher.cls", in->inst_cls_shape[s][0], in->inst_cls_shape[s][1],
                        in->nr, in->inst_cls_shape[0][1]);
    const int K = in->inst_cls[0] ? in->inst_cls_shape[0][1] : 0;
    for (int r = 0; r < in->nr; r++) {
      const float *b = in->inst_boxes + 5 * r, lab = in->inst_labels[r];
      if (!whole(b[0]) || b[0] < 0 || b[0] >= in->n)
        return kd_error(err, "%s: inst.boxes row %d: image index %g is not a whole number in [0, %d)", in->path, r, (double)b[0],
                        in->n);
      if (b[3] < b[1] || b[4] < b[2])
        return kd_error(err, "%s: inst.boxes row %d: (%g,%g,%g,%g) needs x1 <= x2 and y1 <= y2", in->path, r, (double)b[1],
                        (double)b[2], (double)b[3], (double)b[4]);
      if (!whole(lab) || lab < 0 || (K && lab >= K))
        return kd_error(err, "%s: inst.labels[%d] = %g is not a class index%s", in->path, r, (double)lab, K ? " in [0, K)" : "");
      if ((int)lab + 1 > in->K) in->K = (int)lab + 1;
    }
    if (K > in->K) in->K = K;
  }
  for (int l = 0; l < KD_LOSS_MAXL; l++) {
    const int any = in->proto_t[l] || in->proto_s[l] || in->proto_lab[l];
    if (!any) continue;
    char lv[8];
    snprintf(lv, sizeof lv, "P%d", l + 3);
    if (!in->proto_t[l] || !in->proto_s[l] || !in->proto_lab[l])
      return kd_error(err, "%s: the prototypes of level %s come as proto.teacher.%s (M,C_t), proto.student.%s (M,C_s) and "
                      "proto.labels.%s (M) together", in->path, lv, lv, lv, lv);
    if (l >= in->nlev)
      return kd_error(err, "%s: prototypes of level %s, but the features stop at P%d", in->path, lv, in->nlev + 2);
    const int m = in->proto_m[0][l];
    if (in->proto_m[1][l] != m || in->proto_m[2][l] != m)
      return kd_error(err, "%s: level %s has %d teacher, %d student prototypes and %d labels; one row each", in->path, lv, m,
                      in->proto_m[1][l], in->proto_m[2][l]);
    for (int s = 0; s < 2; s++)
      if (in->has[KD_LOSS_FEAT] && in->proto_c[s][l] != in->lev[KD_LOSS_FEAT][s][0].shape[1])
        return kd_error(err, "%s: tensor 'proto.%s.%s' has %d columns; the %s features have %d channels", in->path,
                        s ? "student" : "teacher", lv, in->proto_c[s][l], s ? "student" : "teacher",
                        in->lev[KD_LOSS_FEAT][s][0].shape[1]);
    for (int j = 0; j < m; j++) {
      const float lab = in->proto_lab[l][j];
      if (!whole(lab) || lab < 0 || lab > 255)
        return kd_error(err, "%s: proto.labels.%s[%d] = %g is not a class index", in->path, lv, j, (double)lab);
      if ((int)lab + 1 > in->K) in->K = (int)lab + 1;
    }
  }
  return 0;
}

void kd_loss_inputs_free_gk(KdLossInputs *in) {
  for (int l = 0; l < KD_LOSS_MAXL; l++) free(in->proto_t[l]), free(in->proto_s[l]), free(in->proto_lab[l]);
  free(in->inst_boxes), free(in->inst_labels), free(in->inst_cls[0]), free(in->inst_cls[1]);
}
