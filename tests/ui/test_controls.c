/* Safe controls and discoverability, driven by hand (XTest pointer drags
 * and key presses) under Xvfb:
 *  - the control panel alone: a drag on each slider kind (linear, log,
 *    int) sends one value, on the descriptor's grid; a typed value is sent
 *    and shown exactly; an out-of-range one is sent as typed (for the
 *    receiver to refuse) and the box goes back; arrow keys step the grid;
 *    every box shows the one number format, never cut off;
 *  - the window on a real run (fitnet + DeFeat): drags on a linear and a
 *    log slider log `set` events on the grid, one per drag; a typed value
 *    is logged exactly; Ctrl+Z's action undoes the changes one by one,
 *    newest first, each an undo event of its own that the curves mark as
 *    an undo, and says so when nothing is left; a window following the
 *    run undoes through its control file; the Level menu lists the
 *    snapshot's levels and the level picked is the one every panel draws,
 *    also on the next snapshot; the shortcuts window lists every shortcut
 *    of the table.
 * With KDS_SHOTS_DIR set, screenshots of the sidebar and the shortcuts
 * window go there. Skips (77) without a display. */
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/numfmt.h"
#include "core/param_grid.h"
#include "probe_run.h"
#include "shortcuts.h"
#include "ui_drive.h"
#include "view.h"
#include "window.h"

/* ---- the panel alone ---- */

static const KdParamDesc demo[] = {
    {"demo.lin", "Linear", KD_CFG_FLOAT, 1, 0, 100, 0, 1, NULL, NULL, "a linear float", {0, 0}, "w", "step 0.5"},
    {"demo.log", "Log", KD_CFG_FLOAT, 16, 0, 1000, 1, 1, NULL, NULL, "a log float", {0, 0}, "α_bg", "1,1.2,1.6,2,3,4,5,6,8"},
    {"demo.int", "Int", KD_CFG_INT, 40, 0, 200, 0, 1, NULL, NULL, "an int", {0, 0}, "n", "step 5"},
    {"demo.tiny", "Tiny", KD_CFG_FLOAT, 5e-6, 0, 1, 1, 1, NULL, NULL, "a small float", {0, 0}, "λ", "1,1.6,2,2.5,5,8"},
};
#define NDEMO (int)(sizeof demo / sizeof demo[0])

typedef struct Sent {
  char key[64], value[64];
  int n;
} Sent;

static void on_sent(KdsControlPanel *p, const char *key, const char *value, Sent *s) {
  (void)p;
  g_strlcpy(s->key, key, sizeof s->key);
  g_strlcpy(s->value, value, sizeof s->value);
  s->n++;
}

static const char *box_text(KdsControlPanel *p, const char *key) {
  return gtk_editable_get_text(GTK_EDITABLE(kds_control_panel_entry(p, key)));
}

/* Waits on what the events did, never on time alone: a loaded machine
 * (the sanitizer build beside two trainings) handles them seconds late. */
typedef struct Await {
  const Sent *sent;
  int n;
  GtkWidget *box;
  const char *text;
} Await;

static gboolean sent_reaches(gpointer u) { return ((Await *)u)->sent->n >= ((Await *)u)->n; }
static gboolean box_reads(gpointer u) {
  const Await *a = u;
  return !strcmp(gtk_editable_get_text(GTK_EDITABLE(a->box)), a->text);
}
static gboolean has_focus(gpointer w) { return (gtk_widget_get_state_flags(w) & GTK_STATE_FLAG_FOCUS_WITHIN) != 0; }

/* Focus on box, its text replaced by typing text, then Return. */
static void type_into(GtkWidget *box, const char *text) {
  gtk_widget_grab_focus(box);
  CHECK_MSG(ui_wait_for(has_focus, box, 10000), "the box never took the focus");
  char cmd[200];
  snprintf(cmd, sizeof cmd, "key --clearmodifiers ctrl+a type '%s'", text);
  Await a = {NULL, 0, box, text};
  CHECK(ui_keys(box, cmd) == 0);
  CHECK_MSG(ui_wait_for(box_reads, &a, 20000), "typed '%s', the box reads '%s'", text, gtk_editable_get_text(GTK_EDITABLE(box)));
  CHECK(ui_keys(box, "key Return") == 0);
}

