/* COCO detection json -> KdDataset. Validates every field it uses and
 * reports the first problem as "<file>: <json path>: expected ..., got ...".
 * Fixable box problems (outside the image, empty) are counted, not errors. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset_impl.h"
#include "core/fileio.h"

#define MAX_JSON_BYTES ((size_t)2 << 30)
#define MAX_NAME 1024

/* ---- value checks: each fills err with "<path>: expected X, got Y" ---- */

static const char *type_name(const cJSON *v) {
  if (!v) return "nothing (missing)";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  return "an invalid value";
}

static int get_int(const cJSON *obj, const char *key, const char *path, int64_t lo, int64_t hi,
                   int64_t *out, KdError *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v))
    return kd_error(err, "%s.%s: expected an integer, got %s", path, key, type_name(v));
  double d = v->valuedouble;
  if (!(d == floor(d)) || d < (double)lo || d > (double)hi)
    return kd_error(err, "%s.%s: expected an integer in %lld..%lld, got %.17g", path, key,
                    (long long)lo, (long long)hi, d);
  *out = (int64_t)d;
  return 0;
}

/* Rejects overlong forms, surrogates and code points above U+10FFFF. */
static int utf8_bad_offset(const unsigned char *s) {
  for (const unsigned char *p = s; *p;) {
    unsigned c = *p, n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    if (n == 9) return (int)(p - s);
    unsigned cp = n == 0 ? c : c & (0x3Fu >> n);
    for (unsigned k = 1; k <= n; k++) {
      if ((p[k] & 0xC0) != 0x80) return (int)(p - s);
      cp = (cp << 6) | (p[k] & 0x3F);
    }
    static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (int)(p - s);
    p += n + 1;
  }
  return -1;
}

static int get_string(const cJSON *obj, const char *key, const char *path, const char **out,
                      KdError *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(v) || !v->valuestring)
    return kd_error(err, "%s.%s: expected a string, got %s", path, key, type_name(v));
  const char *s = v->valuestring;
  int bad = utf8_bad_offset((const unsigned char *)s);
  if (bad >= 0) {
    char esc[96];
    kd_escape_name(s, esc, sizeof esc);
    return kd_error(err, "%s.%s: expected UTF-8 text, got byte 0x%02x at offset %d in \"%s\"", path,
                    key, (unsigned char)s[bad], bad, esc);
  }
  if (strlen(s) >= MAX_NAME)
    return kd_error(err, "%s.%s: expected at most %d bytes, got %zu", path, key, MAX_NAME - 1, strlen(s));
  *out = s;
  return 0;
}

static int check_file_name(const char *s, const char *path, KdError *err) {
  if (!*s) return kd_error(err, "%s.file_name: expected a file name, got \"\"", path);
  if (s[0] == '/')
    return kd_error(err, "%s.file_name: expected a path relative to the image folder, got \"%s\"", path, s);
  for (const char *p = s; *p;) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return kd_error(err, "%s.file_name: expected a path inside the image folder, got \"%s\"", path, s);
    p += n + (e ? 1 : 0);
  }
  return 0;
}

static const cJSON *get_array(const cJSON *root, const char *key, int required, KdError *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v && !required) return NULL;
  if (!cJSON_IsArray(v)) {
    kd_error(err, "%s: expected an array, got %s", key, type_name(v));
    return NULL;
  }
  return v;
}

static int parse_error(const char *json, size_t len, const char *end, KdError *err) {
  size_t pos = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
  int line = 1, col = 1;
  for (size_t i = 0; i < pos; i++) {
    if (json[i] == '\n') line++, col = 1;
    else col++;
  }
  char near[48] = "", raw[24];
  size_t n = len - pos < sizeof raw - 1 ? len - pos : sizeof raw - 1;
  memcpy(raw, json + pos, n);
  raw[n] = 0;
  kd_escape_name(raw, near, sizeof near);
  size_t end_nonspace = len;
  while (end_nonspace > pos && (json[end_nonspace - 1] == ' ' || json[end_nonspace - 1] == '\n' ||
                                json[end_nonspace - 1] == '\r' || json[end_nonspace - 1] == '\t'))
    end_nonspace--;
  if (pos + 1 >= end_nonspace) /* cJSON stops at the last token when input runs out */
    return kd_error(err, "line %d, column %d: malformed JSON: the text ends early near \"%s\" (truncated file?)",
                    line, col, near);
  return kd_error(err, "line %d, column %d: malformed JSON near \"%s\"", line, col, near);
}

