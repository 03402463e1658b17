/* Instance features of teacher and student projected on the teacher's
 * principal axes, pairs joined: how far each student instance is from
 * its teacher twin, and whether classes separate alike. */
#include "panels.h"
#include "snapview.h"

#define MAXI 512

struct _KdsProjectionPanel {
  KdsPanel parent;
  KdFigScatter spec;
  int cls[MAXI];
  char xl[48], yl[48];
};

G_DEFINE_FINAL_TYPE(KdsProjectionPanel, kds_projection_panel, KDS_TYPE_PANEL)

static gboolean build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  KdsProjectionPanel *p = KDS_PROJECTION_PANEL(panel);
  const KdSnapshot *s = v->snap;
  if (!s) return FALSE;
  const KdSnapField *t = kd_snapshot_find(s, "inst.t_xy"), *st = kd_snapshot_find(s, "inst.s_xy"), *lab = kd_snapshot_find(s, "inst.label");
  const KdSnapField *var = kd_snapshot_find(s, "pca.var");
  if (!t || t->ndim != 2 || t->shape[0] == 0) return FALSE;
  int n = t->shape[0] < MAXI ? t->shape[0] : MAXI;
  for (int i = 0; i < n; i++) p->cls[i] = lab && (int)lab->numel > i ? (int)lab->data[i] : -1;
  if (var && var->numel >= 3 && var->data[2] > 0) {
    g_snprintf(p->xl, sizeof p->xl, "PC1 (%.0f%% of teacher variance)", 100.0 * var->data[0] / var->data[2]);
    g_snprintf(p->yl, sizeof p->yl, "PC2 (%.0f%%)", 100.0 * var->data[1] / var->data[2]);
  } else {
    g_snprintf(p->xl, sizeof p->xl, "PC1"), g_snprintf(p->yl, sizeof p->yl, "PC2");
  }
  p->spec = (KdFigScatter){.teacher_xy = t->data, .student_xy = st && st->shape[0] == t->shape[0] ? st->data : NULL, .cls = p->cls,
                           .n = n, .class_names = (const char *const *)s->class_names, .nclasses = s->nclasses, .join_pairs = 1,
                           .title = "instance features on the teacher's PCA axes", .xlabel = p->xl, .ylabel = p->yl};
  *out = kd_fig_scatter_panel(&p->spec);
  return TRUE;
}

static void kds_projection_panel_class_init(KdsProjectionPanelClass *k) {
  KDS_PANEL_CLASS(k)->build = build;
  KDS_PANEL_CLASS(k)->kind = "projection";
}
static void kds_projection_panel_init(KdsProjectionPanel *p) { (void)p; }