/* What the window does with a value it was sent: the run applies it (or
 * refuses it) and the panel shows the applied value. */
static void apply(KdsControlPanel *p, KdConfig *cfg, const Sent *s) {
  if (kd_config_set(cfg, s->key, s->value, NULL) == 0) kds_control_panel_sync(p, cfg);
}

static void check_boxes(KdsControlPanel *p, const KdConfig *cfg) {
  for (int i = 0; i < NDEMO; i++) {
    GtkSpinButton *sb = kds_control_panel_entry(p, demo[i].key);
    const char *t = gtk_editable_get_text(GTK_EDITABLE(sb));
    char want[40];
    if (demo[i].type == KD_CFG_INT) snprintf(want, sizeof want, "%.0f", kd_config_num(cfg, demo[i].key));
    else kd_num_format(kd_config_num(cfg, demo[i].key), want, sizeof want);
    CHECK_MSG(!strcmp(t, want), "%s shows '%s', not '%s'", demo[i].key, t, want);
    CHECK_MSG(gtk_editable_get_width_chars(GTK_EDITABLE(sb)) >= (int)strlen(t), "%s: '%s' is wider than its box (%d chars)",
              demo[i].key, t, gtk_editable_get_width_chars(GTK_EDITABLE(sb)));
  }
}

