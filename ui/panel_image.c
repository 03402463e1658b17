/* The probe image with GT, teacher and student boxes. */
#include "panels.h"
#include "snapview.h"

#define MAXB 128

struct _KdsImagePanel {
  KdsPanel parent;
  KdFigDetView spec;
  KdFigBox gt[MAXB], t[MAXB], s[MAXB];
  char title[96];
};

G_DEFINE_FINAL_TYPE(KdsImagePanel, kds_image_panel, KDS_TYPE_PANEL)

static gboolean build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  KdsImagePanel *p = KDS_IMAGE_PANEL(panel);
  const KdSnapshot *s = v->snap;
  if (!s || v->image >= s->nimages) return FALSE;
  KdFigDetView *d = &p->spec;
  *d = (KdFigDetView){0};
  d->image = kd_snapview_image(s, v->image);
  d->gt = p->gt, d->teacher = p->t, d->student = p->s;
  d->ngt = kd_snapview_boxes(s, v->image, "gt", p->gt, MAXB);
  d->nteacher = kd_snapview_boxes(s, v->image, "det.t", p->t, MAXB);
  d->nstudent = kd_snapview_boxes(s, v->image, "det.s", p->s, MAXB);
  d->class_names = (const char *const *)s->class_names;
  d->nclasses = s->nclasses;
  d->score_thresh = 0.3f;
  d->labels = 1;
  d->legend = 1;
  g_snprintf(p->title, sizeof p->title, "probe image %d (val #%d), step %d", v->image, s->image_index[v->image], s->step);
  d->title = p->title;
  *out = kd_fig_detview_panel(d);
  return TRUE;
}

static void kds_image_panel_class_init(KdsImagePanelClass *k) {
  KDS_PANEL_CLASS(k)->build = build;
  KDS_PANEL_CLASS(k)->kind = "image";
}
static void kds_image_panel_init(KdsImagePanel *p) { (void)p; }
