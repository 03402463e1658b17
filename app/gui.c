/* The window's application: `kdscope` with no arguments opens the default
 * run (shipped teacher -> student, DeFeat, fashion-det built on first use
 * on a worker thread while the window shows its progress); `kdscope window`
 * takes a config, --set overrides or a run directory to follow/replay. */
#include <gtk/gtk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "data/fashion.h"
#include "inspect.h"
#include "run_browser_scan.h"
#include "train/control.h"
#include "train/run.h"
#include "shortcuts.h"
#include "window.h"
#include "verbs.h"

typedef struct Gui {
  GtkApplication *app;
  KdsWindow *win;
  KdTrainArgs args;
  const char *follow;   /* a run directory, or a folder of runs (the browser) */
  const char *compare[32]; /* runs compared; the first also dotted on the curves */
  int ncompare;
  int paused;
  const char *teacher, *student; /* an inspect session: these models, no training */
  KdConfig *cfg;
  char data_dir[4096];
  char error[1024];
  double frac;
  char what[128];
} Gui;

static KdSessionOpts session_opts(const Gui *g) {
  return (KdSessionOpts){.out_dir = g->args.out, .resume_dir = g->args.resume,
                         .distill = *kd_config_str(g->cfg, "teacher.checkpoint") != 0};
}

static void run_opened(GObject *src, GAsyncResult *res, gpointer user) {
  (void)src;
  Gui *g = user;
  GError *e = NULL;
  KdsBridge *b = kds_bridge_new_run_finish(res, &e);
  if (!b) {
    kds_window_show_error(g->win, e->message);
    g_error_free(e);
    return;
  }
  kds_window_set_bridge(g->win, b);
  if (g->paused) kds_bridge_pause(b, NULL);
  g_object_unref(b);
}

/* The session (models, teacher checkpoint, data) opens on a worker thread
 * so the window stays responsive while it does. */
static gboolean start_run(gpointer user) {
  Gui *g = user;
  if (g->error[0]) {
    kds_window_show_error(g->win, g->error);
    return G_SOURCE_REMOVE;
  }
  if (g->data_dir[0]) kd_config_set(g->cfg, "data.dir", g->data_dir, NULL);
  KdRunOpts o = {.session = session_opts(g), .inspect = g->student != NULL};
  KdConfig *cfg = g->cfg;
  g->cfg = NULL; /* the bridge owns it now */
  kds_window_show_progress(g->win, g->args.resume ? "Resuming the run..." : g->student ? "Opening the models..." : "Opening the run...", -1);
  kds_bridge_new_run_async(cfg, &o, run_opened, g);
  return G_SOURCE_REMOVE;
}

static gboolean show_progress(gpointer user) {
  Gui *g = user;
  char what[160];
  g_snprintf(what, sizeof what, "Building the fashion-det data set (first use): %s", g->what);
  kds_window_show_progress(g->win, what, g->frac);
  return G_SOURCE_REMOVE;
}

static void data_progress(void *user, const char *what, long done, long total) {
  Gui *g = user;
  g_snprintf(g->what, sizeof g->what, "%s %ld/%ld", what, done, total);
  g->frac = total > 0 ? (double)done / (double)total : -1;
  g_idle_add(show_progress, g);
}

static gpointer prepare_data(gpointer user) {
  Gui *g = user;
  KdError err;
  if (kd_ensure_default_dataset(g->data_dir, sizeof g->data_dir, data_progress, g, &err))
    g_snprintf(g->error, sizeof g->error, "Could not build the default data set:\n%s", err.msg);
  g_idle_add(start_run, g);
  return NULL;
}

static void load_css(void) {
  char path[4096];
  GtkCssProvider *css = gtk_css_provider_new();
  gtk_css_provider_load_from_path(css, kd_cli_asset("style.css", path, sizeof path));
  gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css), GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_object_unref(css);
  gtk_icon_theme_add_search_path(gtk_icon_theme_get_for_display(gdk_display_get_default()), kd_cli_asset("icons", path, sizeof path));
  /* the window's icon: the task switcher and the header bar's */
  gtk_window_set_default_icon_name("io.github.kdscope.Kdscope");
}

static gboolean quit_app(gpointer app) {
  g_application_quit(G_APPLICATION(app));
  return G_SOURCE_REMOVE;
}

