/* Error reporting for the engine: functions return 0 or -1 and fill a
 * KdError the caller can show. The engine never exits on user input. */
#ifndef KD_ERROR_H
#define KD_ERROR_H

#include <stddef.h>

typedef struct KdError {
  char msg[1024];
} KdError;

/* Formats into err (if non-NULL) and returns -1 so callers can
 * `return kd_error(err, ...)`. */
int kd_error(KdError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes an existing message, e.g. with the file name. */
int kd_error_prefix(KdError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "a, b, c": name_at(0..n-1) joined into buf, for "(known: ...)" in messages. */
const char *kd_error_names(char *buf, size_t len, int n, const char *(*name_at)(int i));

#endif
