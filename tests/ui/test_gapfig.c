/* The figures of the gap each loss sees, on a small real run (probe_run.h:
 * FitNet + DeFeat): the gap figure draws the raw gap labelled as such and
 * each active method's loss map (gap.<method>) labelled with the method
 * and what its loss applies, from the snapshot's own fields; with all
 * levels, each map at every level on one colour range per map, whole maps
 * while 8 fit and the title naming what was left out; the masks the
 * same; FGD's attention greyed under "FGD off" when FGD is not active
 * (and drawn plainly when it is); the grid's gap column the first active
 * method's, or the one asked for, with refusals naming the problem.
 * Usage: test_gapfig OUTDIR. Exits 77 without the data source. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "probe_run.h"
#include "snapfig.h"

static KdSnapshot *snap;
static char outdir[2048];

static const KdFigMaps *build(const char *kind, KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *p) {
  KdError err;
  int rc = kd_snapfig_build(kd_snapfig_find(kind), v, st, p, &err);
  CHECK_MSG(rc == 0, "%s: %s", kind, err.msg);
  return rc ? NULL : p->spec;
}

static const float *field(int image, const char *level, const char *what) {
  const KdSnapField *f = kd_snapshot_findf(snap, "img%d.%s.%s", image, level, what);
  CHECK_MSG(f != NULL, "no img%d.%s.%s", image, level, what);
  return f ? f->data : NULL;
}

static void check_gap(void) {
  KdSnapFigStore *st = kd_snapfig_store_new();
  KdSnapFigView v;
  KdFigPanel p;
  kd_snapfig_view_default(&v);
  v.snap = snap, v.image = 1, v.level = 1;
  const KdFigMaps *m = build("gap", &v, st, &p);
  if (m) {
    static const char *titles[5] = {"teacher energy", "student energy", "raw gap (S \xe2\x88\x92 T)\xc2\xb2", "FitNet gap",
                                    "DeFeat gap"};
    static const char *what[5] = {"t_energy", "s_energy", "gap", "gap.fitnet", "gap.defeat"};
    CHECK_MSG(m->n == 5, "%d maps", m->n);
    for (int i = 0; i < m->n && i < 5; i++) {
      CHECK_MSG(!strcmp(m->items[i].title, titles[i]), "map %d: '%s'", i, m->items[i].title);
      CHECK_MSG(m->items[i].map.v == field(1, "P4", what[i]) && m->items[i].map.h == 4, "map %d is not %s", i, what[i]);
    }
    const char *lab[3] = {m->groups[m->items[2].group].label, m->groups[m->items[3].group].label,
                          m->groups[m->items[4].group].label};
    CHECK_MSG(strstr(lab[0], "no method") && !strcmp(lab[1], "after adapter") && !strcmp(lab[2], "after adapter, fg/bg weighted"),
              "labels '%s' '%s' '%s'", lab[0], lab[1], lab[2]);
    CHECK(m->items[3].group != m->items[4].group && m->items[2].group != m->items[3].group);
    CHECK_MSG(strstr(m->title, "P4: ") == m->title && strstr(m->title, "the gap each loss sees"), "title '%s'", m->title);
  }
  /* every level: FitNet's and DeFeat's maps at P3..P5 (6), the raw gap would make 9 */
  v.all_levels = 1;
  m = build("gap", &v, st, &p);
  if (m) {
    CHECK_MSG(m->n == 6 && m->ngroups == 2, "%d maps, %d groups", m->n, m->ngroups);
    static const char *lv[3] = {"P3", "P4", "P5"};
    for (int i = 0; i < m->n && i < 6; i++) {
      char want[64];
      snprintf(want, sizeof want, "%s gap %s", i < 3 ? "FitNet" : "DeFeat", lv[i % 3]);
      CHECK_MSG(!strcmp(m->items[i].title, want) && m->items[i].group == i / 3, "map %d: '%s' group %d", i, m->items[i].title,
                m->items[i].group);
      CHECK(m->items[i].map.v == field(1, lv[i % 3], i < 3 ? "gap.fitnet" : "gap.defeat"));
      CHECK(m->items[i].map.h == 8 >> (i % 3));
    }
    CHECK_MSG(strstr(m->title, "P3\xe2\x80\x93P5") && strstr(m->title, "raw gap left out: 8 maps at most"), "title '%s'", m->title);
    CHECK(strstr(m->groups[1].label, "DeFeat gap: after adapter, fg/bg weighted") != NULL);
  }
  m = build("masks", &v, st, &p);
  if (m) {
    CHECK_MSG(m->n == 6 && !strcmp(m->items[0].title, "GT fg P3") && !strcmp(m->items[5].title, "defeat.fg P5"),
              "%d masks: '%s' .. '%s'", m->n, m->n ? m->items[0].title : "", m->n ? m->items[m->n - 1].title : "");
    CHECK(m->n == 6 && m->items[4].map.v == field(1, "P4", "mask.defeat.fg"));
  }
  kd_snapfig_store_free(st);
}

