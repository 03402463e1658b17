/* The command-line verbs. Each lives in its own cli_<verb>.c, takes the
 * arguments after the verb, prints --help, and returns the exit status:
 * 0 success, 1 user error (with a message on stderr). */
#ifndef KD_APP_VERBS_H
#define KD_APP_VERBS_H

#include <stddef.h>

typedef struct KdVerb {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} KdVerb;

int kd_cli_bench(int argc, char **argv);
int kd_cli_window(int argc, char **argv);
int kd_cli_inspect(int argc, char **argv);
int kd_cli_train(int argc, char **argv);
int kd_cli_distill(int argc, char **argv);
int kd_cli_loss(int argc, char **argv);
int kd_cli_prototypes(int argc, char **argv);
int kd_cli_eval(int argc, char **argv);
int kd_cli_make_dataset(int argc, char **argv);
int kd_cli_set(int argc, char **argv);
int kd_cli_pause(int argc, char **argv);
int kd_cli_resume(int argc, char **argv);
int kd_cli_stop(int argc, char **argv);
int kd_cli_export(int argc, char **argv);
int kd_cli_settings(int argc, char **argv);
int kd_cli_data_stats(int argc, char **argv);
int kd_cli_import(int argc, char **argv);
/* --data DIR as given, else the default set (built on first use with a
 * progress bar). Prints the error and returns -1 on failure. */
int kd_cli_resolve_data(const char *data_arg, char *dir, size_t len);
/* The data-stats report of DIR's split for the anchors and levels of cfg's
 * model (text, or one JSON object); returns the exit status. */
struct KdConfig;
int kd_cli_print_box_stats(const char *dir, const char *split, const struct KdConfig *cfg, int json);

#endif