static void check_panel(void) {
  KdConfig *cfg = kd_config_new();
  CHECK(cfg && kd_config_register(cfg, demo, NDEMO) == 0);
  GtkWidget *win = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(win), 420, 700);
  KdsControlPanel *p = kds_control_panel_new();
  kds_control_panel_set_debounce(p, 250); /* the window's */
  Sent sent = {"", "", 0};
  g_signal_connect(p, "setting-changed", G_CALLBACK(on_sent), &sent);
  gtk_window_set_child(GTK_WINDOW(win), GTK_WIDGET(p));
  const char *keys[NDEMO + 1];
  for (int i = 0; i < NDEMO; i++) keys[i] = demo[i].key;
  keys[NDEMO] = NULL;
  /* the run starts off the default: reset must return here, not to 40 */
  CHECK(kd_config_set(cfg, "demo.int", "60", NULL) == 0);
  kds_control_panel_rebuild(p, cfg, keys);
  CHECK_MSG(!gtk_widget_get_sensitive(GTK_WIDGET(kds_control_panel_reset(p, "demo.int"))),
            "demo.int's reset is active at the run's own value");
  gtk_window_present(GTK_WINDOW(win));
  ui_pump(500);
  check_boxes(p, cfg); /* 5e-6 shows as 5e-6 (the "0.0000050(" of issue 17) */
  CHECK(!strcmp(box_text(p, "demo.tiny"), "5e-6") && !strcmp(box_text(p, "demo.lin"), "1"));

  /* a 37 px drag on each slider kind: one value, on the grid */
  for (int i = 0; i < 3; i++) {
    const KdParamDesc *d = &demo[i];
    GtkRange *r = kds_control_panel_slider(p, d->key);
    double v0 = kd_config_num(cfg, d->key), f = gtk_range_get_value(r) / 1000.0;
    int n0 = sent.n;
    CHECK(ui_drag(GTK_WIDGET(r), 0.04 + 0.92 * f, 0.5, 37, 6) == 0);
    Await a = {&sent, n0 + 1, NULL, NULL};
    CHECK_MSG(ui_wait_for(sent_reaches, &a, 20000), "%s: a drag sent nothing", d->key);
    ui_pump(800); /* a second value, if the drag sent two, has come by now */
    double v = g_ascii_strtod(sent.value, NULL);
    CHECK_MSG(sent.n == n0 + 1 && !strcmp(sent.key, d->key), "%s: a drag sent %d values (last %s)", d->key, sent.n - n0, sent.key);
    CHECK_MSG(kd_grid_contains(d, v) && v != v0, "%s: the drag from %g sent '%s', off its grid %s or unchanged", d->key, v0,
              sent.value, d->grid);
    printf("drag 37 px on %s (%s): %g -> %s\n", d->key, d->log_scale ? "log" : d->type == KD_CFG_INT ? "int" : "linear", v0, sent.value);
    apply(p, cfg, &sent);
  }
  check_boxes(p, cfg);

  /* typed values: exact, at once */
  static const struct {
    const char *key, *typed;
  } typed[] = {{"demo.log", "0.0123456789"}, {"demo.lin", "3.14159265358979"}, {"demo.tiny", "1.23456789e-7"}};
  for (size_t i = 0; i < G_N_ELEMENTS(typed); i++) {
    GtkWidget *sb = GTK_WIDGET(kds_control_panel_entry(p, typed[i].key));
    int n0 = sent.n;
    type_into(sb, typed[i].typed);
    Await a = {&sent, n0 + 1, NULL, NULL};
    CHECK_MSG(ui_wait_for(sent_reaches, &a, 20000), "typing into %s sent nothing", typed[i].key);
    double want = g_ascii_strtod(typed[i].typed, NULL);
    char canon[40];
    kd_num_format(want, canon, sizeof canon);
    CHECK_MSG(sent.n == n0 + 1 && !strcmp(sent.key, typed[i].key) && g_ascii_strtod(sent.value, NULL) == want &&
                  !strcmp(sent.value, canon),
              "typed '%s' into %s: sent %d values, last %s = '%s'", typed[i].typed, typed[i].key, sent.n - n0, sent.key, sent.value);
    CHECK_MSG(g_ascii_strtod(box_text(p, typed[i].key), NULL) == want, "%s shows '%s' after typing '%s'", typed[i].key,
              box_text(p, typed[i].key), typed[i].typed);
    apply(p, cfg, &sent);
    CHECK(kd_config_num(cfg, typed[i].key) == want);
  }
  check_boxes(p, cfg);

  /* out of range: sent as typed for the receiver to refuse; the box goes back */
  {
    GtkWidget *sb = GTK_WIDGET(kds_control_panel_entry(p, "demo.log"));
    int n0 = sent.n;
    type_into(sb, "5000");
    Await a = {&sent, n0 + 1, sb, "0.0123456789"};
    CHECK_MSG(ui_wait_for(sent_reaches, &a, 20000) && ui_wait_for(box_reads, &a, 20000), "5000 typed: sent %d, the box reads '%s'",
              sent.n - n0, box_text(p, "demo.log"));
    KdError err;
    CHECK_MSG(!strcmp(sent.value, "5000") && kd_config_set(cfg, "demo.log", sent.value, &err) != 0 && strstr(err.msg, "range"),
              "5000 typed: sent '%s'", sent.value);
    CHECK_MSG(!strcmp(box_text(p, "demo.log"), "0.0123456789"), "after a refused 5000 the box shows '%s'", box_text(p, "demo.log"));
  }

  /* the Up key in a focused box is one grid step */
  {
    GtkWidget *sb = GTK_WIDGET(kds_control_panel_entry(p, "demo.int"));
    double v0 = kd_config_num(cfg, "demo.int"), want = kd_grid_next(&demo[2], v0, 1);
    int n0 = sent.n;
    gtk_widget_grab_focus(sb);
    CHECK(ui_wait_for(has_focus, sb, 10000));
    CHECK(ui_keys(sb, "key Up") == 0);
    Await a = {&sent, n0 + 1, NULL, NULL};
    CHECK_MSG(ui_wait_for(sent_reaches, &a, 20000), "Up sent nothing");
    CHECK_MSG(!strcmp(sent.key, "demo.int") && g_ascii_strtod(sent.value, NULL) == want, "Up on demo.int at %g sent %s = %s, not %g",
              v0, sent.key, sent.value, want);
    apply(p, cfg, &sent);
  }
  check_boxes(p, cfg);

  /* reset (activated as Enter or Space would): back to the run's 60 */
  {
    GtkWidget *rb = GTK_WIDGET(kds_control_panel_reset(p, "demo.int"));
    int n0 = sent.n;
    CHECK_MSG(gtk_widget_get_sensitive(rb), "demo.int at %g: reset inactive", kd_config_num(cfg, "demo.int"));
    CHECK(gtk_widget_activate(rb));
    Await a = {&sent, n0 + 1, NULL, NULL};
    CHECK_MSG(ui_wait_for(sent_reaches, &a, 20000), "reset sent nothing");
    CHECK_MSG(!strcmp(sent.key, "demo.int") && !strcmp(sent.value, "60"), "reset sent %s = %s, not the run's 60", sent.key, sent.value);
    apply(p, cfg, &sent);
    CHECK_MSG(!gtk_widget_get_sensitive(rb), "reset still active after returning to 60");
    /* a rebuild (a method switched on mid-run) keeps what reset returns to */
    CHECK(kd_config_set(cfg, "demo.int", "80", NULL) == 0);
    kds_control_panel_rebuild(p, cfg, keys);
    rb = GTK_WIDGET(kds_control_panel_reset(p, "demo.int"));
    CHECK_MSG(gtk_widget_get_sensitive(rb), "after a rebuild at 80, reset forgot the run's 60");
    kds_control_panel_forget_run(p);
    kds_control_panel_rebuild(p, cfg, keys);
    CHECK(!gtk_widget_get_sensitive(GTK_WIDGET(kds_control_panel_reset(p, "demo.int"))));
  }
  gtk_window_destroy(GTK_WINDOW(win));
  ui_pump(100);
  kd_config_free(cfg);
}

