/* JPEG codec: round trip, determinism, grayscale and CMYK files, decoder
 * downscaling, and every kind of bad file (not a JPEG, empty, truncated,
 * absurd or zero dimensions, random corruption) failing with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/rng.h"
#include "data/jpeg.h"
#include "fixture.h"

static uint8_t *encode_copy(KdJpeg *j, const uint8_t *px, int w, int h, int ch, size_t *len) {
  const uint8_t *out;
  KdError e;
  if (kd_jpeg_encode(j, px, w, h, ch, 95, &out, len, &e)) {
    fprintf(stderr, "encode: %s\n", e.msg);
    return NULL;
  }
  uint8_t *copy = malloc(*len);
  memcpy(copy, out, *len);
  return copy;
}

/* Offset of the SOF0 marker's height field, or -1. */
static long sof_dims(const uint8_t *b, size_t len) {
  for (size_t i = 2; i + 9 < len; i++)
    if (b[i] == 0xFF && b[i + 1] == 0xC0) return (long)i + 5;
  return -1;
}

int main(void) {
  KdJpeg *j = kd_jpeg_new();
  KdError e;
  KdImage im = {0};

  /* Round trip of a smooth odd-sized image. */
  int w = 37, h = 23;
  uint8_t *px = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = px + 3 * (y * w + x);
      p[0] = (uint8_t)(x * 6), p[1] = (uint8_t)(y * 10), p[2] = (uint8_t)(128 + x - y);
    }
  size_t len, len2;
  uint8_t *jpg = encode_copy(j, px, w, h, 3, &len);
  uint8_t *again = encode_copy(j, px, w, h, 3, &len2);
  CHECK(jpg && again);
  CHECK(len == len2 && memcmp(jpg, again, len) == 0); /* deterministic */
  CHECK(kd_jpeg_decode(j, jpg, len, 0, 0, &im, &e) == 0);
  CHECK(im.w == w && im.h == h && im.file_w == w && im.file_h == h);
  double err = 0;
  for (int i = 0; i < w * h * 3; i++) err += abs((int)im.rgb[i] - (int)px[i]);
  CHECK_MSG(err / (w * h * 3) < 4.0, "mean abs error %.2f", err / (w * h * 3));
  int hw, hh;
  CHECK(kd_jpeg_header(NULL, jpg, len, &hw, &hh, &e) == 0 && hw == w && hh == h);

  /* Grayscale file -> RGB with equal channels. */
  uint8_t gray[16 * 8];
  for (int i = 0; i < 16 * 8; i++) gray[i] = (uint8_t)(i * 2);
  size_t glen;
  uint8_t *gjpg = encode_copy(j, gray, 16, 8, 1, &glen);
  CHECK(kd_jpeg_decode(j, gjpg, glen, 0, 0, &im, &e) == 0);
  CHECK(im.w == 16 && im.h == 8);
  int gray_ok = 1;
  for (int i = 0; i < 16 * 8; i++) {
    const uint8_t *p = im.rgb + 3 * i;
    gray_ok &= p[0] == p[1] && p[1] == p[2] && abs(p[0] - gray[i]) <= 4;
  }
  CHECK(gray_ok);

  /* CMYK (Adobe inverted, as libjpeg-turbo writes it): C=255 M=64 Y=128
   * K=200 is RGB (200, 50, 100). */
  uint8_t cmyk[16 * 16 * 4];
  for (int i = 0; i < 16 * 16; i++) cmyk[4 * i] = 255, cmyk[4 * i + 1] = 64, cmyk[4 * i + 2] = 128, cmyk[4 * i + 3] = 200;
  size_t clen;
  uint8_t *cjpg = encode_copy(j, cmyk, 16, 16, 4, &clen);
  CHECK(cjpg != NULL);
  CHECK_MSG(kd_jpeg_decode(j, cjpg, clen, 0, 0, &im, &e) == 0, "%s", e.msg);
  CHECK(abs(im.rgb[3 * 40] - 200) <= 4 && abs(im.rgb[3 * 40 + 1] - 50) <= 4 && abs(im.rgb[3 * 40 + 2] - 100) <= 4);

  /* Decoder downscaling keeps at least the asked size. */
  uint8_t *big = calloc(256 * 192 * 3, 1);
  size_t blen;
  uint8_t *bjpg = encode_copy(j, big, 256, 192, 3, &blen);
  CHECK(kd_jpeg_decode(j, bjpg, blen, 60, 40, &im, &e) == 0 && im.w == 64 && im.h == 48);
  CHECK(im.file_w == 256 && im.file_h == 192);
  CHECK(kd_jpeg_decode(j, bjpg, blen, 100, 40, &im, &e) == 0 && im.w >= 100 && im.w <= 128);
  CHECK(kd_jpeg_decode(j, bjpg, blen, 0, 0, &im, &e) == 0 && im.w == 256 && im.h == 192);

  /* Not a JPEG, empty. */
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  CHECK(kd_jpeg_decode(j, png_sig, 8, 0, 0, &im, &e) == -1);
  CHECK_MSG(contains(e.msg, "not a JPEG") && contains(e.msg, "89 50 4e 47"), "%s", e.msg);
  CHECK(kd_jpeg_decode(j, png_sig, 0, 0, 0, &im, &e) == -1 && contains(e.msg, "empty"));

  /* Truncated in the data and in the header. */
  CHECK(kd_jpeg_decode(j, jpg, len / 2, 0, 0, &im, &e) == -1);
  CHECK_MSG(contains(e.msg, "truncated"), "%s", e.msg);
  CHECK(kd_jpeg_decode(j, jpg, 12, 0, 0, &im, &e) == -1 && e.msg[0]);
  /* The same codec still reads good files after a header error (TurboJPEG
   * 2.1 handles go stale after one; the codec must renew them). */
  CHECK(kd_jpeg_decode(j, jpg, 300, 0, 0, &im, &e) == -1);
  CHECK(kd_jpeg_decode(j, jpg, len, 0, 0, &im, &e) == 0 && im.w == w && im.h == h);

  /* Absurd and zero dimensions declared in the frame header. */
  long at = sof_dims(jpg, len);
  CHECK(at > 0);
  if (at > 0) {
    uint8_t *bad = malloc(len);
    memcpy(bad, jpg, len);
    bad[at] = 0xEA, bad[at + 1] = 0x60, bad[at + 2] = 0xEA, bad[at + 3] = 0x60; /* 60000 x 60000 */
    CHECK(kd_jpeg_decode(j, bad, len, 0, 0, &im, &e) == -1);
    CHECK_MSG(contains(e.msg, "60000x60000"), "%s", e.msg);
    memset(bad + at, 0, 4); /* 0 x 0 */
    CHECK(kd_jpeg_decode(j, bad, len, 0, 0, &im, &e) == -1 && e.msg[0]);
    free(bad);
  }

  /* Files: a missing one names the path; a truncated one too. */
  fx_tmpdir("jpeg");
  CHECK(kd_jpeg_read_file(j, fx_path("nope.jpg"), 0, 0, &im, &e) == -1);
  CHECK(contains(e.msg, "nope.jpg") && contains(e.msg, "cannot open"));
  fx_write("half.jpg", jpg, len / 2);
  CHECK(kd_jpeg_read_file(NULL, fx_path("half.jpg"), 0, 0, &im, &e) == -1);
  CHECK_MSG(contains(e.msg, "half.jpg") && contains(e.msg, "truncated"), "%s", e.msg);

  /* Random corruption never crashes: every mutant decodes or fails cleanly. */
  KdRng r;
  kd_rng_seed(&r, 7, 1);
  uint8_t *mut = malloc(blen);
  int failed = 0;
  for (int t = 0; t < 300; t++) {
    memcpy(mut, bjpg, blen);
    int flips = 1 + (int)kd_rng_below(&r, 8);
    for (int k = 0; k < flips; k++) mut[kd_rng_below(&r, (uint32_t)blen)] = (uint8_t)kd_rng_u32(&r);
    size_t cut = t % 3 == 0 ? kd_rng_below(&r, (uint32_t)blen) : blen;
    if (kd_jpeg_decode(j, mut, cut, 0, 0, &im, &e) != 0) failed += e.msg[0] != 0;
  }
  CHECK(failed > 0);

  free(mut), free(px), free(jpg), free(again), free(gjpg), free(cjpg), free(big), free(bjpg);
  kd_image_free(&im);
  kd_jpeg_free(j);
  return check_status("test_jpeg");
}
