/* The run browser and the window's run controls, in-process under Xvfb,
 * over a folder of real runs made by the kdscope binary: two finished
 * (FitNet, DeFeat), one stopped by `kdscope stop`, one failed (a non-finite
 * loss, then stopped) and one kept running. Checks the table's rows and
 * statuses, sorting by columns, three runs compared in the window (three
 * series drawn, a fourth for the window's own run), the hyperparameter
 * view, the follow offer for a run another process drives, Stop's
 * confirmation (Cancel keeps the run going, Stop stops it), resuming the
 * stopped run in the window, every panel reachable at 1600x1000 with the
 * curves on screen, the layout choice surviving a new window, and
 * `kdscope window --follow FOLDER`. Skips (77) without a display.
 * Usage: test_run_browser KDSCOPE */
#include <fcntl.h>
#include <gtk/gtk.h>
#include <signal.h>
#include <sys/wait.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "ui_wait.h"
#include "model/detector.h"
#include "model/safetensors.h"
#include "run_browser_hparams.h"
#include "window.h"

static const char *kd;
static char tmp[1024], runs[1200], cfgpath[1300];

/* ---- processes ---- */

static pid_t start(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

static int finish(pid_t pid) {
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run(char *const argv[]) {
  char log[1400];
  snprintf(log, sizeof log, "%s/cmd.log", tmp);
  return finish(start(argv, log));
}

#define KD(...) ((char *const[]){(char *)kd, __VA_ARGS__, NULL})

static char *run_dir(const char *name) {
  static char buf[4][1400];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", runs, name);
  return buf[k];
}

static gboolean wait_steps(const char *dir, int steps, int ms) {
  for (int i = 0; i < ms / 10; i++) {
    if (fixture_last_step(dir) >= steps) return TRUE;
    fixture_sleep_ms(10);
  }
  return FALSE;
}

/* A distillation in the background, one method and seed, "long" (stopped by hand). */
static pid_t start_distill(const char *name, const char *method, const char *seed, const char *extra) {
  char log[1400], m[64], s[64];
  snprintf(log, sizeof log, "%s/%s.log", tmp, name);
  snprintf(m, sizeof m, "distill.methods=%s", method);
  snprintf(s, sizeof s, "train.seed=%s", seed);
  return start(KD("distill", "--config", cfgpath, "--out", run_dir(name), "--steps", "1000000", "--set", m, "--set", s,
                  "--set", (char *)extra, "--quiet"),
               log);
}

/* ---- the main loop ---- */

static GtkWidget *find_widget(GtkWidget *w, GType type, const char *label) {
  if (G_TYPE_CHECK_INSTANCE_TYPE(w, type)) {
    const char *l = GTK_IS_BUTTON(w) ? gtk_button_get_label(GTK_BUTTON(w)) : GTK_IS_EXPANDER(w) ? gtk_expander_get_label(GTK_EXPANDER(w)) : NULL;
    if (!label || !g_strcmp0(l, label)) return w;
  }
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
    GtkWidget *hit = find_widget(c, type, label);
    if (hit) return hit;
  }
  return NULL;
}

static const KdRunSummary *row_named(KdsRunBrowser *b, const char *name, int *index) {
  for (int i = 0; i < kds_run_browser_n_rows(b); i++)
    if (!strcmp(kds_run_browser_row(b, i)->name, name)) {
      if (index) *index = i;
      return kds_run_browser_row(b, i);
    }
  return NULL;
}

static int compare_series(KdsWindow *w, const char ***names) {
  KdFigPanel fp;
  if (!kds_panel_build(kds_window_get_compare_panel(w), &fp)) return 0;
  const KdFigPlot *p = fp.spec;
  static const char *buf[32];
  for (int i = 0; i < p->nseries && i < 32; i++) buf[i] = p->series[i].name;
  if (names) *names = buf;
  return p->nseries;
}

/* ---- checks ---- */

static void check_table(KdsRunBrowser *b) {
  CHECK_MSG(kds_run_browser_n_rows(b) == 5, "%d rows, want 5", kds_run_browser_n_rows(b));
  static const struct {
    const char *name, *methods;
    int seed;
    KdRunStatusKind status;
  } want[] = {{"fitnet-s1", "fitnet", 1, KD_RUNST_FINISHED},
              {"defeat-s2", "defeat", 2, KD_RUNST_FINISHED},
              {"fgd-s3", "fgd", 3, KD_RUNST_STOPPED},
              {"nan-s4", "fitnet", 4, KD_RUNST_FAILED},
              {"live-s5", "fitnet", 5, KD_RUNST_RUNNING}};
  for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
    const KdRunSummary *s = row_named(b, want[i].name, NULL);
    CHECK_MSG(s != NULL, "no row %s", want[i].name);
    if (!s) continue;
    CHECK_MSG(!strcmp(s->methods, want[i].methods) && s->seed == want[i].seed && s->status == want[i].status,
              "%s: methods %s seed %d status %s (%s)", s->name, s->methods, s->seed, kd_run_status_label(s->status), s->detail);
  }
  const KdRunSummary *f = row_named(b, "fitnet-s1", NULL), *st = row_named(b, "fgd-s3", NULL);
  if (f) {
    char wts[256];
    kd_run_summary_weights(f, wts, sizeof wts);
    CHECK_MSG(f->steps_done == 20 && f->steps_total == 20 && fabs(f->lr - 0.01) < 1e-12 && f->ap >= 0 && f->ap_step == 20 &&
                  !strcmp(wts, "fitnet.weight=1"),
              "fitnet-s1: done %d of %d, lr %g, AP %g at %d, weights '%s'", f->steps_done, f->steps_total, f->lr, f->ap,
              f->ap_step, wts);
  }
  if (st) CHECK_MSG(st->steps_done >= 12 && st->checkpoint >= 10 && kd_run_summary_resumable(st), "fgd-s3: done %d, checkpoint %d",
                    st->steps_done, st->checkpoint);
}

