/* Spatial attention of teacher and student (shared range) and their
 * channel attention as bars, FGD's definitions. */
#include "panels.h"
#include "snapview.h"

struct _KdsAttentionPanel {
  KdsPanel parent;
  KdFigAttention spec;
  char title[96];
};

G_DEFINE_FINAL_TYPE(KdsAttentionPanel, kds_attention_panel, KDS_TYPE_PANEL)

static gboolean build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  KdsAttentionPanel *p = KDS_ATTENTION_PANEL(panel);
  const KdSnapshot *s = v->snap;
  if (!s || v->level >= s->nlev) return FALSE;
  KdFigAttention *a = &p->spec;
  *a = (KdFigAttention){0};
  a->teacher_spatial = kd_snapview_map(s, v->image, v->level, "t_sattn");
  a->student_spatial = kd_snapview_map(s, v->image, v->level, "s_sattn");
  int nt = 0, ns = 0;
  a->teacher_channel = kd_snapview_vec(s, v->image, v->level, "t_cattn", &nt);
  a->student_channel = kd_snapview_vec(s, v->image, v->level, "s_cattn", &ns);
  if (!a->student_spatial.v) return FALSE;
  a->nchannels = nt && ns && nt != ns ? 0 : (ns ? ns : nt);
  a->sort_channels = 1;
  a->independent = v->independent;
  char lv[16];
  g_snprintf(p->title, sizeof p->title, "%s: spatial and channel attention (T = %.2g)", kd_snapshot_level_name(s, v->level, lv, sizeof lv),
             s->attn_temp);
  a->title = p->title;
  *out = kd_fig_attention_panel(a);
  return TRUE;
}

static void kds_attention_panel_class_init(KdsAttentionPanelClass *k) {
  KDS_PANEL_CLASS(k)->build = build;
  KDS_PANEL_CLASS(k)->kind = "attention";
}
static void kds_attention_panel_init(KdsAttentionPanel *p) { (void)p; }
