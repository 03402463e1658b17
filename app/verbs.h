/* The command-line verbs. Each lives in its own cli_<verb>.c, takes the
 * arguments after the verb, prints --help, and returns the exit status:
 * 0 success, 1 user error (with a message on stderr). */
#ifndef KD_APP_VERBS_H
#define KD_APP_VERBS_H

typedef struct KdVerb {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} KdVerb;

int kd_cli_bench(int argc, char **argv);

#endif