static void check_sorting(KdsRunBrowser *b) {
  CHECK(kds_run_browser_sort(b, "seed", TRUE));
  for (int i = 1; i < kds_run_browser_n_rows(b); i++)
    CHECK_MSG(kds_run_browser_row(b, i - 1)->seed >= kds_run_browser_row(b, i)->seed, "seed descending: row %d", i);
  CHECK(!strcmp(kds_run_browser_row(b, 0)->name, "live-s5"));
  CHECK(kds_run_browser_sort(b, "status", FALSE));
  for (int i = 1; i < kds_run_browser_n_rows(b); i++)
    CHECK(kds_run_browser_row(b, i - 1)->status <= kds_run_browser_row(b, i)->status);
  CHECK(kds_run_browser_row(b, 0)->status == KD_RUNST_RUNNING);
  CHECK(kds_run_browser_sort(b, "done", TRUE) && kds_run_browser_row(b, 0)->steps_done >= kds_run_browser_row(b, 4)->steps_done);
  CHECK(kds_run_browser_sort(b, "run", FALSE));
  for (int i = 1; i < kds_run_browser_n_rows(b); i++)
    CHECK(strcmp(kds_run_browser_row(b, i - 1)->name, kds_run_browser_row(b, i)->name) < 0);
  CHECK(!kds_run_browser_sort(b, "nonesuch", FALSE));
}

static void select_named(KdsRunBrowser *b, const char *const *names, int n) {
  int rows[8], k = 0;
  for (int i = 0; i < n; i++)
    if (row_named(b, names[i], &rows[k])) k++;
  kds_run_browser_select(b, rows, k);
  CHECK(kds_run_browser_n_selected(b) == n);
}

