/* Safetensors reading (defensive header validation, dtype conversion),
 * writing (temp file + fsync + rename) and parameter-store checkpoints.
 * See safetensors.h for the format. */
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; add byte swaps");

#define MAX_HEADER (100u << 20) /* the reference implementation's limit */
#define MAX_DIMS 8

/* ---------- dtypes ---------- */

typedef enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_OTHER } DtKind;

static const struct {
  const char *name;
  int size;
  DtKind kind;
} dtypes[] = {
    {"F32", 4, DT_F32},    {"F16", 2, DT_F16},    {"BF16", 2, DT_BF16},  {"F64", 8, DT_F64},
    {"I64", 8, DT_OTHER},  {"U64", 8, DT_OTHER},  {"I32", 4, DT_OTHER},  {"U32", 4, DT_OTHER},
    {"I16", 2, DT_OTHER},  {"U16", 2, DT_OTHER},  {"I8", 1, DT_OTHER},   {"U8", 1, DT_OTHER},
    {"BOOL", 1, DT_OTHER}, {"F8_E4M3", 1, DT_OTHER}, {"F8_E5M2", 1, DT_OTHER},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

static float f16_to_f32(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  float v;
  if (e == 0)
    v = ldexpf((float)m, -24); /* zero and subnormals */
  else if (e == 31)
    v = m ? NAN : INFINITY;
  else
    v = ldexpf((float)(m | 1024), e - 25);
  return s ? -v : v;
}

static float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float v;
  memcpy(&v, &u, sizeof v);
  return v;
}

/* ---------- the reader ---------- */

typedef struct {
  char *name;
  int dtype; /* index into dtypes */
  int ndim;
  int64_t shape[MAX_DIMS];
  uint64_t numel, begin, end;
} Entry;

struct KdSafetensors {
  char *path;
  int fd;
  uint64_t data_start, data_len;
  Entry *e;
  int n;
  int *by_name; /* entry indices sorted by name */
  char **meta;  /* key, value pairs */
  int n_meta;
};

