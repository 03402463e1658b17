/* File helpers: every error names the path and the reason (strerror). */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kd_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap, size_t *len,
                 KdError *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return kd_error(err, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return kd_error(err, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > max_bytes) {
    fclose(f);
    return kd_error(err, "%s: file is %lld bytes, more than the limit of %zu", path,
                    (long long)st.st_size, max_bytes);
  }
  size_t want = (size_t)st.st_size + 1;
  if (*cap < want) {
    uint8_t *nb = realloc(*buf, want);
    if (!nb) {
      fclose(f);
      return kd_error(err, "%s: out of memory reading %zu bytes", path, want);
    }
    *buf = nb;
    *cap = want;
  }
  size_t n = fread(*buf, 1, (size_t)st.st_size, f);
  int bad = ferror(f);
  fclose(f);
  if (bad) return kd_error(err, "%s: read error", path);
  (*buf)[n] = 0;
  *len = n;
  return 0;
}

int kd_write_file(const char *path, const void *data, size_t len, KdError *err) {
  FILE *f = fopen(path, "wb");
  if (!f) return kd_error(err, "%s: cannot create: %s", path, strerror(errno));
  size_t n = len ? fwrite(data, 1, len, f) : 0;
  int e = errno;
  if (fclose(f) != 0 || n != len) return kd_error(err, "%s: write failed: %s", path, strerror(e));
  return 0;
}

/* The writer's pid from a "<name>.tmp.<pid>" name, or 0. */
static long temp_pid(const char *name) {
  const char *t = strstr(name, ".tmp.");
  while (t && strstr(t + 1, ".tmp.")) t = strstr(t + 1, ".tmp.");
  if (!t || !t[5]) return 0;
  char *end;
  long pid = strtol(t + 5, &end, 10);
  return *end == 0 && pid > 0 ? pid : 0;
}

int kd_remove_stale_temps(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int removed = 0;
  for (struct dirent *e; (e = readdir(d));) {
    long pid = temp_pid(e->d_name);
    if (!pid || pid == (long)getpid() || !(kill((pid_t)pid, 0) == -1 && errno == ESRCH)) continue;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
    removed += unlink(path) == 0;
  }
  closedir(d);
  return removed;
}

int kd_write_file_atomic(const char *path, const void *data, size_t len, KdError *err) {
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

int kd_mkdir_p(const char *path, KdError *err) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return kd_error(err, "'%s': bad directory path", path);
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char c = buf[i];
    buf[i] = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return kd_error(err, "%s: cannot create directory: %s", buf, strerror(errno));
    buf[i] = c;
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
    return kd_error(err, "%s: exists and is not a directory", path);
  return 0;
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p) != 0 && errno != ENOENT ? -1 : 0;
}

int kd_remove_tree(const char *path, KdError *err) {
  if (!path || !*path || !strcmp(path, "/")) return kd_error(err, "refusing to remove '%s'", path ? path : "");
  if (!kd_path_exists(path)) return 0;
  if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    return kd_error(err, "%s: cannot remove: %s", path, strerror(errno));
  return 0;
}

int kd_path_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

void kd_escape_name(const char *name, char *out, size_t out_len) {
  if (!out_len) return;
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p && o + 5 < out_len; p++) {
    if (*p >= 32 && *p < 127 && *p != '\\') out[o++] = (char)*p;
    else o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", *p);
  }
  out[o < out_len ? o : out_len - 1] = 0;
}

int kd_path_fmt(char *buf, size_t len, KdError *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= len) return kd_error(err, "path too long: %.200s...", buf);
  return 0;
}

char *kd_read_text(const char *path, size_t *len, size_t max, KdError *err) {
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

int kd_append_line(const char *path, const char *line, KdError *err) {
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

void kd_json_escape(const char *s, char *out, size_t len) {
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
