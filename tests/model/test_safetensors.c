/* Safetensors: round trip of a parameter store and of named arrays,
 * F16/BF16/F64 reading from hand-written bytes, reporting every
 * name/shape mismatch in one message, a clear error for each kind of
 * corrupt header, and a mutation loop that must never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/params.h"
#include "core/rng.h"
#include "model/safetensors.h"

static char dir[256];

static const char *tpath(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* A file from a header text and raw data bytes. */
static void write_raw(const char *path, const char *header, const void *data, size_t dlen) {
  FILE *f = fopen(path, "wb");
  uint64_t h = strlen(header);
  unsigned char lb[8];
  for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(h >> (8 * i));
  fwrite(lb, 1, 8, f);
  fwrite(header, 1, h, f);
  if (dlen) fwrite(data, 1, dlen, f);
  fclose(f);
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (n) fwrite(p, 1, n, f);
  fclose(f);
}

static KdParams *make_store(int with_extra) {
  KdParams *p = kd_params_new();
  kd_params_add(p, "backbone.conv1.weight", 4, (int[]){4, 3, 3, 3}, KD_PARAM_TRAIN);
  kd_params_add(p, "backbone.bn1.weight", 1, (int[]){4}, KD_PARAM_TRAIN);
  kd_params_add(p, "backbone.bn1.running_var", 1, (int[]){4}, KD_PARAM_BUFFER);
  kd_params_add(p, "head.linear", 2, (int[]){5, 7}, KD_PARAM_TRAIN);
  kd_params_add(p, "head.scale", 1, (int[]){1}, KD_PARAM_TRAIN);
  if (with_extra) kd_params_add(p, "head.extra", 3, (int[]){2, 2, 2}, KD_PARAM_BUFFER);
  KdError err;
  if (kd_params_finalize(p, &err)) abort();
  return p;
}

static void fill(KdParams *p, uint64_t seed) {
  KdRng r;
  kd_rng_seed(&r, seed, 0);
  for (int i = 0; i < kd_params_count(p); i++) {
    KdTensor *t = kd_params_at(p, i);
    for (size_t j = 0; j < t->numel; j++) t->data[j] = kd_rng_normal(&r);
  }
}

