/* Global knowledge's run state in the distillation store and the crop of
 * the released code (gk.h). */
#include "distill/gk.h"

#include <stdio.h>
#include <string.h>

static KdTensor *find(const KdParams *store, const char *stem, int l) {
  char name[64];
  if (l < 0) snprintf(name, sizeof name, "distill.gk.%s", stem);
  else snprintf(name, sizeof name, "distill.gk.%s.%d", stem, l);
  return kd_params_find(store, name);
}

int kd_gk_level(const KdParams *store, int l, KdGkLevel *out) {
  KdTensor *pt = find(store, "proto_t", l), *ps = find(store, "proto_s", l), *cnt = find(store, "count", l);
  if (!pt || !ps || !cnt) return -1;
  *out = (KdGkLevel){.K = cnt->shape[0], .ct = pt->shape[1], .cs = ps->shape[1], .pt = pt->data, .ps = ps->data,
                     .count = cnt->data};
  return 0;
}

float *kd_gk_epoch(const KdParams *store) {
  KdTensor *e = find(store, "epoch", -1);
  return e ? e->data : NULL;
}

int kd_gk_set_level(const KdParams *store, int l, const float *pt, const float *ps, const int *labels, int m,
                    KdError *err) {
  KdGkLevel g;
  if (kd_gk_level(store, l, &g)) return kd_error(err, "gk: no prototype state for level %d", l);
  int n[256] = {0};
  if (g.K > 256) return kd_error(err, "gk: %d classes, at most 256", g.K);
  for (int i = 0; i < m; i++) {
    if (labels[i] < 0 || labels[i] >= g.K)
      return kd_error(err, "gk: level %d prototype %d has class %d; expected [0, %d)", l, i, labels[i], g.K);
    if (++n[labels[i]] > KD_GK_MAX_PROTOS)
      return kd_error(err, "gk: level %d class %d has more than %d prototypes", l, labels[i], KD_GK_MAX_PROTOS);
  }
  memset(g.pt, 0, sizeof(float) * (size_t)g.K * KD_GK_MAX_PROTOS * g.ct);
  memset(g.ps, 0, sizeof(float) * (size_t)g.K * KD_GK_MAX_PROTOS * g.cs);
  for (int k = 0; k < g.K; k++) g.count[k] = 0.0f;
  for (int i = 0; i < m; i++) {
    const int k = labels[i], row = k * KD_GK_MAX_PROTOS + (int)g.count[k];
    memcpy(g.pt + (size_t)row * g.ct, pt + (size_t)i * g.ct, sizeof(float) * g.ct);
    memcpy(g.ps + (size_t)row * g.cs, ps + (size_t)i * g.cs, sizeof(float) * g.cs);
    g.count[k] += 1.0f;
  }
  return 0;
}

void kd_gk_crop(const float *box, int stride, int img_h, int img_w, int h, int w, int *r0, int *r1, int *c0, int *c1) {
  float b[4];
  for (int k = 0; k < 4; k++) {
    const float hi = (float)(k % 2 ? img_h : img_w);
    b[k] = box[k] < 0.0f ? 0.0f : box[k] > hi ? hi : box[k];
  }
  const float s = (float)stride;
  int x0 = (int)(b[0] / s), y0 = (int)(b[1] / s), x1 = (int)(b[2] / s), y1 = (int)(b[3] / s);
  *c0 = x0 < w ? x0 : w - 1, *c1 = x1 < w ? x1 : w - 1;
  *r0 = y0 < h ? y0 : h - 1, *r1 = y1 < h ? y1 : h - 1;
}