/* ---- the window on a run ---- */

static const char *g_run;

/* The set events of the run (events.jsonl) as read now. */
typedef struct SetEv {
  char key[128], value[64], old[64];
  int undo, refused;
} SetEv;

static int read_sets(SetEv *out, int max) {
  int n, k = 0;
  cJSON **ev = fixture_jsonl(g_run, "events.jsonl", &n);
  for (int i = 0; i < n && k < max; i++) {
    int refused = fixture_is_event(ev[i], "set_refused");
    if (!fixture_is_event(ev[i], "set") && !refused) continue;
    SetEv *s = &out[k++];
    g_strlcpy(s->key, fixture_str(ev[i], "key") ? fixture_str(ev[i], "key") : "", sizeof s->key);
    g_strlcpy(s->value, fixture_str(ev[i], "value") ? fixture_str(ev[i], "value") : "", sizeof s->value);
    g_strlcpy(s->old, fixture_str(ev[i], "old") ? fixture_str(ev[i], "old") : "", sizeof s->old);
    s->undo = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev[i], "undo"));
    s->refused = refused;
  }
  fixture_jsonl_free(ev, n);
  return k;
}

static int g_want_sets;
static gboolean sets_reach(gpointer unused) {
  (void)unused;
  SetEv s[64];
  return read_sets(s, 64) >= g_want_sets;
}

/* The set events a window's run log holds (read at its polls). */
static int log_sets(KdsWindow *w) {
  const KdRunLog *log = kds_bridge_log(kds_window_get_bridge(w));
  int n = 0;
  for (int i = 0; i < kd_runlog_nevents(log); i++) {
    const char *t = kd_runlog_event(log, i).type;
    n += !strcmp(t, "set") || !strcmp(t, "set_refused");
  }
  return n;
}

typedef struct LogWait {
  KdsWindow *w;
  int n;
} LogWait;

static gboolean log_reaches(gpointer u) { return log_sets(((LogWait *)u)->w) >= ((LogWait *)u)->n; }

static gboolean have_snapshot(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && kds_bridge_snapshot_count(b) > 0 && kds_panel_get_view(kds_window_get_panel(w, 0))->snap;
}

static GtkWidget *find_label_with_class(GtkWidget *w, const char *css) {
  if (GTK_IS_LABEL(w) && gtk_widget_has_css_class(w, css)) return w;
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
    GtkWidget *f = find_label_with_class(c, css);
    if (f) return f;
  }
  return NULL;
}