void kd_safetensors_close(KdSafetensors *st) {
  if (!st) return;
  if (st->fd >= 0) close(st->fd);
  for (int i = 0; i < st->n; i++) free(st->e[i].name);
  for (int i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
  free(st->e);
  free(st->by_name);
  free(st->meta);
  free(st->path);
  free(st);
}

static int read_full(int fd, void *buf, size_t len, uint64_t off) {
  char *p = buf;
  while (len) {
    ssize_t r = pread(fd, p, len, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    len -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

/* A JSON number that is a non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return -1;
  double v = j->valuedouble;
  if (!(v >= 0.0 && v <= 9007199254740992.0) || v != floor(v)) return -1;
  *out = (uint64_t)v;
  return 0;
}

static int cmp_name(const void *a, const void *b, void *ctx) {
  const Entry *e = ctx;
  return strcmp(e[*(const int *)a].name, e[*(const int *)b].name);
}
static int cmp_begin(const void *a, const void *b, void *ctx) {
  const Entry *x = (const Entry *)ctx + *(const int *)a, *y = (const Entry *)ctx + *(const int *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int parse_meta(KdSafetensors *st, const cJSON *m, KdError *err) {
  if (!cJSON_IsObject(m)) return kd_error(err, "%s: \"__metadata__\" is not an object", st->path);
  int n = cJSON_GetArraySize(m);
  st->meta = calloc((size_t)(2 * n + 1), sizeof(char *));
  if (!st->meta) return kd_error(err, "%s: out of memory", st->path);
  for (const cJSON *kv = m->child; kv; kv = kv->next) {
    if (!cJSON_IsString(kv))
      return kd_error(err, "%s: \"__metadata__\" value of \"%s\" is not a string", st->path, kv->string);
    st->meta[2 * st->n_meta] = strdup(kv->string);
    st->meta[2 * st->n_meta + 1] = strdup(kv->valuestring);
    st->n_meta++;
    if (!st->meta[2 * st->n_meta - 2] || !st->meta[2 * st->n_meta - 1]) return kd_error(err, "%s: out of memory", st->path);
  }
  return 0;
}

static int parse_entry(KdSafetensors *st, const cJSON *t, Entry *e, KdError *err) {
  const char *nm = t->string;
  if (!cJSON_IsObject(t)) return kd_error(err, "%s: tensor \"%s\": expected an object", st->path, nm);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
  if (!cJSON_IsString(dt)) return kd_error(err, "%s: tensor \"%s\": \"dtype\" missing or not a string", st->path, nm);
  e->dtype = -1;
  for (int k = 0; k < N_DTYPES; k++)
    if (strcmp(dt->valuestring, dtypes[k].name) == 0) e->dtype = k;
  if (e->dtype < 0) return kd_error(err, "%s: tensor \"%s\": unknown dtype \"%.32s\"", st->path, nm, dt->valuestring);
  if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > MAX_DIMS)
    return kd_error(err, "%s: tensor \"%s\": \"shape\" missing or not an array of at most %d sizes", st->path, nm,
                    MAX_DIMS);
  e->numel = 1;
  for (const cJSON *d = sh->child; d; d = d->next) {
    uint64_t v;
    if (json_uint(d, &v) || v > INT32_MAX)
      return kd_error(err, "%s: tensor \"%s\": shape entry %d is not a size", st->path, nm, e->ndim);
    e->shape[e->ndim++] = (int64_t)v;
    /* Bounded by the data size before multiplying, so it never overflows. */
    if (e->numel && v > st->data_len / e->numel)
      return kd_error(err, "%s: tensor \"%s\": shape holds more values than the file's %llu data bytes", st->path, nm,
                      (unsigned long long)st->data_len);
    e->numel *= v;
  }
  uint64_t b, en;
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(off->child, &b) || json_uint(off->child->next, &en))
    return kd_error(err, "%s: tensor \"%s\": \"data_offsets\" is not [begin, end]", st->path, nm);
  if (b > en || en > st->data_len)
    return kd_error(err, "%s: tensor \"%s\": data_offsets [%llu, %llu] outside the %llu data bytes", st->path, nm,
                    (unsigned long long)b, (unsigned long long)en, (unsigned long long)st->data_len);
  if (e->numel * (uint64_t)dtypes[e->dtype].size != en - b)
    return kd_error(err, "%s: tensor \"%s\": %llu values of %s need %llu bytes, data_offsets span %llu", st->path, nm,
                    (unsigned long long)e->numel, dtypes[e->dtype].name,
                    (unsigned long long)(e->numel * dtypes[e->dtype].size), (unsigned long long)(en - b));
  e->begin = b;
  e->end = en;
  e->name = strdup(nm);
  return e->name ? 0 : kd_error(err, "%s: out of memory", st->path);
}

static int parse_header(KdSafetensors *st, const char *hdr, size_t hlen, KdError *err) {
  if (memchr(hdr, 0, hlen)) return kd_error(err, "%s: header holds a NUL byte", st->path);
  if (hdr[0] != '{') return kd_error(err, "%s: header does not start with '{'", st->path);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
  if (!root) {
    size_t at = end && end >= hdr && end <= hdr + hlen ? (size_t)(end - hdr) : 0;
    return kd_error(err, "%s: header is not valid JSON (near byte %zu of %zu)", st->path, at, hlen);
  }
  int rc = -1;
  for (const char *p = end; p < hdr + hlen; p++)
    if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
      kd_error(err, "%s: bytes after the JSON header (at byte %zu of %zu)", st->path, (size_t)(p - hdr), hlen);
      goto out;
    }
  if (!cJSON_IsObject(root)) {
    kd_error(err, "%s: header is not a JSON object", st->path);
    goto out;
  }
  int n = cJSON_GetArraySize(root);
  st->e = calloc((size_t)n + 1, sizeof *st->e);
  st->by_name = calloc((size_t)n + 1, sizeof *st->by_name);
  if (!st->e || !st->by_name) {
    kd_error(err, "%s: out of memory for %d header entries", st->path, n);
    goto out;
  }
  for (const cJSON *t = root->child; t; t = t->next) {
    if (strcmp(t->string, "__metadata__") == 0) {
      if (st->meta) {
        kd_error(err, "%s: \"__metadata__\" appears twice", st->path);
        goto out;
      }
      if (parse_meta(st, t, err)) goto out;
      continue;
    }
    if (parse_entry(st, t, &st->e[st->n], err)) goto out;
    st->by_name[st->n] = st->n;
    st->n++;
  }
  /* Duplicate names, then overlapping byte ranges (empty tensors aside). */
  qsort_r(st->by_name, (size_t)st->n, sizeof(int), cmp_name, st->e);
  for (int i = 1; i < st->n; i++)
    if (strcmp(st->e[st->by_name[i]].name, st->e[st->by_name[i - 1]].name) == 0) {
      kd_error(err, "%s: tensor \"%s\" appears twice in the header", st->path, st->e[st->by_name[i]].name);
      goto out;
    }
  int *order = malloc(((size_t)st->n + 1) * sizeof(int));
  if (!order) {
    kd_error(err, "%s: out of memory", st->path);
    goto out;
  }
  for (int i = 0; i < st->n; i++) order[i] = i;
  qsort_r(order, (size_t)st->n, sizeof(int), cmp_begin, st->e);
  uint64_t reach = 0;
  int last = -1;
  for (int i = 0; i < st->n; i++) {
    const Entry *e = &st->e[order[i]];
    if (e->begin == e->end) continue;
    if (e->begin < reach) {
      kd_error(err, "%s: data of \"%s\" [%llu, %llu] overlaps \"%s\" [%llu, %llu]", st->path, e->name,
               (unsigned long long)e->begin, (unsigned long long)e->end, st->e[last].name,
               (unsigned long long)st->e[last].begin, (unsigned long long)st->e[last].end);
      free(order);
      goto out;
    }
    reach = e->end;
    last = order[i];
  }
  free(order);
  rc = 0;
out:
  cJSON_Delete(root);
  return rc;
}

