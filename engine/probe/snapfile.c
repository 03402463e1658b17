/* One snapshot as one safetensors file (snapfile.h). Written here rather
 * than with kd_safetensors_write because snapshots mix dtypes (U8 image,
 * optional F16 maps); read back through the defensive safetensors reader,
 * plus a raw read for the U8 image. */
#include "probe/snapfile.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "core/fileio.h"

/* float -> IEEE half, round to nearest even; overflow to inf. */
static uint16_t f32_to_f16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (a >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520 */
  if (a < 0x38800000u) {                      /* below 2^-14: subnormal half */
    float v;
    memcpy(&v, &a, 4);
    return sign | (uint16_t)lrintf(v * 16777216.0f); /* v / 2^-24, ties to even */
  }
  uint32_t m = a + 0xc8000fffu + ((a >> 13) & 1); /* rebias exponent, round */
  return sign | (uint16_t)(m >> 13);
}

static int is_map(const KdSnapField *f) { return !strncmp(f->name, "img", 3) && strstr(f->name, ".P"); }

/* ---------- metadata ---------- */

/* The loss parts as %.17g: cJSON prints 15 digits whenever they read back
 * within DBL_EPSILON (0.1 + 0.2 becomes 0.3), and a replayed snapshot must
 * show the very numbers the live one did. */
static void add_parts(cJSON *o, const char *key, const KdLossPart *p, int n) {
  cJSON *a = cJSON_AddObjectToObject(o, key);
  char num[32];
  for (int i = 0; a && i < n; i++)
    if (isfinite(p[i].value)) {
      snprintf(num, sizeof num, "%.17g", p[i].value);
      cJSON_AddRawToObject(a, p[i].name, num);
    } else {
      cJSON_AddNullToObject(a, p[i].name);
    }
}

static char *meta_json(const KdSnapshot *s) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddNumberToObject(o, "step", s->step);
  cJSON_AddNumberToObject(o, "time", s->time);
  cJSON_AddNumberToObject(o, "capture_s", s->capture_s);
  cJSON_AddNumberToObject(o, "img_h", s->img_h);
  cJSON_AddNumberToObject(o, "img_w", s->img_w);
  cJSON *im = cJSON_AddArrayToObject(o, "images");
  for (int i = 0; im && i < s->nimages; i++) {
    cJSON *e = cJSON_CreateObject();
    if (!e) break;
    cJSON_AddNumberToObject(e, "index", s->image_index[i]);
    cJSON_AddNumberToObject(e, "id", (double)s->image_id[i]);
    cJSON_AddItemToArray(im, e);
  }
  cJSON *st = cJSON_AddArrayToObject(o, "strides");
  for (int l = 0; st && l < s->nlev; l++) cJSON_AddItemToArray(st, cJSON_CreateNumber(s->strides[l]));
  cJSON_AddNumberToObject(o, "t_channels", s->t_channels);
  cJSON_AddNumberToObject(o, "s_channels", s->s_channels);
  cJSON_AddNumberToObject(o, "attn_temp", s->attn_temp);
  cJSON_AddStringToObject(o, "methods", s->methods);
  add_parts(o, "parts", s->parts, s->nparts);
  add_parts(o, "probe_parts", s->probe_parts, s->nprobe_parts);
  cJSON *cl = cJSON_AddArrayToObject(o, "classes");
  for (int i = 0; cl && i < s->nclasses; i++) cJSON_AddItemToArray(cl, cJSON_CreateString(s->class_names[i]));
  char *txt = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return txt;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int read_parts(const cJSON *o, const char *key, KdLossPart *p, int *n) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
  *n = 0;
  if (!cJSON_IsObject(a)) return -1;
  for (const cJSON *e = a->child; e && *n < KD_MAX_PARTS; e = e->next) {
    snprintf(p[*n].name, sizeof p[*n].name, "%s", e->string ? e->string : "");
    p[*n].value = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    (*n)++;
  }
  return 0;
}