/* A drag by hand on a sidebar slider logs one set event, on the grid. */
static void drag_logged(KdsWindow *w, const char *key, int dx) {
  KdsControlPanel *cp = kds_window_get_controls(w);
  GtkRange *r = kds_control_panel_slider(cp, key);
  const KdParamDesc *d = kd_config_find(kds_bridge_config(kds_window_get_bridge(w)), key);
  CHECK_MSG(r && d, "no slider for %s", key);
  if (!r || !d) return;
  ui_scroll_to(GTK_WIDGET(r));
  SetEv s[64];
  int n0 = read_sets(s, 64);
  double f = gtk_range_get_value(r) / 1000.0;
  CHECK(ui_drag(GTK_WIDGET(r), 0.04 + 0.92 * f, 0.5, dx, 6) == 0);
  g_want_sets = n0 + 1;
  CHECK_MSG(ui_wait_for(sets_reach, NULL, 30000), "a drag on %s logged nothing", key);
  ui_pump(600); /* a second event, if the drag sent two, has arrived by now */
  int n = read_sets(s, 64);
  CHECK_MSG(n == n0 + 1, "a drag on %s logged %d set events", key, n - n0);
  const SetEv *e = &s[n0];
  double v = g_ascii_strtod(e->value, NULL);
  CHECK_MSG(!strcmp(e->key, key) && !e->undo && kd_grid_contains(d, v), "the drag on %s logged %s = '%s' (grid %s)", key, e->key,
            e->value, d->grid ? d->grid : "by kind");
  printf("window drag %+d px on %s: logged %s -> %s\n", dx, key, e->old, e->value);
}

static gboolean shows(KdsWindow *w, const char *key, const char *text) {
  GtkSpinButton *sb = kds_control_panel_entry(kds_window_get_controls(w), key);
  return sb && !strcmp(gtk_editable_get_text(GTK_EDITABLE(sb)), text);
}

/* Typed into a box: logged exactly as typed. */
static void typed_logged(KdsWindow *w, const char *key, const char *text) {
  GtkWidget *sb = GTK_WIDGET(kds_control_panel_entry(kds_window_get_controls(w), key));
  CHECK(sb != NULL);
  if (!sb) return;
  ui_scroll_to(sb);
  SetEv s[64];
  int n0 = read_sets(s, 64);
  type_into(sb, text);
  g_want_sets = n0 + 1;
  CHECK_MSG(ui_wait_for(sets_reach, NULL, 30000), "typing %s into %s logged nothing", text, key);
  int n = read_sets(s, 64);
  CHECK_MSG(n == n0 + 1 && !strcmp(s[n0].key, key) && !strcmp(s[n0].value, text), "typed %s = %s: logged %s = '%s'", key, text,
            n > n0 ? s[n0].key : "-", n > n0 ? s[n0].value : "-");
  /* the run's settings as the window has them (the hand-over) hold it exactly */
  const KdConfig *cfg = kds_bridge_config(kds_window_get_bridge(w));
  for (int i = 0; i < 100 && kd_config_num(cfg, key) != g_ascii_strtod(text, NULL); i++) ui_pump(50);
  CHECK_MSG(kd_config_num(cfg, key) == g_ascii_strtod(text, NULL), "%s is %.17g in the window's settings", key, kd_config_num(cfg, key));
  gtk_widget_grab_focus(kds_window_get_pause_button(w));
}

typedef struct Shows {
  KdsWindow *w;
  const char *key, *text;
} Shows;

static gboolean shows_cb(gpointer user) {
  const Shows *s = user;
  return shows(s->w, s->key, s->text);
}

/* Ctrl+Z's action, three times quickly then once more: the three changes
 * come back newest first, each an undo event; then nothing is left. */
