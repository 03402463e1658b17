/* PNG encoder (structure, CRCs, pixels after inflating and unfiltering),
 * the 5x7 font and drawing (clipping), and a contact-sheet preview of a
 * small data set. */
#include <zlib.h>

#include "check.h"
#include "data/dataset.h"
#include "data/draw.h"
#include "data/png.h"
#include "data/preview.h"
#include "fixture.h"

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Parses a PNG from our encoder back into RGB; returns w*h or -1. */
static long decode_png(const uint8_t *png, size_t len, int *w, int *h, uint8_t **rgb) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (len < 8 || memcmp(png, sig, 8)) return -1;
  size_t pos = 8;
  uint8_t *z = NULL;
  size_t zlen = 0;
  int seen_end = 0;
  while (pos + 12 <= len) {
    uint32_t n = get32(png + pos);
    if (pos + 12 + n > len) return -1;
    const uint8_t *type = png + pos + 4, *data = png + pos + 8;
    if (get32(data + n) != (uint32_t)crc32(0L, type, n + 4)) return -1;
    if (!memcmp(type, "IHDR", 4)) {
      *w = (int)get32(data), *h = (int)get32(data + 4);
      if (data[8] != 8 || data[9] != 2 || data[12] != 0) return -1;
    } else if (!memcmp(type, "IDAT", 4)) {
      z = realloc(z, zlen + n);
      memcpy(z + zlen, data, n), zlen += n;
    } else if (!memcmp(type, "IEND", 4)) seen_end = 1;
    pos += 12 + n;
  }
  if (!seen_end || pos != len) return free(z), -1;
  size_t row = (size_t)*w * 3;
  uLongf rawlen = (uLongf)((row + 1) * (size_t)*h);
  uint8_t *raw = malloc(rawlen);
  int ok = uncompress(raw, &rawlen, z, (uLong)zlen) == Z_OK && rawlen == (row + 1) * (size_t)*h;
  free(z);
  *rgb = malloc(row * (size_t)*h);
  for (int y = 0; ok && y < *h; y++) {
    const uint8_t *r = raw + (size_t)y * (row + 1);
    uint8_t *d = *rgb + (size_t)y * row;
    if (r[0] != 1) ok = 0;
    for (size_t i = 0; i < row; i++) d[i] = (uint8_t)(r[1 + i] + (i >= 3 ? d[i - 3] : 0));
  }
  free(raw);
  return ok ? (long)*w * *h : -1;
}

int main(void) {
  KdError e;
  /* Round trip of a 7x5 gradient. */
  uint8_t px[7 * 5 * 3];
  for (int i = 0; i < 7 * 5 * 3; i++) px[i] = (uint8_t)(i * 37 + 11);
  uint8_t *png, *back = NULL;
  size_t len;
  CHECK(kd_png_encode(px, 7, 5, &png, &len, &e) == 0);
  int w = 0, h = 0;
  CHECK(decode_png(png, len, &w, &h, &back) == 35 && w == 7 && h == 5);
  CHECK(back && memcmp(back, px, sizeof px) == 0);
  free(png), free(back);
  CHECK(kd_png_encode(px, 0, 5, &png, &len, &e) == -1 && contains(e.msg, "bad size"));

  /* Font: every glyph but space has ink; lower case maps to upper;
   * unknown characters draw as '?'. */
  const char *chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/.:()%,_+=#'?![]<>";
  for (const char *c = chars; *c; c++) {
    const uint8_t *g = kd_font_glyph(*c);
    int ink = 0;
    for (int y = 0; y < KD_FONT_H; y++) ink |= g[y];
    CHECK_MSG(ink && !(ink & ~0x1F), "glyph '%c'", *c);
  }
  CHECK(kd_font_glyph('a') == kd_font_glyph('A') && kd_font_glyph('~') == kd_font_glyph('?'));
  CHECK(kd_font_glyph('O') != kd_font_glyph('0') && memcmp(kd_font_glyph('O'), kd_font_glyph('0'), KD_FONT_H));
  CHECK(kd_text_width("abc", 2) == 36);

  /* Drawing clips at the edges and marks exactly the glyph's pixels. */
  KdCanvas cv = {.w = 20, .h = 10, .rgb = calloc(20 * 10 * 3, 1)};
  static const uint8_t white[3] = {255, 255, 255};
  CHECK(kd_draw_text(&cv, 1, 1, "I", 1, white) == 6);
  const uint8_t *gi = kd_font_glyph('I');
  int match = 1;
  for (int y = 0; y < KD_FONT_H; y++)
    for (int x = 0; x < KD_FONT_W; x++) match &= (cv.rgb[3 * ((y + 1) * 20 + x + 1)] != 0) == ((gi[y] & (0x10 >> x)) != 0);
  CHECK(match);
  kd_draw_text(&cv, 15, 6, "WIDE TEXT", 3, white); /* mostly outside: must not write out of bounds */
  kd_draw_text(&cv, -30, -30, "X", 2, white);
  kd_draw_rect(&cv, -5, -5, 100, 100, 2, white); /* entirely clipped */
  kd_draw_rect(&cv, -5, -5, 20, 10, 2, white);
  CHECK(cv.rgb[3 * (9 * 20 + 19)] == 255);
  free(cv.rgb);

  /* A contact sheet of a 3-image set: right size, boxes drawn. */
  fx_tmpdir("png");
  static const uint8_t grey[3] = {128, 128, 128}, blue[3] = {0, 0, 255};
  fx_mkdir("imgs");
  fx_jpeg("imgs/a.jpg", 64, 48, grey, 10, 10, 30, 30, blue);
  fx_jpeg("imgs/b.jpg", 32, 64, grey, 0, 0, 0, 0, grey);
  fx_text("imgs/c.jpg", "not a jpeg");
  fx_text("ann.json", "{\"categories\": [{\"id\": 1, \"name\": \"shoe\"}], \"images\": ["
                      "{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 64, \"height\": 48},"
                      "{\"id\": 2, \"file_name\": \"b.jpg\", \"width\": 32, \"height\": 64},"
                      "{\"id\": 3, \"file_name\": \"c.jpg\", \"width\": 32, \"height\": 32}], \"annotations\": ["
                      "{\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [10, 10, 20, 20]}]}");
  KdDataset *ds = NULL;
  CHECK(kd_dataset_open(fx_path("ann.json"), fx_path("imgs"), &ds, &e) == 0);
  CHECK_MSG(kd_dataset_preview(ds, fx_path("sheet.png"), 10, 2, 64, &e) == 0, "%s", e.msg);
  uint8_t *file = NULL, *rgb = NULL;
  size_t cap = 0;
  CHECK(kd_read_file(fx_path("sheet.png"), 1 << 24, &file, &cap, &len, &e) == 0);
  long npx = decode_png(file, len, &w, &h, &rgb);
  CHECK_MSG(npx > 0 && w == 6 + 2 * (64 + 6) && h == 6 + 2 * (64 + 12 + 6), "%dx%d", w, h);
  /* The box outline (class 0's colour, red-ish) is on the first tile at
   * the box's top-left corner (10,10) scaled by 1 (64 px wide image). */
  if (npx > 0) {
    const uint8_t *p = rgb + 3 * ((size_t)(6 + 10 + 5) * w + 6 + 10);
    CHECK_MSG(p[0] > 200 && p[1] < 60, "%d %d %d", p[0], p[1], p[2]);
  }
  free(file), free(rgb);
  kd_dataset_free(ds);
  return check_status("test_png");
}