static void check_compare(KdsWindow *w, KdsRunBrowser *b) {
  const char *three[] = {"fitnet-s1", "defeat-s2", "fgd-s3"};
  select_named(b, three, 3);
  GError *e = NULL;
  CHECK_MSG(kds_run_browser_compare(b, &e), "compare: %s", e ? e->message : "");
  g_clear_error(&e);
  CHECK(kds_compare_count(kds_window_get_compare(w)) == 3);
  const char **names = NULL;
  int n = compare_series(w, &names);
  CHECK_MSG(n == 3, "%d series compared, want 3", n);
  /* In the table's order (by name), each named by its directory, each its own colour. */
  const char *by_name[] = {"defeat-s2", "fgd-s3", "fitnet-s1"};
  for (int i = 0; i < n && i < 3; i++) CHECK_MSG(!strcmp(names[i], by_name[i]), "series %d is '%s'", i, names[i]);
  cairo_surface_t *s = kds_panel_render(kds_window_get_compare_panel(w), 900, 0, 1.0);
  CHECK_MSG(variance(s) > 1.0, "the compare chart renders blank");
  cairo_surface_destroy(s);
  /* The hyperparameter view over the same three: seed against the last AP. */
  CHECK(kds_run_browser_set_hparam(b, "train.seed"));
  KdFigPanel fp;
  CHECK_MSG(kds_panel_build(kds_run_browser_hparam_panel(b), &fp), "the hyperparameter view draws nothing");
  const KdRunSummary *sel[3];
  for (int i = 0; i < 3; i++) sel[i] = row_named(b, three[i], NULL);
  KdHparamStore *hs = kd_hparam_store_new();
  int left = -1;
  KdError err;
  CHECK(sel[0] && sel[1] && sel[2] && kd_hparam_build(sel, 3, "train.seed", hs, &fp, &left, &err) == 0);
  double x, ap;
  CHECK(kd_hparam_point(hs, 2, &x, &ap, NULL) == 3 && left == 0 && x == 3 && ap >= 0);
  const char *keys[KD_HPARAM_MAX_KEYS];
  int nk = kd_hparam_keys(sel, 3, keys, KD_HPARAM_MAX_KEYS);
  CHECK_MSG(nk >= 5 && !strcmp(keys[0], "train.lr") && !strcmp(keys[1], "train.seed") && !strcmp(keys[2], "fitnet.weight") &&
                !strcmp(keys[3], "defeat.weight"),
            "%d keys, first %s", nk, nk ? keys[0] : "");
  kd_hparam_store_free(hs);
  printf("compare: 3 runs drawn; hyperparameters: %d settings offered\n", nk);
}

static gboolean window_has_snapshot(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && kds_bridge_snapshot_count(b) > 0;
}

static gboolean allocated(gpointer p) { return gtk_widget_get_mapped(p) && gtk_widget_get_height(p) > 0; }

/* Every panel is on screen, fully or from its top, with the curves. */
static void check_reachable(KdsWindow *w) {
  KdsLayout *l = kds_window_get_layout(w);
  int ww = gtk_widget_get_width(GTK_WIDGET(w)), wh = gtk_widget_get_height(GTK_WIDGET(w));
  CHECK_MSG(ww >= 1500 && wh >= 900, "the window is %d x %d", ww, wh);
  KdsPanel *curves = NULL;
  for (int i = 0; i < kds_window_panel_count(w); i++)
    if (!strcmp(kds_panel_kind(kds_window_get_panel(w, i)), "curves")) curves = kds_window_get_panel(w, i);
  for (int i = 0; i <= kds_window_panel_count(w); i++) {
    KdsPanel *p = i < kds_window_panel_count(w) ? kds_window_get_panel(w, i) : kds_window_get_compare_panel(w);
    const char *name = kds_panel_kind(p);
    KdFigPanel fp;
    if (kds_panel_figure(p) && !kd_snapfig_shown(kds_panel_figure(p), NULL) && !kds_panel_build(p, &fp))
      continue; /* a two-stage panel: hidden for these RetinaNet runs */
    kds_layout_show(l, name);
    wait_for(allocated, p, 10000); /* the tab's page lays out in a frame or two (longer under load) */
    pump(50);
    graphene_rect_t r, c;
    gboolean on = gtk_widget_get_mapped(GTK_WIDGET(p)) && gtk_widget_compute_bounds(GTK_WIDGET(p), GTK_WIDGET(w), &r);
    gboolean con = curves && gtk_widget_get_mapped(GTK_WIDGET(curves)) && gtk_widget_compute_bounds(GTK_WIDGET(curves), GTK_WIDGET(w), &c);
    CHECK_MSG(on && r.origin.y >= 0 && r.origin.y + 100 < wh && r.size.height >= 100, "panel %s: %s at y %.0f, %.0f px tall",
              name, on ? "mapped" : "not mapped", on ? r.origin.y : -1, on ? r.size.height : 0);
    CHECK_MSG(con && c.origin.y >= 0 && c.origin.y + c.size.height <= wh && c.size.height > 200,
              "with %s shown the curves are %s", name, con ? "partly off screen" : "not mapped");
    if (on) {
      /* The figure's own height for its width (the page may be taller). */
      int min, nat;
      gtk_widget_measure(GTK_WIDGET(p), GTK_ORIENTATION_VERTICAL, (int)r.size.width, &min, &nat, NULL, NULL);
      GtkWidget *sw = gtk_widget_get_ancestor(GTK_WIDGET(p), GTK_TYPE_SCROLLED_WINDOW);
      graphene_rect_t vr;
      if (!sw || !gtk_widget_compute_bounds(sw, GTK_WIDGET(w), &vr)) vr = r;
      double seen = fmin(1.0, fmin(vr.size.height, wh - r.origin.y) / nat);
      printf("layout 1600x1000, tabs: %-10s at y %4.0f, figure %4d x %4d px, %3.0f%% of it on screen without scrolling\n",
             name, r.origin.y, (int)r.size.width, nat, 100 * seen);
    }
  }
}