/* ---- the three sections ---- */

typedef struct Parse {
  KdDataset *ds;
  KdIdIndex *cats; /* sorted COCO id -> contiguous index */
  size_t names_len, names_cap;
} Parse;

static char *pool_add(Parse *p, const char *s) {
  size_t n = strlen(s) + 1;
  if (p->names_len + n > p->names_cap) return NULL; /* sized up front */
  char *d = p->ds->names + p->names_len;
  memcpy(d, s, n);
  p->names_len += n;
  return d;
}

static int parse_categories(Parse *p, const cJSON *cats, KdError *err) {
  KdDataset *ds = p->ds;
  int n = cJSON_GetArraySize(cats);
  ds->class_names = calloc((size_t)n + 1, sizeof(char *));
  ds->class_ids = calloc((size_t)n + 1, sizeof(int64_t));
  p->cats = calloc((size_t)n + 1, sizeof(KdIdIndex));
  if (!ds->class_names || !ds->class_ids || !p->cats) return kd_error(err, "out of memory");
  char path[64];
  int i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cats) {
    snprintf(path, sizeof path, "categories[%d]", i);
    if (!cJSON_IsObject(c)) return kd_error(err, "%s: expected an object, got %s", path, type_name(c));
    int64_t id;
    const char *name;
    if (get_int(c, "id", path, -(1LL << 53), 1LL << 53, &id, err) || get_string(c, "name", path, &name, err))
      return -1;
    p->cats[i].id = id;
    p->cats[i].index = i;
    i++;
  }
  qsort(p->cats, (size_t)n, sizeof *p->cats, kd_id_index_cmp);
  for (int k = 1; k < n; k++)
    if (p->cats[k].id == p->cats[k - 1].id)
      return kd_error(err, "categories[%d].id: %lld is already used by categories[%d]; expected unique ids",
                      p->cats[k].index, (long long)p->cats[k].id, p->cats[k - 1].index);
  /* Contiguous order = ascending COCO id; names copied in that order. */
  for (int k = 0; k < n; k++) {
    const cJSON *src = cJSON_GetArrayItem(cats, p->cats[k].index);
    ds->class_ids[k] = p->cats[k].id;
    ds->class_names[k] = pool_add(p, cJSON_GetObjectItemCaseSensitive(src, "name")->valuestring);
    if (!ds->class_names[k]) return kd_error(err, "categories: names do not fit (internal error)");
    p->cats[k].index = k;
  }
  ds->n_classes = n;
  return 0;
}

static int parse_images(Parse *p, const cJSON *images, KdError *err) {
  KdDataset *ds = p->ds;
  int n = cJSON_GetArraySize(images);
  ds->images = calloc((size_t)n + 1, sizeof *ds->images);
  ds->image_ids = calloc((size_t)n + 1, sizeof *ds->image_ids);
  if (!ds->images || !ds->image_ids) return kd_error(err, "out of memory");
  char path[64];
  int i = 0;
  const cJSON *im;
  cJSON_ArrayForEach(im, images) {
    snprintf(path, sizeof path, "images[%d]", i);
    if (!cJSON_IsObject(im)) return kd_error(err, "%s: expected an object, got %s", path, type_name(im));
    int64_t id, w, h;
    const char *name;
    if (get_int(im, "id", path, -(1LL << 53), 1LL << 53, &id, err) ||
        get_string(im, "file_name", path, &name, err) || check_file_name(name, path, err) ||
        get_int(im, "width", path, 1, KD_DATASET_MAX_SIDE, &w, err) ||
        get_int(im, "height", path, 1, KD_DATASET_MAX_SIDE, &h, err))
      return -1;
    ds->images[i] = (KdDsImage){.id = id, .file_name = pool_add(p, name), .width = (int)w, .height = (int)h};
    if (!ds->images[i].file_name) return kd_error(err, "%s.file_name: names do not fit (internal error)", path);
    ds->image_ids[i] = (KdIdIndex){id, i};
    i++;
  }
  ds->n_images = n;
  qsort(ds->image_ids, (size_t)n, sizeof *ds->image_ids, kd_id_index_cmp);
  for (int k = 1; k < n; k++)
    if (ds->image_ids[k].id == ds->image_ids[k - 1].id)
      return kd_error(err, "images[%d].id: %lld is already used by images[%d]; expected unique ids",
                      ds->image_ids[k].index, (long long)ds->image_ids[k].id, ds->image_ids[k - 1].index);
  return 0;
}

