/* Runs a libFuzzer target once on every file of the directories (or
 * files) given, as the fuzzer would: the normal suite's replay of each
 * seed corpus and of every crash found so far, in every build (gcc, ASan).
 * A target reports a problem by crashing (trap or sanitizer). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return fprintf(stderr, "replay: cannot open %s\n", path), -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(buf);
    return fprintf(stderr, "replay: cannot read %s\n", path), -1;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  int total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st)) return fprintf(stderr, "replay: %s: not found\n", argv[i]), 1;
    if (!S_ISDIR(st.st_mode)) {
      if (run_file(argv[i])) return 1;
      total++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (!d) return fprintf(stderr, "replay: cannot list %s\n", argv[i]), 1;
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      if (n == cap && !(names = realloc(names, sizeof *names * (size_t)(cap = cap ? 2 * cap : 64)))) return 1;
      if (!(names[n++] = strdup(e->d_name))) return 1;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp);
    for (int k = 0; k < n; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
      if (run_file(path)) return 1;
      free(names[k]);
    }
    free(names);
    total += n;
  }
  if (!total) return fprintf(stderr, "replay: no inputs\n"), 1;
  printf("replay: %d inputs, no crash\n", total);
  return 0;
}