static void click(GtkWidget *b) { g_signal_emit_by_name(b, "clicked"); }

static gboolean no_confirmation(gpointer w) { return kds_window_stop_confirmation(w) == NULL; }

static gboolean state_is_stopped(gpointer w) {
  KdRunStatus st;
  kds_bridge_status(kds_window_get_bridge(w), &st);
  return st.state == KD_RUN_STOPPED;
}

static gboolean resume_shown(gpointer w) { return gtk_widget_get_visible(kds_window_get_resume_button(w)); }

static void check_stop_confirmation(KdsWindow *w, pid_t live) {
  const char *dir = run_dir("live-s5");
  gtk_widget_activate_action(GTK_WIDGET(w), "win.stop", NULL);
  pump(100);
  GtkWidget *d = kds_window_stop_confirmation(w);
  CHECK_MSG(d != NULL && gtk_widget_get_visible(d), "Stop asked nothing");
  if (!d) return;
  int before = fixture_last_step(dir);
  click(find_widget(d, GTK_TYPE_BUTTON, "_Cancel"));
  CHECK(wait_for(no_confirmation, w, 2000));
  CHECK_MSG(wait_steps(dir, before + 5, 20000), "the run did not go on after Cancel (step %d)", fixture_last_step(dir));
  CHECK_MSG(waitpid(live, NULL, WNOHANG) == 0 && fixture_count_events(dir, "stop") == 0, "Cancel stopped the run");
  gtk_widget_activate_action(GTK_WIDGET(w), "win.stop", NULL);
  pump(100);
  d = kds_window_stop_confirmation(w);
  CHECK(d != NULL);
  if (d) click(find_widget(d, GTK_TYPE_BUTTON, "_Stop the run"));
  int rc = finish(live);
  CHECK_MSG(rc == 0 && fixture_count_events(dir, "stop") == 1, "after Stop: exit %d, %d stop events", rc, fixture_count_events(dir, "stop"));
  printf("stop: Cancel kept the run going (step %d -> %d); Stop stopped it at step %d\n", before, before + 5, fixture_last_step(dir));
}

static gboolean four_series(gpointer w) { return compare_series(w, NULL) == 4; }

static void check_follow_offer(KdsWindow *w) {
  GError *e = NULL;
  CHECK(kds_window_resume_run(w, run_dir("live-s5"), &e));
  g_clear_error(&e);
  CHECK_MSG(!strcmp(kds_window_page(w), "offer"), "resuming a run another process drives shows page %s", kds_window_page(w));
  click(find_widget(GTK_WIDGET(w), GTK_TYPE_BUTTON, "Follow it"));
  KdsBridge *b = kds_window_get_bridge(w);
  CHECK_MSG(!strcmp(kds_window_page(w), "main") && b && !kds_bridge_is_local(b) && !strcmp(kds_bridge_run_dir(b), run_dir("live-s5")),
            "Follow it: page %s", kds_window_page(w));
  /* The window's own run joins the three compared (once its log is read). */
  const char **names = NULL;
  CHECK(wait_for(four_series, w, 10000));
  int n = compare_series(w, &names);
  CHECK_MSG(n == 4 && !strcmp(names[0], "live-s5 (this run)"), "%d series with the followed run, first '%s'", n, n ? names[0] : "");
}