typedef struct Ann {
  int image, label;
  uint8_t crowd;
  float box[4], area;
} Ann;

static int parse_annotation(Parse *p, const cJSON *a, int i, Ann *out, KdError *err) {
  KdDataset *ds = p->ds;
  char path[64];
  snprintf(path, sizeof path, "annotations[%d]", i);
  if (!cJSON_IsObject(a)) return kd_error(err, "%s: expected an object, got %s", path, type_name(a));
  int64_t image_id, cat_id;
  if (get_int(a, "image_id", path, -(1LL << 53), 1LL << 53, &image_id, err) ||
      get_int(a, "category_id", path, -(1LL << 53), 1LL << 53, &cat_id, err))
    return -1;
  out->image = kd_id_index_find(ds->image_ids, ds->n_images, image_id);
  if (out->image < 0)
    return kd_error(err, "%s.image_id: %lld is not the id of any entry in images", path, (long long)image_id);
  out->label = kd_id_index_find(p->cats, ds->n_classes, cat_id);
  if (out->label < 0)
    return kd_error(err, "%s.category_id: %lld is not the id of any entry in categories", path, (long long)cat_id);
  const cJSON *bb = cJSON_GetObjectItemCaseSensitive(a, "bbox");
  if (!cJSON_IsArray(bb))
    return kd_error(err, "%s.bbox: expected an array of 4 numbers [x,y,w,h], got %s", path, type_name(bb));
  int nb = cJSON_GetArraySize(bb);
  if (nb != 4)
    return kd_error(err, "%s.bbox: expected 4 numbers [x,y,w,h], got %d element%s", path, nb, nb == 1 ? "" : "s");
  double v[4];
  for (int k = 0; k < 4; k++) {
    const cJSON *e = cJSON_GetArrayItem(bb, k);
    if (!cJSON_IsNumber(e))
      return kd_error(err, "%s.bbox[%d]: expected a number, got %s", path, k, type_name(e));
    if (!isfinite(e->valuedouble) || fabs(e->valuedouble) > 1e9)
      return kd_error(err, "%s.bbox[%d]: expected a finite number of pixels, got %g", path, k, e->valuedouble);
    v[k] = e->valuedouble;
  }
  out->crowd = 0;
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "iscrowd");
  if (c) {
    if (cJSON_IsBool(c)) out->crowd = cJSON_IsTrue(c) ? 1 : 0;
    else if (cJSON_IsNumber(c) && (c->valuedouble == 0 || c->valuedouble == 1)) out->crowd = (uint8_t)c->valuedouble;
    else return kd_error(err, "%s.iscrowd: expected 0 or 1, got %s", path, type_name(c));
  }
  const cJSON *ar = cJSON_GetObjectItemCaseSensitive(a, "area");
  out->area = -1;
  if (ar) {
    if (!cJSON_IsNumber(ar) || !isfinite(ar->valuedouble) || ar->valuedouble < 0 || ar->valuedouble > 1e12)
      return kd_error(err, "%s.area: expected a non-negative number, got %s", path, type_name(ar));
    out->area = (float)ar->valuedouble;
  }
  out->box[0] = (float)v[0];
  out->box[1] = (float)v[1];
  out->box[2] = (float)(v[0] + v[2]);
  out->box[3] = (float)(v[1] + v[3]);
  return 0;
}

/* Clips to the image, counts fixes; returns 0 if the box is to be dropped
 * (empty before or after clipping: counted as dropped, not clipped). */