KdSafetensors *kd_safetensors_open(const char *path, KdError *err) {
  KdSafetensors *st = calloc(1, sizeof *st);
  if (!st || !(st->path = strdup(path))) {
    free(st);
    kd_error(err, "%s: out of memory", path);
    return NULL;
  }
  char *hdr = NULL;
  struct stat sb;
  unsigned char lenb[8];
  st->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (st->fd < 0) {
    kd_error(err, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  if (fstat(st->fd, &sb) || !S_ISREG(sb.st_mode)) {
    kd_error(err, "%s: not a regular file", path);
    goto fail;
  }
  uint64_t size = (uint64_t)sb.st_size;
  if (size < 8 || read_full(st->fd, lenb, 8, 0)) {
    kd_error(err, "%s: truncated: %llu bytes, but a safetensors file starts with an 8-byte header length", path,
             (unsigned long long)size);
    goto fail;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
  if (hlen < 2 || hlen > size - 8) {
    kd_error(err, "%s: header length %llu does not fit the file's %llu bytes (truncated or not safetensors)", path,
             (unsigned long long)hlen, (unsigned long long)size);
    goto fail;
  }
  if (hlen > MAX_HEADER) {
    kd_error(err, "%s: header length %llu over the %u-byte limit", path, (unsigned long long)hlen, MAX_HEADER);
    goto fail;
  }
  st->data_start = 8 + hlen;
  st->data_len = size - st->data_start;
  hdr = malloc(hlen);
  if (!hdr || read_full(st->fd, hdr, hlen, 8)) {
    kd_error(err, "%s: cannot read the %llu-byte header", path, (unsigned long long)hlen);
    goto fail;
  }
  if (parse_header(st, hdr, hlen, err)) goto fail;
  free(hdr);
  return st;
fail:
  free(hdr);
  kd_safetensors_close(st);
  return NULL;
}

int kd_safetensors_count(const KdSafetensors *st) { return st->n; }

const char *kd_safetensors_name(const KdSafetensors *st, int i) { return i >= 0 && i < st->n ? st->e[i].name : NULL; }

int kd_safetensors_find(const KdSafetensors *st, const char *name) {
  int lo = 0, hi = st->n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(st->e[st->by_name[mid]].name, name);
    if (c == 0) return st->by_name[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

int kd_safetensors_shape(const KdSafetensors *st, int i, int *shape, int *ndim) {
  if (i < 0 || i >= st->n) return -1;
  const Entry *e = &st->e[i];
  if (ndim) *ndim = e->ndim;
  if (e->ndim > 4) return -1;
  for (int d = 0; d < 4; d++) shape[d] = d < e->ndim ? (int)e->shape[d] : 1;
  return 0;
}

const char *kd_safetensors_dtype(const KdSafetensors *st, int i) {
  return i >= 0 && i < st->n ? dtypes[st->e[i].dtype].name : NULL;
}

size_t kd_safetensors_numel(const KdSafetensors *st, int i) { return i >= 0 && i < st->n ? (size_t)st->e[i].numel : 0; }

const char *kd_safetensors_meta(const KdSafetensors *st, const char *key) {
  for (int i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
  return NULL;
}

static int read_entry(KdSafetensors *st, const Entry *e, float *dst, KdError *err) {
  const int kind = dtypes[e->dtype].kind, size = dtypes[e->dtype].size;
  const uint64_t off = st->data_start + e->begin;
  if (kind == DT_OTHER)
    return kd_error(err, "%s: tensor \"%s\" is %s, not a float type", st->path, e->name, dtypes[e->dtype].name);
  if (kind == DT_F32) {
    if (read_full(st->fd, dst, (size_t)e->numel * 4, off)) goto io;
    return 0;
  }
  /* Other widths: convert in chunks through a small buffer. */
  unsigned char buf[8192];
  const size_t per = sizeof buf / (size_t)size;
  for (uint64_t i = 0; i < e->numel; i += per) {
    size_t k = e->numel - i < per ? (size_t)(e->numel - i) : per;
    if (read_full(st->fd, buf, k * (size_t)size, off + i * (uint64_t)size)) goto io;
    for (size_t j = 0; j < k; j++) {
      const unsigned char *b = buf + j * (size_t)size;
      if (kind == DT_F16) {
        dst[i + j] = f16_to_f32((uint16_t)(b[0] | b[1] << 8));
      } else if (kind == DT_BF16) {
        dst[i + j] = bf16_to_f32((uint16_t)(b[0] | b[1] << 8));
      } else {
        double v;
        memcpy(&v, b, 8);
        dst[i + j] = (float)v;
      }
    }
  }
  return 0;
io:
  return kd_error(err, "%s: cannot read the data of \"%s\" (file truncated?)", st->path, e->name);
}

int kd_safetensors_read_f32(KdSafetensors *st, const char *name, float *dst, size_t n, KdError *err) {
  int i = kd_safetensors_find(st, name);
  if (i < 0) return kd_error(err, "%s: no tensor named \"%s\"", st->path, name);
  if (st->e[i].numel != n)
    return kd_error(err, "%s: tensor \"%s\" has %llu values, the caller expects %zu", st->path, name,
                    (unsigned long long)st->e[i].numel, n);
  return read_entry(st, &st->e[i], dst, err);
}

/* ---------- the writer ---------- */

static int write_all(FILE *f, const void *p, size_t len) { return fwrite(p, 1, len, f) == len ? 0 : -1; }

static void fsync_dir(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    slash[1] = 0;
  else if (slash)
    *slash = 0;
  else
    snprintf(dir, sizeof dir, ".");
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

static cJSON *build_header(int n, const char *const *names, const int *ndims, const int (*shapes)[4],
                           const char *const *meta_kv, uint64_t *data_len, const char *path, KdError *err) {
  cJSON *root = cJSON_CreateObject();
  if (!root) goto oom;
  if (meta_kv && meta_kv[0]) {
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    if (!m) goto oom;
    for (int i = 0; meta_kv[i]; i += 2) {
      if (!meta_kv[i + 1]) {
        kd_error(err, "%s: metadata key \"%s\" has no value", path, meta_kv[i]);
        goto fail;
      }
      if (!cJSON_AddStringToObject(m, meta_kv[i], meta_kv[i + 1])) goto oom;
    }
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    if (!names[i] || !names[i][0] || strcmp(names[i], "__metadata__") == 0 || ndims[i] < 0 || ndims[i] > 4) {
      kd_error(err, "%s: tensor %d: bad name or %d dims", path, i, ndims[i]);
      goto fail;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, names[i])) {
      kd_error(err, "%s: tensor name \"%s\" given twice", path, names[i]);
      goto fail;
    }
    uint64_t numel = 1;
    cJSON *t = cJSON_AddObjectToObject(root, names[i]);
    cJSON *sh = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
    if (!t || !cJSON_AddStringToObject(t, "dtype", "F32") || !sh) goto oom;
    for (int d = 0; d < ndims[i]; d++) {
      if (shapes[i][d] < 1) {
        kd_error(err, "%s: tensor \"%s\": dim %d has size %d", path, names[i], d, shapes[i][d]);
        goto fail;
      }
      numel *= (uint64_t)shapes[i][d];
      cJSON *v = cJSON_CreateNumber(shapes[i][d]);
      if (!v || !cJSON_AddItemToArray(sh, v)) goto oom;
    }
    cJSON *o = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON *b = cJSON_CreateNumber((double)off), *e = cJSON_CreateNumber((double)(off + 4 * numel));
    if (!o || !b || !e || !cJSON_AddItemToArray(o, b) || !cJSON_AddItemToArray(o, e)) goto oom;
    off += 4 * numel;
  }
  *data_len = off;
  return root;
oom:
  kd_error(err, "%s: out of memory building the header", path);
fail:
  cJSON_Delete(root);
  return NULL;
}

int kd_safetensors_write(const char *path, int n, const char *const *names, const float *const *data, const int *ndims,
                         const int (*shapes)[4], const char *const *meta_kv, KdError *err) {
  uint64_t data_len = 0;
  cJSON *root = build_header(n, names, ndims, shapes, meta_kv, &data_len, path, err);
  if (!root) return -1;
  char *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!json) return kd_error(err, "%s: out of memory printing the header", path);
  /* Pad with spaces so the data starts 8-byte aligned. */
  size_t jlen = strlen(json), hlen = (jlen + 7) & ~(size_t)7;
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
    free(json);
    return kd_error(err, "%s: path too long", path);
  }
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    free(json);
    return kd_error(err, "%s: cannot create: %s", tmp, strerror(e));
  }
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  int bad = write_all(f, lenb, 8) || write_all(f, json, jlen) || write_all(f, "        ", hlen - jlen);
  free(json);
  for (int i = 0; i < n && !bad; i++) {
    size_t numel = 1;
    for (int d = 0; d < ndims[i]; d++) numel *= (size_t)shapes[i][d];
    bad = write_all(f, data[i], numel * sizeof(float));
  }
  int e = errno;
  if (!bad && (fflush(f) || fsync(fileno(f)))) bad = 1, e = errno;
  if (fclose(f) && !bad) bad = 1, e = errno;
  if (bad) {
    unlink(tmp);
    return kd_error(err, "%s: write failed: %s", tmp, strerror(e));
  }
  if (rename(tmp, path)) {
    e = errno;
    unlink(tmp);
    return kd_error(err, "%s: cannot rename %s over it: %s", path, tmp, strerror(e));
  }
  fsync_dir(path);
  return 0;
}

/* ---------- parameter-store checkpoints ---------- */

int kd_safetensors_save(const char *path, const KdParams *p, const char *const *meta_kv, KdError *err) {
  const int n = kd_params_count(p);
  const char **names = malloc(((size_t)n + 1) * sizeof *names);
  const float **data = malloc(((size_t)n + 1) * sizeof *data);
  int *ndims = malloc(((size_t)n + 1) * sizeof *ndims);
  int(*shapes)[4] = malloc(((size_t)n + 1) * sizeof *shapes);
  int rc = -1;
  if (!names || !data || !ndims || !shapes) {
    kd_error(err, "%s: out of memory", path);
    goto out;
  }
  for (int i = 0; i < n; i++) {
    const KdTensor *t = kd_params_at(p, i);
    if (!t->data) {
      kd_error(err, "%s: parameter store not finalized (\"%s\" has no data)", path, t->name);
      goto out;
    }
    names[i] = t->name;
    data[i] = t->data;
    ndims[i] = t->ndim;
    memcpy(shapes[i], t->shape, sizeof shapes[i]);
  }
  rc = kd_safetensors_write(path, n, names, data, ndims, (const int(*)[4])shapes, meta_kv, err);
out:
  free(names);
  free(data);
  free(ndims);
  free(shapes);
  return rc;
}

/* Bounded message builder: lists problems until the message is nearly
 * full, then counts the rest. */
typedef struct {
  char buf[900];
  size_t len;
  int shown, hidden;
} Report;

static void report(Report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(Report *r, const char *fmt, ...) {
  char item[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(item, sizeof item, fmt, ap);
  va_end(ap);
  size_t k = strlen(item);
  if (r->len + k + 2 >= sizeof r->buf - 40) {
    r->hidden++;
    return;
  }
  if (r->shown++) {
    memcpy(r->buf + r->len, "; ", 2);
    r->len += 2;
  }
  memcpy(r->buf + r->len, item, k + 1);
  r->len += k;
}

static void shape_text(char *buf, size_t len, int ndim, const int64_t *s) {
  size_t off = 0;
  buf[0] = 0;
  if (ndim == 0) snprintf(buf, len, "scalar");
  for (int d = 0; d < ndim && off < len; d++) off += (size_t)snprintf(buf + off, len - off, d ? ",%lld" : "%lld", (long long)s[d]);
}

int kd_safetensors_load(const char *path, KdParams *p, int strict, KdError *err) {
  KdSafetensors *st = kd_safetensors_open(path, err);
  if (!st) return -1;
  const int n = kd_params_count(p);
  Report r = {.len = 0};
  char *used = calloc((size_t)st->n + 1, 1);
  if (!used) {
    kd_safetensors_close(st);
    return kd_error(err, "%s: out of memory", path);
  }
  for (int i = 0; i < n; i++) {
    const KdTensor *t = kd_params_at(p, i);
    int k = kd_safetensors_find(st, t->name);
    if (k < 0) {
      report(&r, "missing \"%s\"", t->name);
      continue;
    }
    used[k] = 1;
    const Entry *e = &st->e[k];
    int same = e->ndim == t->ndim || (e->ndim == 0 && t->numel == 1);
    for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == t->shape[d];
    if (!same) {
      char fs[96], ms[96];
      int64_t s64[4];
      for (int d = 0; d < 4; d++) s64[d] = t->shape[d];
      shape_text(fs, sizeof fs, e->ndim, e->shape);
      shape_text(ms, sizeof ms, t->ndim, s64);
      report(&r, "\"%s\" is %s in the file, %s in the model", t->name, fs, ms);
    } else if (dtypes[e->dtype].kind == DT_OTHER) {
      report(&r, "\"%s\" has dtype %s, not a float type", t->name, dtypes[e->dtype].name);
    }
  }
  if (strict)
    for (int k = 0; k < st->n; k++)
      if (!used[k]) report(&r, "unexpected \"%s\"", st->e[k].name);
  free(used);
  int rc = 0;
  if (r.shown || r.hidden) {
    char more[48] = "";
    if (r.hidden) snprintf(more, sizeof more, " (+%d more)", r.hidden);
    rc = kd_error(err, "%s: %d problem%s loading %d tensors: %s%s", path, r.shown + r.hidden,
                  r.shown + r.hidden == 1 ? "" : "s", n, r.buf, more);
  }
  for (int i = 0; rc == 0 && i < n; i++) {
    KdTensor *t = kd_params_at(p, i);
    if (!t->data)
      rc = kd_error(err, "%s: parameter store not finalized (\"%s\" has no data)", path, t->name);
    else
      rc = read_entry(st, &st->e[kd_safetensors_find(st, t->name)], t->data, err);
  }
  kd_safetensors_close(st);
  return rc;
}