static void test_round_trip(void) {
  KdParams *a = make_store(0), *b = make_store(0);
  fill(a, 1);
  fill(b, 2);
  KdError err = {{0}};
  const char *path = tpath("rt.safetensors");
  const char *meta[] = {"format", "pt", "step", "1200", NULL};
  CHECK_MSG(kd_safetensors_save(path, a, meta, &err) == 0, "%s", err.msg);
  CHECK(access(tpath("rt.safetensors.tmp"), F_OK) != 0); /* renamed away */
  CHECK_MSG(kd_safetensors_load(path, b, 1, &err) == 0, "%s", err.msg);
  for (int i = 0; i < kd_params_count(a); i++) {
    KdTensor *x = kd_params_at(a, i), *y = kd_params_at(b, i);
    CHECK(memcmp(x->data, y->data, x->numel * sizeof(float)) == 0);
  }
  KdSafetensors *st = kd_safetensors_open(path, &err);
  CHECK_MSG(st != NULL, "%s", err.msg);
  if (st) {
    CHECK(kd_safetensors_count(st) == 5);
    CHECK(strcmp(kd_safetensors_name(st, 0), "backbone.conv1.weight") == 0);
    int shape[4], nd;
    int k = kd_safetensors_find(st, "head.linear");
    CHECK(k == 3 && kd_safetensors_shape(st, k, shape, &nd) == 0 && nd == 2 && shape[0] == 5 && shape[1] == 7);
    CHECK(strcmp(kd_safetensors_dtype(st, k), "F32") == 0 && kd_safetensors_numel(st, k) == 35);
    CHECK(kd_safetensors_find(st, "nope") == -1 && kd_safetensors_name(st, 5) == NULL);
    CHECK(kd_safetensors_meta(st, "step") && strcmp(kd_safetensors_meta(st, "step"), "1200") == 0);
    CHECK(kd_safetensors_meta(st, "format") && kd_safetensors_meta(st, "other") == NULL);
    float buf[4];
    CHECK(kd_safetensors_read_f32(st, "backbone.bn1.running_var", buf, 4, &err) == 0);
    CHECK(memcmp(buf, kd_params_find(a, "backbone.bn1.running_var")->data, sizeof buf) == 0);
    CHECK(kd_safetensors_read_f32(st, "backbone.bn1.running_var", buf, 3, &err) == -1 && strstr(err.msg, "4 values"));
    CHECK(kd_safetensors_read_f32(st, "missing.name", buf, 3, &err) == -1 && strstr(err.msg, "missing.name"));
    kd_safetensors_close(st);
  }
  /* Overwriting keeps working; a failed write leaves the old file whole. */
  fill(a, 3);
  CHECK(kd_safetensors_save(path, a, NULL, &err) == 0);
  mkdir(tpath("rt.safetensors.tmp"), 0700); /* the temp name is taken */
  fill(b, 4);
  CHECK(kd_safetensors_save(path, b, NULL, &err) == -1 && strstr(err.msg, "rt.safetensors.tmp"));
  rmdir(tpath("rt.safetensors.tmp"));
  CHECK(kd_safetensors_load(path, b, 1, &err) == 0);
  CHECK(memcmp(kd_params_at(a, 0)->data, kd_params_at(b, 0)->data, 108 * sizeof(float)) == 0);
  CHECK(kd_safetensors_save(tpath("no/such/dir/x.safetensors"), a, NULL, &err) == -1 && strstr(err.msg, "cannot create"));
  kd_params_free(a);
  kd_params_free(b);

  /* Named arrays, a scalar among them. */
  float v0[6] = {1, 2, 3, 4, 5, 6}, v1[1] = {-7.5f};
  const char *names[2] = {"feat", "loss"};
  const float *data[2] = {v0, v1};
  int ndims[2] = {3, 0}, shapes[2][4] = {{1, 2, 3}, {0}};
  path = tpath("named.safetensors");
  CHECK_MSG(kd_safetensors_write(path, 2, names, data, ndims, (const int(*)[4])shapes, NULL, &err) == 0, "%s", err.msg);
  st = kd_safetensors_open(path, &err);
  CHECK(st != NULL);
  if (st) {
    int shape[4], nd = -1;
    CHECK(kd_safetensors_shape(st, 1, shape, &nd) == 0 && nd == 0 && kd_safetensors_numel(st, 1) == 1);
    float out[6];
    CHECK(kd_safetensors_read_f32(st, "loss", out, 1, &err) == 0 && out[0] == -7.5f);
    CHECK(kd_safetensors_read_f32(st, "feat", out, 6, &err) == 0 && memcmp(out, v0, sizeof v0) == 0);
    kd_safetensors_close(st);
  }
  const char *dup[2] = {"x", "x"};
  CHECK(kd_safetensors_write(path, 2, dup, data, ndims, (const int(*)[4])shapes, NULL, &err) == -1 &&
        strstr(err.msg, "twice"));
}

