#include "train/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *kd_io_read_text(const char *path, size_t *len, size_t max, KdError *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return kd_error(err, "%s: cannot open: %s", path, strerror(errno)), NULL;
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return kd_error(err, "%s: not a regular file", path), NULL;
  }
  if ((size_t)st.st_size > max) {
    fclose(f);
    return kd_error(err, "%s: file is %lld bytes, more than the %zu allowed", path, (long long)st.st_size, max), NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    fclose(f);
    return kd_error(err, "%s: out of memory", path), NULL;
  }
  size_t got = fread(buf, 1, (size_t)st.st_size, f);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return kd_error(err, "%s: read error", path), NULL;
  }
  buf[got] = 0;
  if (len) *len = got;
  return buf;
}

int kd_io_write_atomic(const char *path, const void *data, size_t len, KdError *err) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) return kd_error(err, "%s: path too long", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return kd_error(err, "%s: cannot create: %s", tmp, strerror(errno));
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      return kd_error(err, "%s: write failed: %s", path, strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) || close(fd)) {
    unlink(tmp);
    return kd_error(err, "%s: could not flush: %s", path, strerror(errno));
  }
  if (rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    return kd_error(err, "%s: rename failed: %s", path, strerror(e));
  }
  return 0;
}

int kd_io_append_line(const char *path, const char *line, KdError *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return kd_error(err, "%s: cannot open for append: %s", path, strerror(errno));
  size_t n = strlen(line);
  char stackbuf[4096], *buf = n + 1 <= sizeof stackbuf ? stackbuf : malloc(n + 1);
  if (!buf) {
    close(fd);
    return kd_error(err, "out of memory");
  }
  memcpy(buf, line, n);
  buf[n] = '\n';
  ssize_t w = write(fd, buf, n + 1);
  if (buf != stackbuf) free(buf);
  close(fd);
  if (w != (ssize_t)(n + 1)) return kd_error(err, "%s: append failed", path);
  return 0;
}

int kd_io_mkdir_p(const char *path, KdError *err) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return kd_error(err, "%s: path too long", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) && errno != EEXIST) return kd_error(err, "%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) && errno != EEXIST) return kd_error(err, "%s: cannot create directory: %s", buf, strerror(errno));
  return 0;
}

int kd_io_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

void kd_io_json_escape(const char *s, char *out, size_t len) {
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p && o + 7 < len; p++) {
    if (*p == '"' || *p == '\\') {
      out[o++] = '\\';
      out[o++] = (char)*p;
    } else if (*p == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else if (*p < 0x20) {
      o += (size_t)snprintf(out + o, len - o, "\\u%04x", *p);
    } else {
      out[o++] = (char)*p;
    }
  }
  out[o] = 0;
}
