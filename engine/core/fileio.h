/* Small file-system helpers for the engine: whole-file reads with a size
 * cap, writes that report errors with the path, mkdir -p, and removal of a
 * directory tree the data layer itself created (temp build directories). */
#ifndef KD_FILEIO_H
#define KD_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Reads the whole file into *buf (grown with realloc, *cap tracks its size;
 * pass *buf = NULL, *cap = 0 the first time). A NUL is appended after the
 * data (not counted in *len) so text parsers can use it. Files larger than
 * max_bytes are refused. Errors name the path. */
int kd_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap, size_t *len,
                 KdError *err);

/* Creates or truncates path and writes len bytes. */
int kd_write_file(const char *path, const void *data, size_t len, KdError *err);

/* Writes "<path>.tmp.<pid>", fsyncs it and renames it over path: a kill
 * at any moment leaves the old file or the new one, never half of one. */
int kd_write_file_atomic(const char *path, const void *data, size_t len, KdError *err);

/* Removes the "<name>.tmp.<pid>" files of kd_write_file_atomic in dir
 * whose writer is gone (a process killed mid-write); a live writer's are
 * kept. Returns how many it removed (0 for a missing dir). */
int kd_remove_stale_temps(const char *dir);

/* mkdir -p with mode 0755; existing directories are fine. */
int kd_mkdir_p(const char *path, KdError *err);

/* Removes a directory tree. Refuses paths that are empty or "/". Only for
 * trees this code made (a temp build directory). */
int kd_remove_tree(const char *path, KdError *err);

/* snprintf for paths: -1 with "path too long" instead of truncating. */
int kd_path_fmt(char *buf, size_t len, KdError *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* 1 if path exists (any type), 0 if not. */
int kd_path_exists(const char *path);

/* Appends printable text for a byte string that may hold anything: bytes
 * outside printable ASCII become \xNN. Used to name files in errors. */
void kd_escape_name(const char *name, char *out, size_t out_len);

/* A whole text file, NUL-terminated (len excludes the NUL); refuses files
 * over max bytes. Errors name the path. */
char *kd_read_text(const char *path, size_t *len, size_t max, KdError *err);
/* Appends one line ('\n' added) with a single write(2) on an O_APPEND fd,
 * so concurrent appenders and a kill never leave half a line. */
int kd_append_line(const char *path, const char *line, KdError *err);
/* s as the inside of a JSON string (quotes, backslashes, control bytes
 * escaped); truncated to fit out. */
void kd_json_escape(const char *s, char *out, size_t len);

#endif
