/* For fuzz targets whose code under test reads a path: the input bytes as
 * a file. One memfd per process, rewritten for each input and opened by
 * the code under test through /proc/self/fd (no disk traffic); a scratch
 * directory for targets that need a directory tree. */
#ifndef KD_FUZZ_FILE_H
#define KD_FUZZ_FILE_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Path of a file holding exactly data[0..size); NULL when it cannot be made. */
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("kd-fuzz", MFD_CLOEXEC);
    if (fd < 0) return NULL;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0)) return NULL;
  for (size_t off = 0; off < size;) {
    ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
    if (w <= 0) return NULL;
    off += (size_t)w;
  }
  return path;
}

static char fuzz_dir_path[64];

static int fuzz_rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb, (void)type, (void)ftw;
  return remove(path);
}

static void fuzz_dir_remove(void) { nftw(fuzz_dir_path, fuzz_rm_entry, 8, FTW_DEPTH | FTW_PHYS); }

/* A directory made once per process (under /dev/shm when it exists),
 * removed with what it holds when the process exits. */
static inline const char *fuzz_dir(void) {
  if (!fuzz_dir_path[0]) {
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/kd-fuzz-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(fuzz_dir_path)) return fuzz_dir_path[0] = 0, NULL;
    atexit(fuzz_dir_remove);
  }
  return fuzz_dir_path;
}

#endif
