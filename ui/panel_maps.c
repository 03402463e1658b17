/* Feature maps of one FPN level: the gap panel (teacher energy | student
 * energy on one shared range unless asked otherwise, and the gap) and the
 * mask panel (GT foreground and every mask the active methods use). */
#include <string.h>

#include "panels.h"
#include "snapview.h"

struct _KdsGapPanel {
  KdsPanel parent;
  KdFigMaps spec;
  KdFigMapItem items[4];
  KdFigMapGroup groups[4];
  KdFigImage under;
  char title[96];
};

G_DEFINE_FINAL_TYPE(KdsGapPanel, kds_gap_panel, KDS_TYPE_PANEL)

static gboolean gap_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  KdsGapPanel *p = KDS_GAP_PANEL(panel);
  const KdSnapshot *s = v->snap;
  if (!s || v->level >= s->nlev) return FALSE;
  int n = 0;
  KdFigMap te = kd_snapview_map(s, v->image, v->level, "t_energy"), se = kd_snapview_map(s, v->image, v->level, "s_energy");
  KdFigMap gap = kd_snapview_map(s, v->image, v->level, "gap");
  if (!gap.v) gap = kd_snapview_map(s, v->image, v->level, "gap_pkd");
  if (te.v) p->items[n++] = (KdFigMapItem){te, "teacher energy", 0};
  if (se.v) p->items[n++] = (KdFigMapItem){se, "student energy", v->independent ? 1 : 0};
  if (gap.v) p->items[n++] = (KdFigMapItem){gap, "gap (S - T)\xc2\xb2", 2};
  if (!n) return FALSE;
  p->groups[0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "mean_c X\xc2\xb2"};
  p->groups[1] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "student"};
  p->groups[2] = (KdFigMapGroup){KD_CMAP_MAGMA, {0, 0, 0}, "gap"};
  char lv[16];
  g_snprintf(p->title, sizeof p->title, "%s: teacher vs student features", kd_snapshot_level_name(s, v->level, lv, sizeof lv));
  p->under = kd_snapview_image(s, v->image);
  p->spec = (KdFigMaps){.items = p->items, .n = n, .groups = p->groups, .ngroups = 3, .under = v->overlay > 0 ? &p->under : NULL,
                        .alpha = v->overlay, .title = p->title};
  *out = kd_fig_maps_panel(&p->spec);
  return TRUE;
}

static void kds_gap_panel_class_init(KdsGapPanelClass *k) {
  KDS_PANEL_CLASS(k)->build = gap_build;
  KDS_PANEL_CLASS(k)->kind = "gap";
}
static void kds_gap_panel_init(KdsGapPanel *p) { (void)p; }

struct _KdsMaskPanel {
  KdsPanel parent;
  KdFigMaps spec;
  KdFigMapItem items[KD_FIG_MAX_MAPS];
  KdFigMapGroup groups[KD_FIG_MAX_MAPS];
  KdFigImage under;
  char title[96];
};

G_DEFINE_FINAL_TYPE(KdsMaskPanel, kds_mask_panel, KDS_TYPE_PANEL)

static gboolean mask_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  KdsMaskPanel *p = KDS_MASK_PANEL(panel);
  const KdSnapshot *s = v->snap;
  if (!s || v->level >= s->nlev) return FALSE;
  int n = 0;
  KdFigMap fg = kd_snapview_map(s, v->image, v->level, "fg");
  if (fg.v) {
    p->items[n] = (KdFigMapItem){fg, "GT foreground", n};
    p->groups[n] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 1, 0}, "mask"};
    n++;
  }
  const char *names[KD_FIG_MAX_MAPS];
  int nm = kd_snapview_masks(s, v->image, v->level, names, KD_FIG_MAX_MAPS - n);
  for (int i = 0; i < nm && n < KD_FIG_MAX_MAPS; i++) {
    char what[96];
    g_snprintf(what, sizeof what, "mask.%s", names[i]);
    KdFigMap m = kd_snapview_map(s, v->image, v->level, what);
    if (!m.v) continue;
    p->items[n] = (KdFigMapItem){m, names[i], n};
    p->groups[n] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, names[i]};
    n++;
  }
  if (!n) return FALSE;
  char lv[16];
  g_snprintf(p->title, sizeof p->title, "%s: masks the methods use", kd_snapshot_level_name(s, v->level, lv, sizeof lv));
  p->under = kd_snapview_image(s, v->image);
  p->spec = (KdFigMaps){.items = p->items, .n = n, .groups = p->groups, .ngroups = n, .under = v->overlay > 0 ? &p->under : NULL,
                        .alpha = v->overlay, .title = p->title};
  *out = kd_fig_maps_panel(&p->spec);
  return TRUE;
}

static void kds_mask_panel_class_init(KdsMaskPanelClass *k) {
  KDS_PANEL_CLASS(k)->build = mask_build;
  KDS_PANEL_CLASS(k)->kind = "masks";
}
static void kds_mask_panel_init(KdsMaskPanel *p) { (void)p; }