static int fix_box(KdDataset *ds, Ann *a) {
  const KdDsImage *im = &ds->images[a->image];
  float W = (float)im->width, H = (float)im->height, *b = a->box;
  float c[4] = {fminf(fmaxf(b[0], 0), W), fminf(fmaxf(b[1], 0), H), fminf(fmaxf(b[2], 0), W),
                fminf(fmaxf(b[3], 0), H)};
  if (!(b[2] > b[0] && b[3] > b[1]) || !(c[2] > c[0] && c[3] > c[1])) {
    ds->stats.dropped++;
    return 0;
  }
  if (memcmp(c, b, sizeof c) != 0) {
    ds->stats.clipped++;
    memcpy(b, c, sizeof c);
  }
  if (a->area < 0) a->area = (b[2] - b[0]) * (b[3] - b[1]);
  return 1;
}

static int parse_annotations(Parse *p, const cJSON *anns, KdError *err) {
  KdDataset *ds = p->ds;
  int n = anns ? cJSON_GetArraySize(anns) : 0;
  Ann *all = calloc((size_t)n + 1, sizeof *all);
  int *count = calloc((size_t)ds->n_images + 1, sizeof *count);
  if (!all || !count) {
    free(all), free(count);
    return kd_error(err, "out of memory");
  }
  int kept = 0, i = 0, rc = 0;
  const cJSON *a;
  if (anns) cJSON_ArrayForEach(a, anns) {
    if ((rc = parse_annotation(p, a, i++, &all[kept], err))) break;
    if (fix_box(ds, &all[kept])) count[all[kept++].image]++;
  }
  if (!rc) {
    ds->boxes = malloc(((size_t)kept + 1) * 4 * sizeof(float));
    ds->areas = malloc(((size_t)kept + 1) * sizeof(float));
    ds->labels = malloc(((size_t)kept + 1) * sizeof(int));
    ds->crowd = malloc((size_t)kept + 1);
    if (!ds->boxes || !ds->areas || !ds->labels || !ds->crowd) rc = kd_error(err, "out of memory");
  }
  if (!rc) {
    int off = 0;
    for (int k = 0; k < ds->n_images; k++) {
      ds->images[k].box_off = off;
      off += count[k];
      if (!count[k]) ds->stats.images_without_boxes++;
    }
    for (int k = 0; k < kept; k++) { /* stable: annotation order kept per image */
      KdDsImage *im = &ds->images[all[k].image];
      int j = im->box_off + im->n_boxes++;
      memcpy(ds->boxes + 4 * (size_t)j, all[k].box, sizeof all[k].box);
      ds->areas[j] = all[k].area;
      ds->labels[j] = all[k].label;
      ds->crowd[j] = all[k].crowd;
      ds->stats.crowd_boxes += all[k].crowd;
    }
    ds->stats.boxes = kept;
  }
  free(all);
  free(count);
  return rc;
}

/* allow_missing: missing files are counted (stats.missing_files), not an
 * error, unless every file is missing (the folder is wrong, not a file). */
static int check_files(KdDataset *ds, int allow_missing, KdError *err) {
  int missing = 0, first = -1, first_errno = 0;
  char path[4096];
  for (int i = 0; i < ds->n_images; i++) {
    struct stat st;
    if (kd_dataset_image_path(ds, i, path, sizeof path) == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode))
      continue;
    if (!missing++) first = i, first_errno = errno;
  }
  ds->stats.missing_files = missing;
  if (!missing || (allow_missing && missing < ds->n_images)) return 0;
  char esc[600];
  kd_escape_name(ds->images[first].file_name, esc, sizeof esc);
  kd_error(err, "images[%d].file_name: expected an image file \"%s\" in %s, but it %s", first, esc,
           ds->image_dir, first_errno == ENOENT ? "does not exist" : "is not a readable file");
  if (missing > 1) kd_error_prefix(err, "%s%d image files are missing; first: ", missing == ds->n_images ? "all " : "", missing);
  return -1;
}

