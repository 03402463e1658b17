#include "snapview.h"

#include <stdio.h>
#include <string.h>

KdFigMap kd_snapview_map(const KdSnapshot *s, int image, int level, const char *what) {
  char lv[16];
  KdFigMap m = {0};
  if (!s) return m;
  const KdSnapField *f = kd_snapshot_findf(s, "img%d.%s.%s", image, kd_snapshot_level_name(s, level, lv, sizeof lv), what);
  if (!f || f->ndim != 2) return m;
  m.v = f->data, m.h = f->shape[0], m.w = f->shape[1];
  return m;
}

const float *kd_snapview_vec(const KdSnapshot *s, int image, int level, const char *what, int *n) {
  char lv[16];
  *n = 0;
  if (!s) return NULL;
  const KdSnapField *f = kd_snapshot_findf(s, "img%d.%s.%s", image, kd_snapshot_level_name(s, level, lv, sizeof lv), what);
  if (!f || f->ndim != 1) return NULL;
  *n = f->shape[0];
  return f->data;
}

KdFigImage kd_snapview_image(const KdSnapshot *s, int image) {
  KdFigImage im = {0};
  if (!s || !s->rgb || image < 0 || image >= s->nimages) return im;
  im.rgb = s->rgb + (size_t)image * s->img_h * s->img_w * 3;
  im.h = s->img_h, im.w = s->img_w, im.stride = 3 * s->img_w;
  return im;
}

int kd_snapview_boxes(const KdSnapshot *s, int image, const char *which, KdFigBox *out, int max) {
  if (!s) return 0;
  const KdSnapField *f = kd_snapshot_findf(s, "img%d.%s", image, which);
  if (!f || f->ndim != 2 || f->shape[1] != 6) return 0;
  int n = f->shape[0] < max ? f->shape[0] : max, gt = !strcmp(which, "gt");
  for (int i = 0; i < n; i++) {
    const float *r = f->data + 6 * i;
    out[i] = (KdFigBox){r[0], r[1], r[2], r[3], gt ? (int)r[4] : (int)r[5], gt ? -1.0f : r[4]};
  }
  return n;
}

static int list_fields(const KdSnapshot *s, int image, int level, const char *mid, const char **names, int max) {
  char lv[16], prefix[96];
  if (!s) return 0;
  snprintf(prefix, sizeof prefix, "img%d.%s.%s", image, kd_snapshot_level_name(s, level, lv, sizeof lv), mid);
  size_t pl = strlen(prefix);
  int n = 0;
  for (int i = 0; i < s->nfields && n < max; i++) {
    const KdSnapField *f = &s->fields[i];
    if (strncmp(f->name, prefix, pl) || f->ndim != 2) continue;
    names[n++] = f->name + pl;
  }
  return n;
}

int kd_snapview_masks(const KdSnapshot *s, int image, int level, const char **names, int max) {
  return list_fields(s, image, level, "mask.", names, max);
}

int kd_snapview_grad_sources(const KdSnapshot *s, int image, int level, const char **names, int max) {
  const char *all[32];
  int n = list_fields(s, image, level, "grad.", all, 32 < max + 1 ? 32 : max + 1), k = 0;
  for (int i = 0; i < n && k < max; i++)
    if (strcmp(all[i], "total")) names[k++] = all[i];
  return k;
}