static void test_half_types(void) {
  /* F16: 1.5, -2, 65504, 2^-24 (smallest subnormal), 1023*2^-24 (largest
   * subnormal), -0, inf, 0x3555 = 0.333251953125.
   * BF16: 1.5, -2, 0x7F7F = 3.3895314e38, 0x0001 = 2^-133, 0x3EAB. F64: 0.1, -1e300. */
  static const uint16_t h[8] = {0x3E00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x8000, 0x7C00, 0x3555};
  static const uint16_t bf[5] = {0x3FC0, 0xC000, 0x7F7F, 0x0001, 0x3EAB};
  static const double d[2] = {0.1, -1e300};
  unsigned char raw[16 + 10 + 16];
  for (int i = 0; i < 8; i++) raw[2 * i] = h[i] & 255, raw[2 * i + 1] = h[i] >> 8;
  for (int i = 0; i < 5; i++) raw[16 + 2 * i] = bf[i] & 255, raw[16 + 2 * i + 1] = bf[i] >> 8;
  memcpy(raw + 26, d, 16);
  const char *path = tpath("half.safetensors");
  write_raw(path,
            "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[16,26]},"
            "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[26,42]},"
            "\"__metadata__\":{\"format\":\"pt\"}}   ",
            raw, sizeof raw);
  KdError err = {{0}};
  KdSafetensors *st = kd_safetensors_open(path, &err);
  CHECK_MSG(st != NULL, "%s", err.msg);
  if (!st) return;
  float o[8];
  CHECK(kd_safetensors_read_f32(st, "h", o, 8, &err) == 0);
  CHECK(o[0] == 1.5f && o[1] == -2.0f && o[2] == 65504.0f);
  CHECK(o[3] == ldexpf(1.0f, -24) && o[4] == ldexpf(1023.0f, -24));
  CHECK(o[5] == 0.0f && signbit(o[5]) && isinf(o[6]) && o[6] > 0 && o[7] == 0.333251953125f);
  CHECK(kd_safetensors_read_f32(st, "b", o, 5, &err) == 0);
  CHECK(o[0] == 1.5f && o[1] == -2.0f && o[2] == 3.3895314e38f && o[3] == ldexpf(1.0f, -133) && o[4] == 0.333984375f);
  CHECK(kd_safetensors_read_f32(st, "d", o, 2, &err) == 0 && o[0] == 0.1f && isinf(o[1]) && o[1] < 0);
  CHECK(strcmp(kd_safetensors_dtype(st, 1), "BF16") == 0);
  kd_safetensors_close(st);

  /* load() converts too. */
  KdParams *p = kd_params_new();
  KdTensor *t = kd_params_add(p, "b", 1, (int[]){5}, KD_PARAM_TRAIN);
  kd_params_finalize(p, &err);
  CHECK_MSG(kd_safetensors_load(path, p, 0, &err) == 0, "%s", err.msg);
  CHECK(t->data[0] == 1.5f && t->data[4] == 0.333984375f);
  kd_params_free(p);
}

static void test_mismatch_report(void) {
  /* File: a 2,3; b 4; c 5 (unexpected); n I64 scalar; s scalar.
   * Store: a 3,2 (shape), b 4 (ok), d 7 (missing), n 1 (dtype), s 1 (ok). */
  unsigned char raw[24 + 16 + 20 + 8 + 4] = {0};
  const char *path = tpath("mismatch.safetensors");
  write_raw(path,
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]},"
            "\"c\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[40,60]},"
            "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[60,68]},"
            "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[68,72]}}",
            raw, sizeof raw);
  KdParams *p = kd_params_new();
  kd_params_add(p, "a", 2, (int[]){3, 2}, KD_PARAM_TRAIN);
  KdTensor *b = kd_params_add(p, "b", 1, (int[]){4}, KD_PARAM_TRAIN);
  kd_params_add(p, "d", 1, (int[]){7}, KD_PARAM_BUFFER);
  kd_params_add(p, "n", 1, (int[]){1}, KD_PARAM_BUFFER);
  kd_params_add(p, "s", 1, (int[]){1}, KD_PARAM_TRAIN);
  KdError err = {{0}};
  kd_params_finalize(p, &err);
  kd_tensor_fill(b, 9.0f);
  CHECK(kd_safetensors_load(path, p, 1, &err) == -1);
  printf("strict load message: %s\n", err.msg);
  CHECK(strstr(err.msg, "mismatch.safetensors") && strstr(err.msg, "4 problems"));
  CHECK(strstr(err.msg, "\"a\" is 2,3 in the file, 3,2 in the model"));
  CHECK(strstr(err.msg, "missing \"d\"") && strstr(err.msg, "unexpected \"c\""));
  CHECK(strstr(err.msg, "\"n\" has dtype I64"));
  CHECK(!strstr(err.msg, "\"b\"") && !strstr(err.msg, "\"s\""));
  CHECK(b->data[0] == 9.0f); /* nothing loaded */
  CHECK(kd_safetensors_load(path, p, 0, &err) == -1);
  CHECK(strstr(err.msg, "3 problems") && !strstr(err.msg, "unexpected"));
  kd_params_free(p);

  /* Extras are fine when not strict. */
  p = kd_params_new();
  b = kd_params_add(p, "b", 1, (int[]){4}, KD_PARAM_TRAIN);
  kd_params_finalize(p, &err);
  kd_tensor_fill(b, 9.0f);
  CHECK_MSG(kd_safetensors_load(path, p, 0, &err) == 0, "%s", err.msg);
  CHECK(b->data[0] == 0.0f);
  CHECK(kd_safetensors_load(path, p, 1, &err) == -1 && strstr(err.msg, "unexpected \"a\""));
  kd_params_free(p);

  /* Hundreds of problems: the message stays bounded and counts the rest. */
  p = kd_params_new();
  for (int i = 0; i < 300; i++) {
    char nm[64];
    snprintf(nm, sizeof nm, "backbone.body.layer4.%d.conv1.weight", i);
    kd_params_add(p, nm, 1, (int[]){1}, KD_PARAM_TRAIN);
  }
  kd_params_finalize(p, &err);
  CHECK(kd_safetensors_load(path, p, 1, &err) == -1);
  CHECK(strstr(err.msg, "305 problems") && strstr(err.msg, "more)") && strlen(err.msg) < sizeof err.msg - 1);
  kd_params_free(p);
}