/* Mean brightness of a panel rendered at 400 x its height. */
static double brightness(const KdFigPanel *p, const char *png) {
  KdFigStyle sty;
  kd_fig_style_default(&sty);
  double h = p->height_for_width(400, &sty, p->spec);
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 400, (int)h);
  cairo_t *cr = cairo_create(s);
  kd_fig_paint(cr, p, &sty, 400, h, 1.0);
  cairo_destroy(cr);
  cairo_surface_flush(s);
  cairo_surface_write_to_png(s, png);
  double sum = 0;
  int W = cairo_image_surface_get_width(s), H = cairo_image_surface_get_height(s), stride = cairo_image_surface_get_stride(s);
  const unsigned char *d = cairo_image_surface_get_data(s);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const unsigned char *px = d + (size_t)y * stride + 4 * x;
      sum += px[0] + px[1] + px[2];
    }
  cairo_surface_destroy(s);
  return sum / (3.0 * W * H);
}

static void check_attention(void) {
  KdSnapFigStore *st = kd_snapfig_store_new(), *st2 = kd_snapfig_store_new();
  KdSnapFigView v;
  KdFigPanel off, on;
  kd_snapfig_view_default(&v);
  v.snap = snap;
  char path[2200], saved[sizeof snap->methods];
  CHECK(build("attention", &v, st, &off) != NULL);
  snprintf(path, sizeof path, "%s/attention_fgd_off.png", outdir);
  double b_off = brightness(&off, path);
  /* the same snapshot as if FGD were on: drawn plainly */
  memcpy(saved, snap->methods, sizeof saved);
  snprintf(snap->methods, sizeof snap->methods, "fitnet,defeat,fgd");
  CHECK(build("attention", &v, st2, &on) != NULL);
  snprintf(path, sizeof path, "%s/attention_fgd_on.png", outdir);
  double b_on = brightness(&on, path);
  memcpy(snap->methods, saved, sizeof saved);
  CHECK_MSG(off.draw != on.draw && on.height_for_width && off.pick, "FGD off is drawn as FGD on");
  CHECK_MSG(b_off > b_on + 10, "greyed %.1f vs plain %.1f mean brightness", b_off, b_on);
  printf("attention: mean brightness %.1f with FGD off (greyed), %.1f with FGD on\n", b_off, b_on);
  /* the attention's own title names whose attention it is */
  const KdFigAttention *a = on.spec;
  CHECK_MSG(a->title && strstr(a->title, "FGD's spatial and channel attention"), "title '%s'", a->title ? a->title : "");
  kd_snapfig_store_free(st);
  kd_snapfig_store_free(st2);
}

static void check_grid(void) {
  KdSnapFigStore *st = kd_snapfig_store_new();
  KdSnapFigView v;
  KdFigPanel p;
  KdError err;
  kd_snapfig_view_default(&v);
  v.snap = snap;
  const KdFigGrid *g = NULL;
  if (kd_snapfig_build(kd_snapfig_find("grid"), &v, st, &p, &err) == 0) g = p.spec;
  CHECK_MSG(g && !strcmp(g->col_titles[KD_FIG_COL_GAP], "FitNet gap") && g->rows[0].gap.v == field(0, "P3", "gap.fitnet"),
            "grid gap column '%s'", g ? g->col_titles[KD_FIG_COL_GAP] : err.msg);
  CHECK_MSG(g && strstr(g->rows[1].label, "(val 1)"), "row label '%s'", g ? g->rows[1].label : "");
  static const char *asks[3][2] = {{"raw", "gap"}, {"defeat", "gap.defeat"}, {NULL, NULL}};
  for (int k = 0; asks[k][0]; k++) {
    v.gap = asks[k][0];
    g = kd_snapfig_build(kd_snapfig_find("grid"), &v, st, &p, &err) == 0 ? p.spec : NULL;
    CHECK_MSG(g && g->rows[2].gap.v == field(2, "P3", asks[k][1]), "--gap %s", asks[k][0]);
  }
  static const char *bad[2][2] = {{"fgd", "grid: --gap fgd: the snapshot at step"}, {"nope", "expected raw or a method"}};
  for (int k = 0; k < 2; k++) {
    v.gap = bad[k][0];
    int rc = kd_snapfig_build(kd_snapfig_find("grid"), &v, st, &p, &err);
    CHECK_MSG(rc == -1 && strstr(err.msg, bad[k][1]), "--gap %s: %s", bad[k][0], rc ? err.msg : "accepted");
  }
  kd_snapfig_store_free(st);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_gapfig OUTDIR\n");
    return 1;
  }
  snprintf(outdir, sizeof outdir, "%s", argv[1]);
  if (!fixture_have_source()) {
    printf("skipped: dataset-fashion-mnist is not installed\n");
    return 77;
  }
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST) return fprintf(stderr, "cannot create %s\n", outdir), 1;
  char dir[1024], run[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "gapfig") == 0);
  if (probe_run_make(dir, 8, 4, run, sizeof run)) return fprintf(stderr, "could not make the run\n"), 1;
  KdError err;
  KdSnapshots *snaps = kd_snapshots_open(run, &err);
  CHECK_MSG(snaps && kd_snapshots_refresh(snaps, &err) >= 0 && kd_snapshots_count(snaps) > 0, "%s", err.msg);
  if (snaps && kd_snapshots_count(snaps) > 0 && kd_snapshot_load(snaps, kd_snapshots_count(snaps) - 1, &snap, &err) == 0) {
    CHECK_MSG(!strcmp(snap->methods, "fitnet,defeat") && snap->nlev == 3, "methods %s, %d levels", snap->methods, snap->nlev);
    check_gap();
    check_attention();
    check_grid();
    kd_snapshot_free(snap);
  }
  kd_snapshots_close(snaps);
  if (!check_failures) fixture_rmrf(dir);
  return check_status("test_gapfig");
}