static void check_undo(KdsWindow *w) {
  SetEv s[64];
  int n0 = read_sets(s, 64);
  CHECK_MSG(n0 >= 3, "only %d set events to undo", n0);
  if (n0 < 3) return;
  GtkWidget *readout = find_label_with_class(GTK_WIDGET(w), "kds-readout");
  CHECK(readout != NULL);
  LogWait lw = {w, n0};
  CHECK_MSG(ui_wait_for(log_reaches, &lw, 20000), "the window's log holds %d of %d set events", log_sets(w), n0);
  for (int k = 0; k < 3; k++) {
    CHECK(gtk_widget_activate_action(GTK_WIDGET(w), "win.undo", NULL));
    ui_pump(20);
    printf("undo %d: %s\n", k + 1, readout ? gtk_label_get_text(GTK_LABEL(readout)) : "?");
  }
  g_want_sets = n0 + 3;
  CHECK_MSG(ui_wait_for(sets_reach, NULL, 30000), "three undos logged %d events", read_sets(s, 64) - n0);
  int n = read_sets(s, 64);
  for (int k = 0; k < 3 && n0 + k < n; k++) {
    const SetEv *u = &s[n0 + k], *orig = &s[n0 - 1 - k];
    CHECK_MSG(u->undo && !u->refused && !strcmp(u->key, orig->key) && !strcmp(u->value, orig->old),
              "undo %d logged %s = %s (undo %d), expected %s back to %s", k + 1, u->key, u->value, u->undo, orig->key, orig->old);
  }
  /* the values are back: the boxes show what the first change replaced */
  for (int k = 0; k < 3; k++) {
    const SetEv *orig = &s[n0 - 1 - k];
    gboolean newer = FALSE; /* a later change of the same key hides this one */
    for (int j = 0; j < k; j++) newer |= !strcmp(s[n0 - 1 - j].key, orig->key);
    if (newer) continue;
    Shows sh = {w, orig->key, orig->old};
    CHECK_MSG(ui_wait_for(shows_cb, &sh, 10000), "%s shows %s after the undo, not %s", orig->key,
              gtk_editable_get_text(GTK_EDITABLE(kds_control_panel_entry(kds_window_get_controls(w), orig->key))), orig->old);
  }
  /* the curves mark them as undos */
  KdsPanel *curves = NULL;
  for (int i = 0; i < kds_window_panel_count(w); i++)
    if (!strcmp(kds_panel_kind(kds_window_get_panel(w, i)), "curves")) curves = kds_window_get_panel(w, i);
  lw.n = n0 + 3;
  CHECK(ui_wait_for(log_reaches, &lw, 20000)); /* the bridge re-reads the log at its polls */
  KdFigPanel fp;
  int undo_marks = 0;
  if (curves && kds_panel_build(curves, &fp)) {
    const KdFigCurves *c = fp.spec;
    for (int i = 0; i < c->loss.nmarkers; i++) undo_marks += !strncmp(c->loss.markers[i].label, "undo ", 5);
  }
  CHECK_MSG(undo_marks == 3, "the curves mark %d undos", undo_marks);
  /* nothing left: a message, no event */
  CHECK(gtk_widget_activate_action(GTK_WIDGET(w), "win.undo", NULL));
  ui_pump(50);
  const char *msg = readout ? gtk_label_get_text(GTK_LABEL(readout)) : "";
  CHECK_MSG(g_str_has_prefix(msg, "nothing to undo"), "a fourth undo says '%s'", msg);
  ui_pump(1500);
  CHECK_MSG(read_sets(s, 64) == n0 + 3, "a fourth undo with nothing left logged an event");
  printf("undo 4: %s\n", msg);
}

/* A window following the run from its files undoes through control.jsonl:
 * the run logs the undo (source cli) like its own. */
static void check_follow_undo(KdsWindow *w) {
  GError *e = NULL;
  KdsBridge *fb = kds_bridge_new_follow(g_run, &e);
  CHECK_MSG(fb != NULL, "follow: %s", e ? e->message : "?");
  if (!fb) return;
  KdsWindow *fw = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(fw), 900, 600);
  gtk_window_present(GTK_WINDOW(fw));
  kds_window_set_bridge(fw, fb);
  g_object_unref(fb);
  SetEv s[64];
  int n0 = read_sets(s, 64);
  CHECK(kds_bridge_set(kds_window_get_bridge(w), "defeat.beta_obj", "2", NULL));
  g_want_sets = n0 + 1;
  CHECK_MSG(ui_wait_for(sets_reach, NULL, 30000), "defeat.beta_obj = 2 was never logged");
  LogWait lw = {fw, n0 + 1};
  CHECK_MSG(ui_wait_for(log_reaches, &lw, 20000), "the following window never read defeat.beta_obj = 2");
  CHECK(gtk_widget_activate_action(GTK_WIDGET(fw), "win.undo", NULL));
  g_want_sets = n0 + 2;
  CHECK_MSG(ui_wait_for(sets_reach, NULL, 30000), "the following window's undo was never logged");
  int n = read_sets(s, 64);
  CHECK_MSG(n == n0 + 2 && s[n0 + 1].undo && !strcmp(s[n0 + 1].key, "defeat.beta_obj") && !strcmp(s[n0 + 1].value, "1"),
            "the following window's undo logged %s = %s (undo %d)", s[n0 + 1].key, s[n0 + 1].value, s[n0 + 1].undo);
  gtk_window_destroy(GTK_WINDOW(fw));
  ui_pump(100);
}