static int parse_meta(KdSnapshot *s, const char *txt, const char *path, KdError *err) {
  cJSON *o = cJSON_Parse(txt);
  if (!o) return kd_error(err, "%s: snapshot metadata is not JSON", path);
  int rc = -1;
  const cJSON *im = cJSON_GetObjectItemCaseSensitive(o, "images"), *st = cJSON_GetObjectItemCaseSensitive(o, "strides");
  const cJSON *me = cJSON_GetObjectItemCaseSensitive(o, "methods"), *cl = cJSON_GetObjectItemCaseSensitive(o, "classes");
  double step = num(o, "step"), h = num(o, "img_h"), w = num(o, "img_w");
  if (!(step >= 0 && step < 2e9) || !(h >= 1 && h <= 16384) || !(w >= 1 && w <= 16384) || !cJSON_IsArray(im) ||
      cJSON_GetArraySize(im) < 1 || cJSON_GetArraySize(im) > KD_PROBE_MAX_IMAGES || !cJSON_IsArray(st) ||
      cJSON_GetArraySize(st) < 1 || cJSON_GetArraySize(st) > KD_MAX_LEVELS || !cJSON_IsString(me) || !cJSON_IsArray(cl)) {
    kd_error(err, "%s: snapshot metadata lacks step, img_h/img_w, images (1..%d), strides, methods or classes", path,
             KD_PROBE_MAX_IMAGES);
    goto out;
  }
  s->step = (int)step, s->img_h = (int)h, s->img_w = (int)w;
  s->time = num(o, "time"), s->capture_s = num(o, "capture_s");
  s->t_channels = (int)fmax(0, fmin(1 << 20, num(o, "t_channels")));
  s->s_channels = (int)fmax(0, fmin(1 << 20, num(o, "s_channels")));
  s->attn_temp = (float)num(o, "attn_temp");
  for (const cJSON *e = im->child; e; e = e->next, s->nimages++) {
    s->image_index[s->nimages] = (int)fmax(-1, fmin(2e9, num(e, "index")));
    double id = num(e, "id");
    s->image_id[s->nimages] = fabs(id) < 0x1p63 ? (int64_t)id : -1; /* NaN and out of range: unknown */
  }
  for (const cJSON *e = st->child; e; e = e->next) {
    if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 4096) {
      kd_error(err, "%s: snapshot metadata: strides must be numbers 1..4096", path);
      goto out;
    }
    s->strides[s->nlev++] = (int)e->valuedouble;
  }
  snprintf(s->methods, sizeof s->methods, "%s", me->valuestring);
  read_parts(o, "parts", s->parts, &s->nparts);
  read_parts(o, "probe_parts", s->probe_parts, &s->nprobe_parts);
  int nc = cJSON_GetArraySize(cl);
  const char **names = calloc((size_t)nc + 1, sizeof *names);
  if (!names) {
    kd_error(err, "%s: out of memory", path);
    goto out;
  }
  int k = 0;
  for (const cJSON *e = cl->child; e; e = e->next) names[k++] = cJSON_IsString(e) ? e->valuestring : "";
  int bad = kd_snapshot_set_classes(s, nc, names);
  free(names);
  if (bad) {
    kd_error(err, "%s: out of memory", path);
    goto out;
  }
  rc = 0;
out:
  cJSON_Delete(o);
  return rc;
}

/* ---------- writing ---------- */

static int add_tensor(cJSON *root, const char *name, const char *dtype, int ndim, const int *shape, size_t bytes, size_t *off) {
  cJSON *t = cJSON_AddObjectToObject(root, name);
  cJSON *sh = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
  cJSON *o = t ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
  if (!sh || !o || !cJSON_AddStringToObject(t, "dtype", dtype)) return -1;
  for (int d = 0; d < ndim; d++)
    if (!cJSON_AddItemToArray(sh, cJSON_CreateNumber(shape[d]))) return -1;
  if (!cJSON_AddItemToArray(o, cJSON_CreateNumber((double)*off)) || !cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(*off + bytes))))
    return -1;
  *off += bytes;
  return 0;
}

int kd_snapshot_write_file(const char *path, const KdSnapshot *s, int f16_maps, size_t *bytes, KdError *err) {
  cJSON *root = cJSON_CreateObject(), *md = root ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
  char *meta = meta_json(s), *hdr = NULL;
  unsigned char *buf = NULL;
  int rc = -1;
  size_t off = 0, img = (size_t)s->img_h * s->img_w * 3;
  if (!md || !meta || !cJSON_AddStringToObject(md, "format", KD_SNAPSHOT_FORMAT) || !cJSON_AddStringToObject(md, "snapshot", meta))
    goto oom;
  for (int i = 0; i < s->nimages; i++) {
    char name[32];
    int shape[3] = {s->img_h, s->img_w, 3};
    snprintf(name, sizeof name, "img%d.rgb", i);
    if (add_tensor(root, name, "U8", 3, shape, img, &off)) goto oom;
  }
  for (int i = 0; i < s->nfields; i++) {
    const KdSnapField *f = &s->fields[i];
    int half = f16_maps && is_map(f);
    if (add_tensor(root, f->name, half ? "F16" : "F32", f->ndim, f->shape, f->numel * (half ? 2 : 4), &off)) goto oom;
  }
  hdr = cJSON_PrintUnformatted(root);
  if (!hdr) goto oom;
  size_t jlen = strlen(hdr), hlen = (jlen + 7) & ~(size_t)7, total = 8 + hlen + off;
  buf = malloc(total);
  if (!buf) goto oom;
  for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
  memcpy(buf + 8, hdr, jlen);
  memset(buf + 8 + jlen, ' ', hlen - jlen);
  unsigned char *p = buf + 8 + hlen;
  memcpy(p, s->rgb, img * (size_t)s->nimages);
  p += img * (size_t)s->nimages;
  for (int i = 0; i < s->nfields; i++) {
    const KdSnapField *f = &s->fields[i];
    if (f16_maps && is_map(f)) {
      for (size_t k = 0; k < f->numel; k++) {
        uint16_t h = f32_to_f16(f->data[k]);
        *p++ = (unsigned char)(h & 255), *p++ = (unsigned char)(h >> 8);
      }
    } else {
      memcpy(p, f->data, f->numel * 4); /* little-endian hosts only, as the reader */
      p += f->numel * 4;
    }
  }
  rc = kd_write_file_atomic(path, buf, total, err);
  if (!rc && bytes) *bytes = total;
  goto out;
oom:
  kd_error(err, "%s: out of memory writing a snapshot", path);
out:
  cJSON_Delete(root);
  free(meta), free(hdr), free(buf);
  return rc;
}

