/* kdscope entry point: no arguments opens the window on the default run;
 * otherwise the first argument names a verb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assets.h"
#include "core/gemm.h"
#include "train/rundir.h"
#include "verbs.h"

static const KdVerb verbs[] = {
    {"window", kd_cli_window, "open the window (default: the default run; --follow RUN_DIR)"},
    {"inspect", kd_cli_inspect, "the window on a teacher and a student as they are, over a data set, no training"},
    {"train", kd_cli_train, "train a detector alone (teacher pretraining, student baseline)"},
    {"distill", kd_cli_distill, "distil the teacher into the student with the active methods"},
    {"loss", kd_cli_loss, "one distillation method on tensors from a file: loss, parts, gradients"},
    {"prototypes", kd_cli_prototypes, "global knowledge's PGM on pooled features from a file: the prototypes"},
    {"eval", kd_cli_eval, "COCO metrics of a checkpoint on a split (--dets-out: COCO results file)"},
    {"settings", kd_cli_settings, "every setting key with its type, default, range and help (no run needed)"},
    {"set", kd_cli_set, "change live settings of a run going on in another process"},
    {"pause", kd_cli_pause, "pause a run going on in another process"},
    {"resume", kd_cli_resume, "continue a paused run going on in another process"},
    {"stop", kd_cli_stop, "stop a run going on in another process (checkpoint, then exit)"},
#ifdef KD_HAVE_EXPORT
    {"export", kd_cli_export, "a figure of a run (PDF/SVG/PNG, as the window draws it) or its logs as CSV"},
#endif
    {"bench", kd_cli_bench, "time ops and training steps (--json for machines)"},
    {"make-dataset", kd_cli_make_dataset, "build the fashion-det data set (JPEG + COCO json), preview it"},
    {"import", kd_cli_import, "a torchvision detector (tools/export_torchvision.py) into a kdscope config + checkpoint"},
    {"data-stats", kd_cli_data_stats, "box sizes of a COCO set per area range and the FPN level/anchor each fits"},
};
static const int n_verbs = (int)(sizeof verbs / sizeof verbs[0]);

#ifndef KD_HAVE_UI
/* A build without GTK 4 (-Dui=disabled) keeps every headless verb. */
int kd_cli_window(int argc, char **argv) {
  (void)argc, (void)argv;
  fprintf(stderr, "kdscope: this build has no window (configured with -Dui=disabled or without GTK 4);\n"
                  "kdscope: the headless verbs work: kdscope --help lists them\n");
  return 2;
}
int kd_cli_inspect(int argc, char **argv) { return kd_cli_window(argc, argv); }
#endif

static void usage(FILE *f) {
  fprintf(f, "usage: kdscope [VERB] [OPTIONS]\n\n"
             "Knowledge-distillation workbench for object detectors.\n\nVerbs:\n");
  for (int i = 0; i < n_verbs; i++) fprintf(f, "  %-13s %s\n", verbs[i].name, verbs[i].summary);
  fprintf(f, "\nEach verb takes --help.\n");
}

/* OpenBLAS reads OPENBLAS_CORETYPE only when it loads. Some environments
 * force the AVX2 "Haswell" kernels on AVX-512 CPUs, which halves GEMM speed;
 * re-exec once without it (KD_KEEP_CORETYPE=1 keeps the forced value). */
static void maybe_reexec_for_blas(char **argv) {
  const char *ct = getenv("OPENBLAS_CORETYPE");
  if (!ct || !*ct || getenv("KD_KEEP_CORETYPE") || getenv("KD_REEXECED")) return;
  if (strcasecmp(ct, "haswell") != 0 || !__builtin_cpu_supports("avx512f")) return;
  unsetenv("OPENBLAS_CORETYPE");
  setenv("KD_REEXECED", "1", 1);
  execv("/proc/self/exe", argv);
}

int main(int argc, char **argv) {
  maybe_reexec_for_blas(argv);
  char runs[4096];
  kd_rundir_set_default_root(kd_assets_runs_root(runs, sizeof runs));
  if (argc < 2) return kd_cli_window(argc, argv);
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    KdAssetsFrom from;
    const char *assets = kd_assets_dir(&from);
    printf("kdscope %s (%s)\nassets: %s (%s)\nruns without --out: %s\n", KD_VERSION, kd_blas_info(), assets,
           kd_assets_from_name(from), runs);
    return 0;
  }
  for (int i = 0; i < n_verbs; i++)
    if (!strcmp(argv[1], verbs[i].name)) return verbs[i].run(argc - 1, argv + 1);
  fprintf(stderr, "kdscope: unknown verb '%s'\n\n", argv[1]);
  usage(stderr);
  return 1;
}