static int g_snap_step;
static gboolean newer_snapshot(gpointer w) {
  const KdsView *v = kds_panel_get_view(kds_window_get_panel(w, 0));
  return v->snap && v->snap->step > g_snap_step;
}

/* The level the panels draw, checked on the map panels' titles. */
static void check_panels_level(KdsWindow *w, const char *want) {
  const KdsView *v = kds_panel_get_view(kds_window_get_panel(w, 0));
  char lv[16];
  CHECK_MSG(!strcmp(kd_snapshot_level_name(v->snap, v->level, lv, sizeof lv), want), "the view shows %s, the menu %s", lv, want);
  int checked = 0;
  for (int i = 0; i < kds_window_panel_count(w); i++) {
    KdsPanel *p = kds_window_get_panel(w, i);
    const char *kind = kds_panel_kind(p);
    KdFigPanel fp;
    if (strcmp(kind, "gap") && strcmp(kind, "masks")) continue;
    CHECK_MSG(kds_panel_build(p, &fp), "panel %s draws nothing at %s", kind, want);
    const char *title = ((const KdFigMaps *)fp.spec)->title;
    CHECK_MSG(title && g_str_has_prefix(title, want), "panel %s draws '%s' with %s picked", kind, title ? title : "", want);
    checked++;
  }
  CHECK(checked == 2);
}

static void check_levels(KdsWindow *w) {
  CHECK_MSG(ui_wait_for(have_snapshot, w, 60000), "no snapshot within 60 s");
  GtkDropDown *dd = GTK_DROP_DOWN(kds_window_get_level_menu(w));
  const KdsView *v = kds_panel_get_view(kds_window_get_panel(w, 0));
  if (!v->snap) return;
  GListModel *m = gtk_drop_down_get_model(dd);
  int n = (int)g_list_model_get_n_items(m);
  CHECK_MSG(n == v->snap->nlev, "the Level menu lists %d levels, the model has %d", n, v->snap->nlev);
  GString *names = g_string_new("");
  for (int l = 0; l < n && l < v->snap->nlev; l++) {
    char lv[16];
    const char *item = gtk_string_list_get_string(GTK_STRING_LIST(m), (guint)l);
    CHECK_MSG(!strcmp(item, kd_snapshot_level_name(v->snap, l, lv, sizeof lv)), "menu entry %d is %s, level %d is %s", l, item, l, lv);
    g_string_append_printf(names, "%s%s", l ? " " : "", item);
  }
  printf("level menu: %s\n", names->str);
  g_string_free(names, TRUE);
  gtk_drop_down_set_selected(dd, 1); /* P4 */
  ui_pump(100);
  check_panels_level(w, "P4");
  g_snap_step = v->snap->step;
  CHECK_MSG(ui_wait_for(newer_snapshot, w, 60000), "no newer snapshot within 60 s");
  CHECK_MSG(gtk_drop_down_get_selected(dd) == 1, "a new snapshot moved the menu to %u", gtk_drop_down_get_selected(dd));
  check_panels_level(w, "P4");
  /* the keys step through the levels there are */
  CHECK(gtk_widget_activate_action(GTK_WIDGET(w), "win.level-next", NULL));
  ui_pump(50);
  CHECK(gtk_drop_down_get_selected(dd) == 2);
  check_panels_level(w, "P5");
}

/* The shortcuts in the window's groups (its search page lists them again). */
static int count_shortcuts(GtkWidget *w) {
  int n = GTK_IS_SHORTCUTS_SHORTCUT(w) && gtk_widget_get_ancestor(w, GTK_TYPE_SHORTCUTS_GROUP);
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) n += count_shortcuts(c);
  return n;
}