static void expect_corrupt(const char *what, const char *file, const char *needle) {
  KdError err = {{0}};
  KdSafetensors *st = kd_safetensors_open(file, &err);
  CHECK_MSG(st == NULL, "%s: opened", what);
  kd_safetensors_close(st);
  CHECK_MSG(strstr(err.msg, needle) && strstr(err.msg, file), "%s: message '%s' lacks '%s'", what, err.msg, needle);
  KdParams *p = make_store(0);
  memset(err.msg, 0, sizeof err.msg);
  CHECK_MSG(kd_safetensors_load(file, p, 0, &err) == -1 && strstr(err.msg, needle), "%s: load: '%s'", what, err.msg);
  kd_params_free(p);
}

static void test_corrupt(void) {
  unsigned char d[64] = {0};
  const char *f = tpath("bad.safetensors");
  write_bytes(f, "", 0);
  expect_corrupt("empty file", f, "truncated");
  write_bytes(f, "\x10\0\0\0\0", 5);
  expect_corrupt("5 bytes", f, "truncated");
  write_bytes(f, "\xe8\x03\0\0\0\0\0\0{}", 10); /* 1000-byte header, 2 present */
  expect_corrupt("header beyond file", f, "does not fit");
  write_bytes(f, "\0\0\0\0\0\0\0\x80{}", 10);
  expect_corrupt("huge header length", f, "does not fit");
  write_raw(f, "{\"a\": ", d, 0);
  expect_corrupt("bad JSON", f, "not valid JSON");
  write_raw(f, "[1, 2]", d, 0);
  expect_corrupt("array header", f, "'{'");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}xx", d, 4);
  expect_corrupt("trailing bytes", f, "bytes after");
  {
    char h[] = "{\"a\":{\"dtype\":\"F32\",\"sh\0pe\":[1],\"data_offsets\":[0,4]}}";
    unsigned char buf[8 + sizeof h - 1 + 4] = {sizeof h - 1};
    memcpy(buf + 8, h, sizeof h - 1);
    write_bytes(f, buf, sizeof buf);
    expect_corrupt("NUL in header", f, "NUL");
  }
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", d, 16);
  expect_corrupt("offsets beyond data", f, "more values than");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", d, 16);
  expect_corrupt("end beyond data", f, "outside the 16 data bytes");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", d, 16);
  expect_corrupt("begin > end", f, "outside");
  write_raw(f,
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            d, 16);
  expect_corrupt("overlap", f, "overlaps");
  write_raw(f, "{\"a\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 16);
  expect_corrupt("unknown dtype", f, "unknown dtype \"F17\"");
  write_raw(f, "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", d, 16);
  expect_corrupt("no dtype", f, "\"dtype\" missing");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d, 16);
  expect_corrupt("span != numel*size", f, "need 12 bytes, data_offsets span 8");
  write_raw(f, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", d, 16);
  expect_corrupt("span != numel*size (bf16)", f, "need 8 bytes");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", d, 16);
  expect_corrupt("negative dim", f, "shape entry 0");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", d, 16);
  expect_corrupt("fractional dim", f, "shape entry 0");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", d, 16);
  expect_corrupt("shape not array", f, "\"shape\"");
  write_raw(f, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", d, 16);
  expect_corrupt("9 dims", f, "at most 8");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", d, 16);
  expect_corrupt("shape product overflow", f, "more values than");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", d, 16);
  expect_corrupt("3 offsets", f, "[begin, end]");
  write_raw(f, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", d, 16);
  expect_corrupt("string offset", f, "[begin, end]");
  write_raw(f, "{\"a\":5}", d, 16);
  expect_corrupt("entry not object", f, "expected an object");
  write_raw(f,
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            d, 16);
  expect_corrupt("duplicate name", f, "appears twice");
  write_raw(f, "{\"__metadata__\":{\"step\":12}}", d, 0);
  expect_corrupt("metadata not string", f, "not a string");
  write_raw(f, "{\"__metadata__\":[1]}", d, 0);
  expect_corrupt("metadata not object", f, "not an object");
  expect_corrupt("no such file", tpath("does-not-exist.safetensors"), "cannot open");
  expect_corrupt("a directory", dir, "not a regular file");

  /* A header that passes but data that is shorter than promised cannot
   * happen (offsets are checked against the file size), so an empty tensor
   * and an exactly-full file are the edges that must open. */
  write_raw(f, "{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16);
  KdError err;
  KdSafetensors *st = kd_safetensors_open(f, &err);
  CHECK_MSG(st != NULL, "%s", err.msg);
  kd_safetensors_close(st);
}

/* Random damage to a valid file: open must fail cleanly or succeed, and
 * then every tensor must read without touching memory it should not. */
static void test_mutations(void) {
  const char *good = tpath("good.safetensors"), *f = tpath("mut.safetensors");
  float v0[6] = {1, 2, 3, 4, 5, 6}, v1[3] = {7, 8, 9};
  const char *names[2] = {"w", "b.bias"};
  const float *data[2] = {v0, v1};
  int ndims[2] = {2, 1}, shapes[2][4] = {{2, 3}, {3}};
  const char *meta[] = {"k", "v", NULL};
  KdError err;
  CHECK(kd_safetensors_write(good, 2, names, data, ndims, (const int(*)[4])shapes, meta, &err) == 0);
  FILE *in = fopen(good, "rb");
  unsigned char buf[1024];
  size_t len = fread(buf, 1, sizeof buf, in);
  fclose(in);
  KdRng r;
  kd_rng_seed(&r, 11, 0);
  int opened = 0, failed = 0;
  for (int it = 0; it < 3000; it++) {
    unsigned char m[1024];
    memcpy(m, buf, len);
    size_t n = len;
    int kind = (int)kd_rng_below(&r, 4);
    if (kind == 0) { /* flip bytes */
      for (int k = 0, flips = 1 + (int)kd_rng_below(&r, 3); k < flips; k++) m[kd_rng_below(&r, (uint32_t)n)] ^= (unsigned char)(1 + kd_rng_below(&r, 255));
    } else if (kind == 1) { /* truncate */
      n = kd_rng_below(&r, (uint32_t)n);
    } else if (kind == 2) { /* replace a header character with a JSON-ish one */
      static const char pool[] = "{}[]\",:0123456789-.eE ";
      m[8 + kd_rng_below(&r, (uint32_t)(n - 8))] = (unsigned char)pool[kd_rng_below(&r, sizeof pool - 1)];
    } else { /* random header length */
      uint32_t h = kd_rng_below(&r, (uint32_t)n + 16);
      m[0] = h & 255, m[1] = (h >> 8) & 255;
    }
    write_bytes(f, m, n);
    KdSafetensors *st = kd_safetensors_open(f, &err);
    if (!st) {
      failed++;
      CHECK(err.msg[0] != 0);
      continue;
    }
    opened++;
    for (int i = 0; i < kd_safetensors_count(st); i++) {
      size_t ne = kd_safetensors_numel(st, i);
      float *dst = malloc((ne ? ne : 1) * sizeof(float));
      kd_safetensors_read_f32(st, kd_safetensors_name(st, i), dst, ne, &err);
      free(dst);
    }
    kd_safetensors_close(st);
  }
  printf("mutations: %d opened, %d rejected\n", opened, failed);
  CHECK(failed > 1000);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/kd-st-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  test_round_trip();
  test_half_types();
  test_mismatch_report();
  test_corrupt();
  test_mutations();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
  return check_status("safetensors");
}
