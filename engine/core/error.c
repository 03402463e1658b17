#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int kd_error(KdError *err, const char *fmt, ...) {
  if (!err) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return -1;
}

int kd_error_prefix(KdError *err, const char *fmt, ...) {
  if (!err) return -1;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  char old[sizeof err->msg];
  memcpy(old, err->msg, sizeof old);
  size_t n = strlen(prefix), room = sizeof err->msg - 1;
  if (n > room) n = room;
  memcpy(err->msg, prefix, n);
  size_t m = strnlen(old, sizeof old - 1);
  if (m > room - n) m = room - n;
  memcpy(err->msg + n, old, m);
  err->msg[n + m] = 0;
  return -1;
}

const char *kd_error_names(char *buf, size_t len, int n, const char *(*name_at)(int i)) {
  size_t o = 0;
  if (len) buf[0] = 0;
  for (int i = 0; i < n && o < len; i++) o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", name_at(i));
  return buf;
}