static void check_resume(KdsWindow *w, KdsRunBrowser *b) {
  const char *dir = run_dir("fgd-s3");
  kds_run_browser_refresh(b);
  const char *one[] = {"fgd-s3"};
  select_named(b, one, 1);
  int stopped_at = fixture_last_step(dir), resumes = fixture_count_events(dir, "resume");
  GError *e = NULL;
  CHECK_MSG(kds_run_browser_resume(b, &e), "resume: %s", e ? e->message : "");
  g_clear_error(&e);
  KdsBridge *br = kds_window_get_bridge(w);
  CHECK(br && kds_bridge_is_local(br) && !strcmp(kds_bridge_run_dir(br), dir));
  CHECK_MSG(wait_steps(dir, stopped_at + 5, 30000), "the resumed run did not go on past step %d", stopped_at);
  CHECK(fixture_count_events(dir, "resume") == resumes + 1);
  /* Stop it from the window (confirmed): Resume run is offered again. */
  gtk_widget_activate_action(GTK_WIDGET(w), "win.stop", NULL);
  pump(100);
  GtkWidget *d = kds_window_stop_confirmation(w);
  CHECK(d != NULL);
  if (d) click(find_widget(d, GTK_TYPE_BUTTON, "_Stop the run"));
  CHECK_MSG(wait_for(state_is_stopped, w, 30000), "the resumed run did not stop");
  CHECK_MSG(wait_for(resume_shown, w, 5000), "no Resume run button on the stopped run");
  printf("resume: fgd-s3 stopped at step %d, resumed in the window to step %d\n", stopped_at, fixture_last_step(dir));
}

static const KdsLayoutPrefs *prefs_of(KdsWindow *w) { return kds_layout_prefs(kds_window_get_layout(w)); }

static KdsWindow *new_window(void) {
  KdsWindow *w = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(w), 1600, 1000);
  gtk_window_present(GTK_WINDOW(w));
  pump(300);
  return w;
}

static void check_layout_remembered(KdsWindow *w) {
  gtk_widget_activate_action(GTK_WIDGET(w), "win.layout", "s", "grid-2");
  pump(200);
  GtkWidget *ex = find_widget(GTK_WIDGET(w), GTK_TYPE_EXPANDER, kds_layout_title("masks"));
  CHECK_MSG(prefs_of(w)->mode == KDS_LAYOUT_GRID && prefs_of(w)->columns == 2 && ex, "grid-2 not applied");
  if (ex) gtk_expander_set_expanded(GTK_EXPANDER(ex), FALSE);
  char *path = kds_layout_prefs_path(), *text = NULL;
  CHECK_MSG(g_file_get_contents(path, &text, NULL, NULL) && strstr(text, "mode=grid") && strstr(text, "columns=2") &&
                strstr(text, "collapsed=masks"),
            "%s: %s", path, text ? text : "(missing)");
  g_free(text);
  gtk_window_destroy(GTK_WINDOW(w));
  pump(100);
  KdsWindow *w2 = new_window();
  ex = find_widget(GTK_WIDGET(w2), GTK_TYPE_EXPANDER, kds_layout_title("masks"));
  GtkWidget *ex2 = find_widget(GTK_WIDGET(w2), GTK_TYPE_EXPANDER, kds_layout_title("gap"));
  CHECK_MSG(prefs_of(w2)->mode == KDS_LAYOUT_GRID && prefs_of(w2)->columns == 2 && ex && !gtk_expander_get_expanded(GTK_EXPANDER(ex)) &&
                ex2 && gtk_expander_get_expanded(GTK_EXPANDER(ex2)),
            "a new window did not restore grid-2 with masks collapsed");
  /* Back to tabs, the attention tab last shown. */
  gtk_widget_activate_action(GTK_WIDGET(w2), "win.layout", "s", "tabs");
  pump(100);
  GtkWidget *nb = find_widget(GTK_WIDGET(w2), GTK_TYPE_NOTEBOOK, NULL);
  CHECK(nb != NULL);
  for (int i = 0; nb && i < gtk_notebook_get_n_pages(GTK_NOTEBOOK(nb)); i++)
    if (!g_strcmp0(gtk_notebook_get_tab_label_text(GTK_NOTEBOOK(nb), gtk_notebook_get_nth_page(GTK_NOTEBOOK(nb), i)),
                   kds_layout_title("attention")))
      gtk_notebook_set_current_page(GTK_NOTEBOOK(nb), i);
  pump(100);
  gtk_window_destroy(GTK_WINDOW(w2));
  pump(100);
  KdsWindow *w3 = new_window();
  nb = find_widget(GTK_WIDGET(w3), GTK_TYPE_NOTEBOOK, NULL);
  const char *tab = nb ? gtk_notebook_get_tab_label_text(GTK_NOTEBOOK(nb), gtk_notebook_get_nth_page(GTK_NOTEBOOK(nb),
                                                                                                     gtk_notebook_get_current_page(GTK_NOTEBOOK(nb))))
                       : NULL;
  CHECK_MSG(prefs_of(w3)->mode == KDS_LAYOUT_TABS && !g_strcmp0(tab, kds_layout_title("attention")),
            "a new window shows tab %s", tab ? tab : "(none)");
  /* A bad file: the message names it, the key and what was expected; the rest still applies. */
  KdsLayoutPrefs bad;
  GError *e = NULL;
  CHECK(g_file_set_contents(path, "[layout]\nmode=diagonal\ntab=masks\n", -1, NULL));
  CHECK(!kds_layout_prefs_load(&bad, &e) && e && strstr(e->message, path) && strstr(e->message, "mode=diagonal, expected tabs or grid"));
  CHECK(bad.mode == KDS_LAYOUT_TABS && !strcmp(bad.tab, "masks"));
  g_clear_error(&e);
  CHECK(g_file_set_contents(path, "[layout]\nmode=grid\ncolumns=7\n", -1, NULL));
  CHECK(!kds_layout_prefs_load(&bad, &e) && e && strstr(e->message, "columns=7, expected 1 to 3"));
  g_clear_error(&e);
  printf("layout: %s remembered across windows\n", path);
  g_free(path);
  gtk_window_destroy(GTK_WINDOW(w3));
  pump(100);
}