static void check_shortcuts(KdsWindow *w, const char *shots) {
  for (int i = 0; i < kds_shortcuts_count(); i++) {
    const KdsShortcut *s = kds_shortcuts_at(i);
    guint key;
    GdkModifierType mods;
    CHECK_MSG(s->accels[0] && gtk_accelerator_parse(s->accels[0], &key, &mods), "%s: bad accelerator", s->action);
    if (g_str_has_prefix(s->action, "win."))
      CHECK_MSG(g_action_map_lookup_action(G_ACTION_MAP(w), s->action + 4), "the window has no action %s", s->action);
  }
  CHECK(gtk_widget_activate_action(GTK_WIDGET(w), "win.show-help-overlay", NULL));
  ui_pump(600);
  GtkWidget *sw = GTK_WIDGET(gtk_application_window_get_help_overlay(GTK_APPLICATION_WINDOW(w)));
  CHECK_MSG(sw && gtk_widget_get_visible(sw), "the shortcuts window did not open");
  if (!sw) return;
  int n = count_shortcuts(sw);
  CHECK_MSG(n == kds_shortcuts_count(), "the shortcuts window lists %d shortcuts, the table has %d", n, kds_shortcuts_count());
  printf("shortcuts window: %d shortcuts\n", n);
  if (shots) {
    char png[2200];
    snprintf(png, sizeof png, "%s/shortcuts.png", shots);
    CHECK(ui_screenshot(png) == 0);
  }
  gtk_window_close(GTK_WINDOW(sw));
  ui_pump(200);
}

static void load_css(void) {
  const char *root = g_getenv("KD_SOURCE_ROOT");
  if (!root) return;
  char *path = g_build_filename(root, "assets", "style.css", NULL);
  GtkCssProvider *css = gtk_css_provider_new();
  gtk_css_provider_load_from_path(css, path);
  gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css), GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_object_unref(css);
  g_free(path);
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  if (!ui_init()) {
    printf("skipped: no display\n");
    return 77;
  }
  if (system("command -v xdotool >/dev/null") != 0) {
    CHECK_MSG(0, "xdotool is missing (the launcher installs it)");
    return check_status("test_controls");
  }
  load_css();
  const char *shots = g_getenv("KDS_SHOTS_DIR");
  check_panel();

  if (!fixture_have_source()) {
    /* The panel checks ran; a failure there still fails, else a skip. */
    if (check_failures) return check_status("test_controls");
    printf("skipped the window part: dataset-fashion-mnist is not installed\n");
    return 77;
  }
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "controls") == 0);
  CHECK(fixture_data(dir, data, sizeof data) == 0);
  CHECK(probe_run_teacher(dir, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  g_run = run;
  KdConfig *cfg = fixture_config(data, 100000);
  KdError err;
  const char *kv[][2] = {{"teacher.config", tcfg}, {"teacher.checkpoint", tck}, {"train.threads", "1"}, {"distill.methods", "fitnet,defeat"}};
  for (size_t i = 0; cfg && i < G_N_ELEMENTS(kv); i++) CHECK_MSG(kd_config_set(cfg, kv[i][0], kv[i][1], &err) == 0, "%s", err.msg);
  KdsWindow *w = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(w), 1600, 1000);
  gtk_window_present(GTK_WINDOW(w));
  KdRunOpts o = {0};
  o.session.out_dir = run;
  o.session.distill = 1;
  GError *e = NULL;
  KdsBridge *b = cfg ? kds_bridge_new_run(cfg, &o, &e) : NULL;
  CHECK_MSG(b != NULL, "%s", e ? e->message : "no config");
  if (!b) return check_status("test_controls");
  kds_window_set_bridge(w, b);
  g_object_unref(b);
  check_levels(w);
  gtk_drop_down_set_selected(GTK_DROP_DOWN(kds_window_get_level_menu(w)), 0);
  if (shots) {
    char png[2200];
    ui_pump(800);
    snprintf(png, sizeof png, "%s/sidebar.png", shots);
    CHECK(ui_screenshot(png) == 0);
  }
  drag_logged(w, "fitnet.weight", 37);
  drag_logged(w, "defeat.alpha_bg", -37);
  typed_logged(w, "defeat.alpha_obj", "3.14159265");
  if (shots) {
    char png[2200];
    ui_scroll_to(GTK_WIDGET(kds_control_panel_slider(kds_window_get_controls(w), "defeat.alpha_bg")));
    snprintf(png, sizeof png, "%s/sidebar-changed.png", shots);
    CHECK(ui_screenshot(png) == 0);
  }
  check_undo(w);
  check_follow_undo(w);
  check_shortcuts(w, shots);
  gtk_window_destroy(GTK_WINDOW(w));
  ui_pump(200);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_controls");
}
