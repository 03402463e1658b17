/* Loss parts and COCO AP against step, with a marker wherever a setting
 * changed; smoothing and log y as the view says, raw series kept. */
#include <string.h>

#include "panels.h"

#define MAXS 24
#define MAXM 64

struct _KdsCurvesPanel {
  KdsPanel parent;
  KdFigCurves spec;
  KdFigSeries loss[MAXS], ap[2];
  KdFigMarker markers[MAXM];
  char labels[MAXM][96];
};

G_DEFINE_FINAL_TYPE(KdsCurvesPanel, kds_curves_panel, KDS_TYPE_PANEL)

static int is_loss(const char *name) {
  static const char *skip[] = {"lr", "grad_norm", "step_s"};
  for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
    if (!strcmp(name, skip[i])) return 0;
  return strncmp(name, "eval.", 5) != 0;
}

static gboolean build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  KdsCurvesPanel *p = KDS_CURVES_PANEL(panel);
  KdRunLog *log = v->bridge ? kds_bridge_log(v->bridge) : NULL;
  if (!log || !kd_runlog_nseries(log)) return FALSE;
  int nl = 0;
  for (int i = 0; i < kd_runlog_nseries(log) && nl < MAXS; i++) {
    KdRunSeries s = kd_runlog_series(log, i);
    if (!is_loss(s.name) || !s.n) continue;
    p->loss[nl++] = (KdFigSeries){s.name, s.x, s.y, s.n, -1, !strcmp(s.name, "loss") ? 1 : 0, 0};
  }
  int na = 0;
  static const char *apn[2] = {"eval.AP", "eval.AP50"};
  for (int i = 0; i < 2; i++) {
    KdRunSeries s = kd_runlog_find(log, apn[i]);
    if (s.n) p->ap[na++] = (KdFigSeries){apn[i] + 5, s.x, s.y, s.n, -1, i, 1};
  }
  int nm = 0;
  for (int i = 0; i < kd_runlog_nevents(log) && nm < MAXM; i++) {
    KdRunEvent e = kd_runlog_event(log, i);
    if (strcmp(e.type, "set") && strcmp(e.type, "nonfinite")) continue;
    if (!strcmp(e.type, "set")) g_snprintf(p->labels[nm], sizeof p->labels[nm], "%s %s\xe2\x86\x92%s", e.key, e.old, e.value);
    else g_snprintf(p->labels[nm], sizeof p->labels[nm], "non-finite");
    p->markers[nm] = (KdFigMarker){e.step, p->labels[nm]};
    nm++;
  }
  KdFigPlot base = {.xlabel = "step", .markers = p->markers, .nmarkers = nm, .smooth = v->smooth, .xmin = NAN, .xmax = NAN,
                    .ymin = NAN, .ymax = NAN};
  p->spec.loss = base;
  p->spec.loss.title = "losses (weighted parts)";
  p->spec.loss.ylabel = "loss";
  p->spec.loss.series = p->loss;
  p->spec.loss.nseries = nl;
  p->spec.loss.logy = v->logy;
  p->spec.ap = base;
  p->spec.ap.title = "COCO AP (val)";
  p->spec.ap.ylabel = "AP";
  p->spec.ap.series = p->ap;
  p->spec.ap.nseries = na;
  p->spec.ap.smooth.kind = KD_SMOOTH_NONE;
  *out = kd_fig_curves_panel(&p->spec);
  return TRUE;
}

static void kds_curves_panel_class_init(KdsCurvesPanelClass *k) {
  KDS_PANEL_CLASS(k)->build = build;
  KDS_PANEL_CLASS(k)->kind = "curves";
}
static void kds_curves_panel_init(KdsCurvesPanel *p) { (void)p; }
