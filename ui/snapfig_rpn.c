/* The figure of a two-stage model's RPN: objectness per level (the
 * snapshot's <w>_obj maps, max over anchors of the sigmoid), the
 * teacher's beside the student's on one fixed 0..1 range, or every level
 * side by side. */
#include <stdio.h>
#include <string.h>

#include "snapfig_priv.h"
#include "snapview.h"

static const char *const obj_what[2] = {"t_obj", "s_obj"};
static const char *const obj_title[2] = {"teacher RPN", "student RPN"};
static const char obj_label[] = "objectness: max over anchors of sigmoid";

int kd_snapfig_has_objectness(const KdSnapshot *s) {
  for (int k = 0; k < s->nfields; k++) {
    const char *n = s->fields[k].name;
    size_t l = strlen(n);
    if (l > 6 && (!strcmp(n + l - 6, ".t_obj") || !strcmp(n + l - 6, ".s_obj"))) return 1;
  }
  return 0;
}

int kd_snapfig_build_objectness(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  if (v->all_levels) {
    SfMapKind kinds[2];
    for (int w = 0; w < 2; w++) {
      kinds[w] = (SfMapKind){"", "", "", KD_CMAP_VIRIDIS, {0, 1, 0}};
      snprintf(kinds[w].what, sizeof kinds[w].what, "%s", obj_what[w]);
      snprintf(kinds[w].title, sizeof kinds[w].title, "%s", obj_title[w]);
      snprintf(kinds[w].label, sizeof kinds[w].label, "%s %s", obj_title[w], obj_label);
    }
    if (!kd_snapfig_levels_spec(v, p, kinds, 2, "RPN objectness, every level"))
      return kd_error(err, "objectness: the snapshot at step %d has no RPN objectness (no two-stage model)", s->step);
    *out = kd_fig_maps_panel(&p->maps);
    return 0;
  }
  int n = 0;
  for (int w = 0; w < 2; w++) {
    KdFigMap m = kd_snapview_map(s, v->image, v->level, obj_what[w]);
    if (!m.v) continue;
    p->items[n] = (KdFigMapItem){m, obj_title[w], 0};
    n++;
  }
  char lv[16];
  kd_snapshot_level_name(s, v->level, lv, sizeof lv);
  if (!n) return kd_error(err, "objectness: the snapshot at step %d has no RPN objectness at %s", s->step, lv);
  p->groups[0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 1, 0}, obj_label};
  snprintf(p->title, sizeof p->title, "%s: RPN objectness (max over anchors of sigmoid)", lv);
  kd_snapfig_maps_spec(v, p, n, 1);
  *out = kd_fig_maps_panel(&p->maps);
  return 0;
}