/* `kdscope window --follow FOLDER` opens the browser (no "not a run
 * directory"); a path that is neither is refused before a window opens. */
static void check_cli(void) {
  char log[1400], *out = NULL;
  snprintf(log, sizeof log, "%s/window.log", tmp);
  g_setenv("KDSCOPE_QUIT_AFTER", "3", TRUE);
  int rc = finish(start(KD("window", "--follow", runs), log));
  CHECK_MSG(rc == 0 && g_file_get_contents(log, &out, NULL, NULL) && !strstr(out, "not a run directory"), "window --follow %s: exit %d: %s",
            runs, rc, out ? out : "");
  g_free(out), out = NULL;
  rc = finish(start(KD("window", "--follow", "/nonesuch/runs"), log));
  CHECK_MSG(rc == 1 && g_file_get_contents(log, &out, NULL, NULL) && strstr(out, "not a run directory nor a folder of runs"),
            "window --follow /nonesuch/runs: exit %d: %s", rc, out ? out : "");
  g_free(out);
  g_unsetenv("KDSCOPE_QUIT_AFTER");
}

static int setup_runs(pid_t *live) {
  char data[1300], tcfg[1300], tck[1300], text[8192];
  if (fixture_data(tmp, data, sizeof data)) return -1;
  snprintf(tcfg, sizeof tcfg, "%s/teacher.json", tmp);
  snprintf(tck, sizeof tck, "%s/teacher.safetensors", tmp);
  const char *model = "\"model\": {\"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"head_convs\": 1}";
  snprintf(text, sizeof text, "{%s, \"data\": {\"size\": 64}}\n", model);
  if (!g_file_set_contents(tcfg, text, -1, NULL)) return -1;
  KdError err;
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = 16, mc.head.convs = 1;
  KdModel *teacher = kd_model_new(&mc, 9, &err); /* random weights drive a run as well */
  if (!teacher || kd_safetensors_save(tck, kd_model_params(teacher), NULL, &err)) return -1;
  kd_model_free(teacher);
  snprintf(cfgpath, sizeof cfgpath, "%s/distill.json", tmp);
  snprintf(text, sizeof text,
           "{\"name\": \"student\", %s, \"data\": {\"size\": 64, \"dir\": \"%s\"},\n"
           " \"teacher\": {\"config\": \"%s\", \"checkpoint\": \"%s\"},\n"
           " \"train\": {\"batch\": 2, \"steps\": 20, \"warmup_steps\": 4, \"log_every\": 1, \"eval_every\": 10,\n"
           "           \"checkpoint_every\": 10, \"eval_images\": 4, \"threads\": 1}}\n",
           model, data, tcfg, tck);
  if (!g_file_set_contents(cfgpath, text, -1, NULL)) return -1;
  snprintf(runs, sizeof runs, "%s/runs", tmp);
  g_mkdir_with_parents(runs, 0755);
  CHECK(run(KD("distill", "--config", cfgpath, "--out", run_dir("fitnet-s1"), "--set", "distill.methods=fitnet", "--set",
               "train.seed=1", "--set", "train.lr=0.01", "--set", "probe.budget=0", "--quiet")) == 0);
  CHECK(run(KD("distill", "--config", cfgpath, "--out", run_dir("defeat-s2"), "--set", "distill.methods=defeat", "--set",
               "train.seed=2", "--set", "train.lr=0.005", "--set", "probe.budget=0", "--quiet")) == 0);
  /* Stopped by `kdscope stop` past its first checkpoint. */
  pid_t p = start_distill("fgd-s3", "fgd", "3", "probe.budget=0");
  CHECK_MSG(wait_steps(run_dir("fgd-s3"), 12, 60000), "fgd-s3 did not reach step 12");
  CHECK(run(KD("stop", run_dir("fgd-s3"), "--wait")) == 0);
  CHECK(finish(p) == 0);
  /* A non-finite loss pauses it; stopped so, it failed. */
  p = start_distill("nan-s4", "fitnet", "4", "debug.inject_nan_step=5");
  for (int i = 0; i < 6000 && !fixture_count_events(run_dir("nan-s4"), "nonfinite"); i++) fixture_sleep_ms(10);
  CHECK_MSG(fixture_count_events(run_dir("nan-s4"), "nonfinite") == 1, "nan-s4 never went non-finite");
  CHECK(run(KD("stop", run_dir("nan-s4"), "--wait")) == 0);
  CHECK(finish(p) == 0);
  /* Kept running, probed (its snapshots fill the panels). */
  *live = start_distill("live-s5", "fitnet", "5", "probe.budget=0.1");
  CHECK_MSG(wait_steps(run_dir("live-s5"), 3, 60000), "live-s5 did not start");
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_run_browser KDSCOPE\n");
    return 1;
  }
  kd = argv[1];
  g_setenv("GTK_A11Y", "none", TRUE);
  g_setenv("GSK_RENDERER", "cairo", TRUE);
  g_setenv("GDK_DEBUG", "gl-disable", TRUE);
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "browser") == 0);
  /* A user of our own: the layout file starts absent. */
  char xdg[1200];
  snprintf(xdg, sizeof xdg, "%s/config", tmp);
  g_setenv("XDG_CONFIG_HOME", xdg, TRUE);
  int skip = ui_test_start();
  if (skip) return skip;
  pid_t live = -1;
  if (setup_runs(&live)) {
    CHECK_MSG(0, "could not set the runs up in %s", tmp);
    return check_status("test_run_browser");
  }
  KdsWindow *w = new_window();
  kds_window_set_bridge(w, NULL);
  CHECK(!strcmp(kds_window_page(w), "empty"));
  GError *e = NULL;
  KdsRunBrowser *b = kds_window_browse(w, runs, &e);
  CHECK_MSG(b != NULL, "browse: %s", e ? e->message : "");
  g_clear_error(&e);
  if (b) {
    pump(300);
    check_table(b);
    check_sorting(b);
    check_compare(w, b);
    check_follow_offer(w);
    CHECK_MSG(wait_for(window_has_snapshot, w, 60000), "the followed run wrote no snapshot in 60 s");
    pump(800);
    check_reachable(w);
    check_stop_confirmation(w, live), live = -1;
    check_resume(w, b);
    kds_run_browser_refresh(b);
    const KdRunSummary *s = row_named(b, "live-s5", NULL);
    CHECK_MSG(s && s->status == KD_RUNST_STOPPED, "live-s5 after Stop: %s", s ? kd_run_status_label(s->status) : "no row");
  }
  if (live > 0) kill(live, SIGTERM), finish(live);
  check_layout_remembered(w);
  check_cli();
  if (!check_failures) fixture_rmrf(tmp);
  else printf("kept %s for inspection\n", tmp);
  return check_status("test_run_browser");
}