static void on_activate(GtkApplication *app, gpointer user) {
  Gui *g = user;
  load_css();
  /* Scripted sessions (screenshots, timing): quit after N seconds. */
  const char *qa = g_getenv("KDSCOPE_QUIT_AFTER");
  if (qa && atoi(qa) > 0) g_timeout_add_seconds((guint)atoi(qa), quit_app, app);
  g->win = kds_window_new(app);
  gtk_window_present(GTK_WINDOW(g->win));
  kds_shortcuts_set_accels(app);
  GError *ce = NULL;
  if (g->ncompare && (!kds_window_set_reference(g->win, g->compare[0], &ce) ||
                      !kds_window_set_compare(g->win, g->compare, g->ncompare, &ce))) {
    kds_window_toast(g->win, ce->message);
    g_error_free(ce);
  }
  if (g->follow && !kd_run_dir_is_run(g->follow)) { /* a folder of runs: the browser over it */
    GError *e = NULL;
    kds_window_set_bridge(g->win, NULL);
    if (!kds_window_browse(g->win, g->follow, &e)) {
      kds_window_show_error(g->win, e->message);
      g_error_free(e);
    }
    return;
  }
  long pid = 0;
  if (g->args.resume && kd_control_is_running(g->args.resume, &pid)) { /* the resume would only fail: offer to follow */
    GError *e = NULL;
    kds_window_resume_run(g->win, g->args.resume, &e);
    g_clear_error(&e);
    return;
  }
  if (g->follow) {
    GError *e = NULL;
    KdsBridge *b = kds_bridge_new_follow(g->follow, &e);
    if (!b) {
      kds_window_show_error(g->win, e->message);
      g_error_free(e);
      return;
    }
    kds_window_set_bridge(g->win, b);
    g_object_unref(b);
    return;
  }
  if (*kd_config_str(g->cfg, "data.dir")) {
    g_idle_add(start_run, g);
    return;
  }
  /* A config error is shown now, not after minutes of building the set. */
  KdSessionOpts so = session_opts(g);
  KdError err;
  if (kd_session_check(g->cfg, &so, &err)) {
    fprintf(stderr, "kdscope window: %s\n", err.msg);
    kds_window_show_error(g->win, err.msg);
    return;
  }
  kds_window_show_progress(g->win, "Preparing the default data set…", -1);
  g_thread_unref(g_thread_new("kdscope-data", prepare_data, g));
}

/* Closing the windows drops the bridge, which stops the run (finishing the
 * step, writing a checkpoint) and joins its thread before the process
 * exits; exiting under a running step would pull memory from under it. */
static void on_shutdown(GApplication *app, gpointer user) {
  (void)user;
  GList *wins;
  while ((wins = gtk_application_get_windows(GTK_APPLICATION(app)))) gtk_window_destroy(GTK_WINDOW(wins->data));
}

static void on_quit(GSimpleAction *a, GVariant *p, gpointer app) {
  (void)a, (void)p;
  g_application_quit(G_APPLICATION(app));
}

static gboolean have_render_node(void) {
  GDir *d = g_dir_open("/dev/dri", 0, NULL);
  gboolean found = FALSE;
  for (const char *n; d && !found && (n = g_dir_read_name(d));) found = g_str_has_prefix(n, "renderD");
  if (d) g_dir_close(d);
  return found;
}

static const char usage[] =
    "usage: kdscope [window] [--config FILE] [--data DIR] [--set key=value]... [--steps N]\n"
    "               [--out RUN_DIR | --resume RUN_DIR] [--follow RUN_DIR] [--paused]\n"
    "               [--compare RUN_DIR] [--quiet]\n"
    "       kdscope window --student DIR [--teacher DIR] [--data DIR] [--config FILE] [--set key=value]...\n\n"
    "Opens the window. Without options: the default run (assets/configs/distill.json:\n"
    "the shipped teacher -> student preset, DeFeat, fashion-det built on first use).\n"
    "--config FILE      a distillation config over the defaults (JSON; kdscope settings lists keys)\n"
    "--data DIR         a COCO data set (DIR/annotations/instances_{train,val}.json, DIR/images/...)\n"
    "                   instead of fashion-det\n"
    "--set key=value    one setting over the config (repeatable)\n"
    "--steps N          the run's length (train.steps)\n"
    "--out RUN_DIR      where the run directory goes (default runs/<date>-<name>)\n"
    "--resume RUN_DIR   continue a stopped or killed run from its last checkpoint (one another\n"
    "                   process runs is offered to follow instead)\n"
    "--paused           open with the run paused (Space starts it)\n"
    "--follow RUN_DIR   follow a run another process writes (or replay a finished one);\n"
    "                   sliders then act through the run directory's control file (as `kdscope set`)\n"
    "--follow FOLDER    a folder of run directories: the run browser over it (a table of the runs,\n"
    "                   sortable; open, compare or resume them)\n"
    "--compare RUN_DIR  another run on the compare chart, one colour each (repeatable); the first\n"
    "                   also dotted on the curves (a baseline to beat while tuning)\n"
    "--quiet            no progress lines on the terminal\n"
    "--student DIR      inspect instead of training (also: kdscope inspect): the window on this student and\n"
    "                   the teacher as they are, over --data's val images (default fashion-det); no step is\n"
    "                   ever taken, and every slider, method or image picked recomputes the panels. DIR is\n"
    "                   kdscope import's output (config.json + model.safetensors) or a run directory (its\n"
    "                   latest checkpoint); the student's config gives its architecture, anchors and image size\n"
    "--teacher DIR      the teacher, the same kinds of directory (default: the config's, the shipped one)\n\n"
    "Keys: Space pause/resume, Ctrl+E export, Ctrl+O browse runs, Ctrl+Shift+O open a run or config,\n"
    "Left/Right FPN level, Up/Down probe image, Ctrl+Q quit.\n";