static void make_summary(KdDataset *ds, const char *name) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  const KdDatasetStats *s = &ds->stats;
  int n = snprintf(ds->summary, sizeof ds->summary,
                   "%s: %d images (%ld without boxes), %ld boxes (%ld crowd) in %d classes", base,
                   ds->n_images, s->images_without_boxes, s->boxes, s->crowd_boxes, ds->n_classes);
  if (n < 0 || (size_t)n >= sizeof ds->summary) return;
  if (s->missing_files) {
    int m = snprintf(ds->summary + n, sizeof ds->summary - (size_t)n, ", %ld image file%s missing", s->missing_files,
                     s->missing_files == 1 ? "" : "s");
    if (m < 0 || (size_t)(n += m) >= sizeof ds->summary) return;
  }
  if (!s->clipped && !s->dropped)
    snprintf(ds->summary + n, sizeof ds->summary - (size_t)n, "; nothing to fix");
  else
    snprintf(ds->summary + n, sizeof ds->summary - (size_t)n,
             "; fixed: %ld box%s clipped to the image, %ld empty box%s dropped", s->clipped,
             s->clipped == 1 ? "" : "es", s->dropped, s->dropped == 1 ? "" : "es");
}

static int parse(const char *json, size_t len, const char *name, const char *image_dir, int allow_missing, KdDataset **out,
                 KdError *err) {
  *out = NULL;
  if (!name) name = "(json)";
  if (len == 0) return kd_error(err, "%s: empty file, expected COCO json", name);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) return parse_error(json, len, end, err), kd_error_prefix(err, "%s: ", name);
  KdDataset *ds = calloc(1, sizeof *ds);
  Parse p = {.ds = ds};
  int rc = -1;
  if (!ds) {
    kd_error(err, "out of memory");
    goto done;
  }
  ds->json_path = strdup(name);
  ds->image_dir = image_dir ? strdup(image_dir) : NULL;
  /* Every string we keep is shorter than the json text itself. */
  p.names_cap = len + 1;
  ds->names = malloc(p.names_cap);
  if (!ds->json_path || (image_dir && !ds->image_dir) || !ds->names) {
    kd_error(err, "out of memory");
    goto done;
  }
  if (!cJSON_IsObject(root)) {
    kd_error(err, "expected a JSON object with images, annotations and categories, got %s", type_name(root));
    goto done;
  }
  const cJSON *images = get_array(root, "images", 1, err);
  if (!images) goto done;
  const cJSON *cats = get_array(root, "categories", 1, err);
  if (!cats) goto done;
  const cJSON *anns = get_array(root, "annotations", 0, err);
  if (!anns && cJSON_GetObjectItemCaseSensitive(root, "annotations")) goto done;
  if (parse_categories(&p, cats, err) || parse_images(&p, images, err) || parse_annotations(&p, anns, err))
    goto done;
  ds->stats.images = ds->n_images;
  if (image_dir && check_files(ds, allow_missing, err)) goto done;
  make_summary(ds, name);
  rc = 0;
done:
  cJSON_Delete(root);
  free(p.cats);
  if (rc) {
    kd_error_prefix(err, "%s: ", name);
    kd_dataset_free(ds);
    return -1;
  }
  *out = ds;
  return 0;
}

int kd_dataset_parse(const char *json, size_t len, const char *name, const char *image_dir,
                     KdDataset **out, KdError *err) {
  return parse(json, len, name, image_dir, 0, out, err);
}

int kd_dataset_open_files(const char *annotations_json, const char *image_dir, int allow_missing, KdDataset **out,
                          KdError *err) {
  *out = NULL;
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  if (kd_read_file(annotations_json, MAX_JSON_BYTES, &buf, &cap, &len, err)) return -1;
  struct stat st;
  int rc;
  if (image_dir && (stat(image_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
    rc = kd_error(err, "%s: image folder %s does not exist", annotations_json, image_dir);
  else
    rc = parse((const char *)buf, len, annotations_json, image_dir, allow_missing, out, err);
  free(buf);
  return rc;
}

int kd_dataset_open(const char *annotations_json, const char *image_dir, KdDataset **out,
                    KdError *err) {
  return kd_dataset_open_files(annotations_json, image_dir, 0, out, err);
}
