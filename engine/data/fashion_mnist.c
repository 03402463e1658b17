/* Reads Fashion-MNIST's gzipped IDX files (big-endian header: magic, then
 * one 32-bit size per dimension, then the bytes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/fashion.h"

const char *const kd_fashion_class_names[KD_FASHION_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

/* Reads an IDX file with the given magic (0x0803 images, 0x0801 labels);
 * dims[] receives the sizes. */
static int read_idx(const char *path, uint32_t magic, int ndim, uint32_t *dims, uint8_t **data,
                    KdError *err) {
  gzFile f = gzopen(path, "rb");
  if (!f)
    return kd_error(err, "%s: cannot open: %s (is the dataset-fashion-mnist package installed?)", path,
                    errno ? strerror(errno) : "gzopen failed");
  unsigned char hdr[16];
  int want = 4 + 4 * ndim, rc = -1;
  *data = NULL;
  if (gzread(f, hdr, (unsigned)want) != want) {
    kd_error(err, "%s: truncated IDX header", path);
    goto done;
  }
  uint32_t m = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
  if (m != magic) {
    kd_error(err, "%s: IDX magic 0x%08x, expected 0x%08x", path, m, magic);
    goto done;
  }
  size_t total = 1;
  for (int i = 0; i < ndim; i++) {
    const unsigned char *p = hdr + 4 + 4 * i;
    dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (dims[i] == 0 || dims[i] > 1000000) {
      kd_error(err, "%s: IDX dimension %d is %u, expected 1..1000000", path, i, dims[i]);
      goto done;
    }
    total *= dims[i];
  }
  if (total > ((size_t)1 << 31) || !(*data = malloc(total))) {
    kd_error(err, "%s: cannot hold %zu bytes", path, total);
    goto done;
  }
  if (gzread(f, *data, (unsigned)total) != (int)total) {
    kd_error(err, "%s: truncated IDX data (expected %zu bytes)", path, total);
    goto done;
  }
  rc = 0;
done:
  gzclose(f);
  if (rc) free(*data), *data = NULL;
  return rc;
}

int kd_fashion_mnist_load(const char *dir, const char *split, KdFashionMnist *out, KdError *err) {
  memset(out, 0, sizeof *out);
  if (!dir) dir = getenv("KD_FASHION_MNIST_DIR");
  if (!dir || !*dir) dir = KD_FASHION_DEFAULT_SOURCE;
  char ip[4096], lp[4096];
  snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, split);
  snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, split);
  uint32_t id[3] = {0}, ld[1] = {0};
  if (read_idx(ip, 0x0803, 3, id, &out->images, err)) return -1;
  if (id[1] != 28 || id[2] != 28) {
    kd_fashion_mnist_free(out);
    return kd_error(err, "%s: images are %ux%u, expected 28x28", ip, id[1], id[2]);
  }
  if (read_idx(lp, 0x0801, 1, ld, &out->labels, err)) {
    kd_fashion_mnist_free(out);
    return -1;
  }
  if (ld[0] != id[0]) {
    kd_fashion_mnist_free(out);
    return kd_error(err, "%s: %u labels for %u images", lp, ld[0], id[0]);
  }
  for (uint32_t i = 0; i < ld[0]; i++)
    if (out->labels[i] >= KD_FASHION_CLASSES) {
      kd_fashion_mnist_free(out);
      return kd_error(err, "%s: label %u of item %u, expected 0..9", lp, out->labels[i], i);
    }
  out->n = (int)id[0];
  return 0;
}

void kd_fashion_mnist_free(KdFashionMnist *m) {
  free(m->images);
  free(m->labels);
  memset(m, 0, sizeof *m);
}
