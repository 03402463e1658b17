/* Gradient magnitude on the student's FPN features by source (detection
 * loss, each distillation loss), with the foreground/background means. */
#include <string.h>

#include "panels.h"
#include "snapview.h"

struct _KdsGradientPanel {
  KdsPanel parent;
  KdFigGradMaps spec;
  const char *sources[KD_FIG_MAX_MAPS];
  KdFigMap maps[KD_FIG_MAX_MAPS];
  float fg[KD_FIG_MAX_MAPS], bg[KD_FIG_MAX_MAPS];
  char title[96];
};

G_DEFINE_FINAL_TYPE(KdsGradientPanel, kds_gradient_panel, KDS_TYPE_PANEL)

static gboolean build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  KdsGradientPanel *p = KDS_GRADIENT_PANEL(panel);
  const KdSnapshot *s = v->snap;
  if (!s || v->level >= s->nlev) return FALSE;
  int n = kd_snapview_grad_sources(s, v->image, v->level, p->sources, KD_FIG_MAX_MAPS);
  if (!n) return FALSE;
  for (int i = 0; i < n; i++) {
    char what[96];
    g_snprintf(what, sizeof what, "grad.%s", p->sources[i]);
    p->maps[i] = kd_snapview_map(s, v->image, v->level, what);
    const KdSnapField *f = kd_snapshot_findf(s, "grad_fgbg.%s", p->sources[i]);
    p->fg[i] = p->bg[i] = 0;
    if (f && f->ndim == 3 && v->image < f->shape[0] && v->level < f->shape[1]) {
      const float *m = f->data + ((size_t)v->image * f->shape[1] + v->level) * 2;
      p->fg[i] = m[0], p->bg[i] = m[1];
    }
  }
  char lv[16];
  g_snprintf(p->title, sizeof p->title, "%s: |dL/dS| by source (fg vs bg means)", kd_snapshot_level_name(s, v->level, lv, sizeof lv));
  p->spec = (KdFigGradMaps){.sources = p->sources, .maps = p->maps, .fg_mean = p->fg, .bg_mean = p->bg, .nsources = n,
                            .independent = v->independent, .title = p->title};
  *out = kd_fig_gradmaps_panel(&p->spec);
  return TRUE;
}

static void kds_gradient_panel_class_init(KdsGradientPanelClass *k) {
  KDS_PANEL_CLASS(k)->build = build;
  KDS_PANEL_CLASS(k)->kind = "gradients";
}
static void kds_gradient_panel_init(KdsGradientPanel *p) { (void)p; }
