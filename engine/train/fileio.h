/* Whole-file reads and crash-safe writes: a file is written to a temp name,
 * fsynced and renamed, so a kill at any moment leaves the old or the new
 * file, never half of one. Append-only logs add whole lines. */
#ifndef KD_TRAIN_FILEIO_H
#define KD_TRAIN_FILEIO_H

#include <stddef.h>

#include "core/error.h"

/* NUL-terminated contents (len excludes the NUL); refuses files > max. */
char *kd_io_read_text(const char *path, size_t *len, size_t max, KdError *err);
int kd_io_write_atomic(const char *path, const void *data, size_t len, KdError *err);
/* Appends one line (a '\n' is added) with a single write(2) on an O_APPEND fd. */
int kd_io_append_line(const char *path, const char *line, KdError *err);
int kd_io_mkdir_p(const char *path, KdError *err);
int kd_io_exists(const char *path);
/* s as the inside of a JSON string (quotes, backslashes, control bytes
 * escaped); truncated to fit out. */
void kd_io_json_escape(const char *s, char *out, size_t len);

#endif
