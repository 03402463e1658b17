/* Where kdscope finds what it ships (configs, the teacher checkpoints, CSS,
 * icons) and where runs go without --out: the source tree when the binary
 * is the build tree's, else the installed data directory (found next to
 * the binary, so a DESTDIR or relocated install works, else at the
 * configured prefix). KDSCOPE_ASSETS overrides. */
#ifndef KD_APP_ASSETS_H
#define KD_APP_ASSETS_H

#include <stddef.h>

typedef enum { KD_ASSETS_ENV, KD_ASSETS_TREE, KD_ASSETS_INSTALLED } KdAssetsFrom;

/* The assets directory (cached after the first call). */
const char *kd_assets_dir(KdAssetsFrom *from);
const char *kd_assets_from_name(KdAssetsFrom f); /* "source tree", ... */
/* Runs without --out: runs/ in the current directory from a source tree;
 * $XDG_DATA_HOME/kdscope/runs (else ~/.local/share/kdscope/runs) when
 * installed, never next to the binary. Into buf; buf is "runs" if no
 * home is known. */
const char *kd_assets_runs_root(char *buf, size_t len);

#endif
