#include "assets.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"

static char dir[PATH_MAX + 64];
static KdAssetsFrom from_cached;

static int is_dir_with_configs(const char *d) {
  char p[PATH_MAX + 128];
  snprintf(p, sizeof p, "%s/configs/distill.json", d);
  return kd_path_exists(p);
}

/* exe's directory with `bindir` (relative to the prefix, "bin") taken off
 * its end: the install's prefix, or 0. */
static int prefix_of(const char *exe, char *out, size_t len) {
  char d[PATH_MAX];
  snprintf(d, sizeof d, "%s", exe);
  char *slash = strrchr(d, '/');
  if (!slash) return 0;
  *slash = 0;
  size_t n = strlen(d), b = strlen(KD_BINDIR);
  if (KD_BINDIR[0] == '/' || n < b + 1 || strcmp(d + n - b, KD_BINDIR) || d[n - b - 1] != '/') return 0;
  d[n - b - 1] = 0;
  snprintf(out, len, "%s", d);
  return 1;
}

static void resolve(void) {
  const char *env = getenv("KDSCOPE_ASSETS");
  if (env && *env) {
    snprintf(dir, sizeof dir, "%s", env), from_cached = KD_ASSETS_ENV;
    return;
  }
  char exe[PATH_MAX] = "", root[PATH_MAX];
  if (!realpath("/proc/self/exe", exe)) exe[0] = 0;
  size_t nb = strlen(KD_BUILD_ROOT);
  /* the build tree's binary: the tree's own assets */
  if (exe[0] && !strncmp(exe, KD_BUILD_ROOT, nb) && exe[nb] == '/') {
    snprintf(dir, sizeof dir, "%s/assets", KD_SOURCE_ROOT), from_cached = KD_ASSETS_TREE;
    return;
  }
  from_cached = KD_ASSETS_INSTALLED;
  if (exe[0] && prefix_of(exe, root, sizeof root)) {
    snprintf(dir, sizeof dir, "%s/%s/kdscope", root, KD_DATADIR);
    if (is_dir_with_configs(dir)) return;
  }
  snprintf(dir, sizeof dir, "%s/%s/kdscope", KD_PREFIX, KD_DATADIR);
  if (is_dir_with_configs(dir)) return;
  /* a copy of the build's binary elsewhere (a frozen binary for a long job) */
  char tree[PATH_MAX + 16];
  snprintf(tree, sizeof tree, "%s/assets", KD_SOURCE_ROOT);
  if (is_dir_with_configs(tree)) snprintf(dir, sizeof dir, "%s", tree), from_cached = KD_ASSETS_TREE;
}

const char *kd_assets_dir(KdAssetsFrom *from) {
  if (!dir[0]) resolve();
  if (from) *from = from_cached;
  return dir;
}

const char *kd_assets_from_name(KdAssetsFrom f) {
  return f == KD_ASSETS_ENV ? "KDSCOPE_ASSETS" : f == KD_ASSETS_TREE ? "source tree" : "installed";
}

const char *kd_assets_runs_root(char *buf, size_t len) {
  KdAssetsFrom f;
  kd_assets_dir(&f);
  const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
  if (f == KD_ASSETS_TREE || f == KD_ASSETS_ENV) snprintf(buf, len, "runs");
  else if (xdg && *xdg == '/') snprintf(buf, len, "%s/kdscope/runs", xdg);
  else if (home && *home) snprintf(buf, len, "%s/.local/share/kdscope/runs", home);
  else snprintf(buf, len, "runs");
  return buf;
}