/* ---------- reading ---------- */

/* The U8 images: the reader validated the header; we look up the offsets. */
static int read_images(const char *path, KdSnapshot *s, KdError *err) {
  size_t img = (size_t)s->img_h * s->img_w * 3;
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
  char *hdr = NULL;
  cJSON *root = NULL;
  if (fd < 0) return kd_error(err, "%s: cannot open", path);
  unsigned char l8[8];
  uint64_t hlen = 0;
  if (pread(fd, l8, 8, 0) != 8) goto bad;
  for (int k = 0; k < 8; k++) hlen |= (uint64_t)l8[k] << (8 * k);
  if (hlen > (64u << 20) || !(hdr = malloc(hlen + 1)) || pread(fd, hdr, hlen, 8) != (ssize_t)hlen) goto bad;
  hdr[hlen] = 0;
  if (!(root = cJSON_Parse(hdr))) goto bad;
  if (!(s->rgb = malloc(img * (size_t)s->nimages))) {
    kd_error(err, "%s: out of memory", path);
    goto out;
  }
  for (int i = 0; i < s->nimages; i++) {
    char name[32];
    snprintf(name, sizeof name, "img%d.rgb", i);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype"), *o = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "U8") || !cJSON_IsArray(o) || cJSON_GetArraySize(o) != 2 ||
        !cJSON_IsNumber(o->child) || !cJSON_IsNumber(o->child->next) || o->child->valuedouble < 0 ||
        o->child->next->valuedouble - o->child->valuedouble != (double)img) {
      kd_error(err, "%s: \"%s\" is missing or not a U8 %dx%dx3 image", path, name, s->img_h, s->img_w);
      goto out;
    }
    off_t at = (off_t)(8 + hlen) + (off_t)o->child->valuedouble;
    if (pread(fd, s->rgb + img * (size_t)i, img, at) != (ssize_t)img) goto bad;
  }
  rc = 0;
  goto out;
bad:
  kd_error(err, "%s: cannot read the images (file truncated?)", path);
out:
  cJSON_Delete(root);
  free(hdr);
  close(fd);
  return rc;
}

int kd_snapshot_read_file(const char *path, KdSnapshot **out, KdError *err) {
  *out = NULL;
  KdSafetensors *st = kd_safetensors_open(path, err);
  if (!st) return -1;
  KdSnapshot *s = kd_snapshot_new();
  const char *fmt = kd_safetensors_meta(st, "format"), *meta = kd_safetensors_meta(st, "snapshot");
  if (!s) {
    kd_error(err, "%s: out of memory", path);
    goto fail;
  }
  if (!fmt || strcmp(fmt, KD_SNAPSHOT_FORMAT) || !meta) {
    kd_error(err, "%s: not a kdscope snapshot (metadata \"format\" should be \"%s\")", path, KD_SNAPSHOT_FORMAT);
    goto fail;
  }
  if (parse_meta(s, meta, path, err) || read_images(path, s, err)) goto fail;
  for (int i = 0; i < kd_safetensors_count(st); i++) {
    const char *name = kd_safetensors_name(st, i);
    if (!strncmp(name, "img", 3) && strlen(name) > 4 && !strcmp(name + strlen(name) - 4, ".rgb")) continue;
    int shape[4], ndim;
    if (kd_safetensors_shape(st, i, shape, &ndim)) {
      kd_error(err, "%s: \"%s\" has more than 4 dims", path, name);
      goto fail;
    }
    KdSnapField *f = kd_snapshot_add(s, name, ndim, shape);
    if (!f) {
      kd_error(err, "%s: \"%s\": name too long or out of memory", path, name);
      goto fail;
    }
    if (kd_safetensors_read_f32(st, name, f->data, f->numel, err)) goto fail;
  }
  kd_safetensors_close(st);
  *out = s;
  return 0;
fail:
  kd_safetensors_close(st);
  kd_snapshot_free(s);
  return -1;
}