int kd_cli_window(int argc, char **argv) {
  Gui g = {0};
  /* our own flags first, then the training flags */
  char *rest[256];
  int nrest = 0;
  rest[nrest++] = argv[0];
  for (int i = 1; i < argc && nrest < 255; i++) {
    if (!strcmp(argv[i], "--follow") && i + 1 < argc) g.follow = argv[++i];
    else if (!strcmp(argv[i], "--compare") && i + 1 < argc) {
      if (g.ncompare == (int)G_N_ELEMENTS(g.compare)) {
        fprintf(stderr, "kdscope window: at most %d --compare\n", (int)G_N_ELEMENTS(g.compare));
        return 1;
      }
      g.compare[g.ncompare++] = argv[++i];
    }
    else if (!strcmp(argv[i], "--paused")) g.paused = 1;
    else if (!strcmp(argv[i], "--teacher") && i + 1 < argc) g.teacher = argv[++i];
    else if (!strcmp(argv[i], "--student") && i + 1 < argc) g.student = argv[++i];
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      return 0;
    } else rest[nrest++] = argv[i];
  }
  if (kd_cli_train_args(nrest, rest, &g.args, "window", usage)) return 1;
  for (int i = 0; i < g.ncompare; i++) { /* refuse a wrong directory before a window opens */
    KdError err;
    KdRunLog *ref = kd_runlog_open(g.compare[i], &err);
    if (!ref) {
      fprintf(stderr, "kdscope window: --compare %s\n", err.msg);
      return 1;
    }
    kd_runlog_free(ref);
  }
  if (g.follow && !kd_run_dir_is_run(g.follow) && !g_file_test(g.follow, G_FILE_TEST_IS_DIR)) {
    fprintf(stderr, "kdscope window: --follow %s: not a run directory nor a folder of runs\n", g.follow);
    return 1;
  }
  if (g.teacher && !g.student) {
    fprintf(stderr, "kdscope window: --teacher goes with --student (an inspect session)\n");
    return 1;
  }
  if (g.student && (g.follow || g.ncompare)) {
    fprintf(stderr, "kdscope window: --student opens an inspect session: not with --follow or --compare\n");
    return 1;
  }
  if (g.student) {
    g.cfg = kd_cli_inspect_config(&g.args, g.teacher, g.student, "window");
    if (!g.cfg) return 1;
  } else if (!g.follow) {
    g.cfg = kd_cli_load_config(&g.args, "configs/distill.json", 1, "window");
    if (!g.cfg) return 1;
  }
  /* Without a GPU render node, GTK's GL renderer is Mesa's software
   * rasteriser, whose threads take CPU from the run's OpenMP team (a stall
   * at every barrier); the Cairo renderer draws the same window for less.
   * GSK_RENDERER, when set, wins. */
  if (!g_getenv("GSK_RENDERER") && !have_render_node()) g_setenv("GSK_RENDERER", "cairo", FALSE);
  if (!gtk_init_check()) {
    fprintf(stderr, "kdscope: cannot open a display (is DISPLAY or WAYLAND_DISPLAY set?).\n"
                    "Headless, the same default run is: kdscope distill (see kdscope --help).\n");
    kd_config_free(g.cfg);
    return 1;
  }
  g.app = gtk_application_new("io.github.kdscope.Kdscope", G_APPLICATION_NON_UNIQUE);
  GSimpleAction *quit = g_simple_action_new("quit", NULL);
  g_signal_connect(quit, "activate", G_CALLBACK(on_quit), g.app);
  g_action_map_add_action(G_ACTION_MAP(g.app), G_ACTION(quit));
  g_object_unref(quit);
  g_signal_connect(g.app, "activate", G_CALLBACK(on_activate), &g);
  g_signal_connect(g.app, "shutdown", G_CALLBACK(on_shutdown), &g);
  char *gargv[1] = {argv[0]};
  int rc = g_application_run(G_APPLICATION(g.app), 1, gargv);
  g_object_unref(g.app);
  kd_config_free(g.cfg);
  return rc;
}

/* `kdscope inspect ...` is `kdscope window --student ...`: the same flags. */
int kd_cli_inspect(int argc, char **argv) {
  int has_student = 0;
  for (int i = 1; i < argc; i++) has_student |= !strcmp(argv[i], "--student") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
  if (!has_student) {
    fprintf(stderr, "kdscope inspect: --student DIR is required (kdscope inspect --help)\n");
    return 1;
  }
  return kd_cli_window(argc, argv);
}
