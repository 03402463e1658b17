/* PNG: signature, IHDR, one IDAT (each row prefixed by filter type "Sub",
 * which suits smooth images), IEND. CRCs and compression from zlib. */
#include "data/png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/fileio.h"

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Appends a chunk (length, type, data, CRC over type + data) at *pos. */
static void chunk(uint8_t *buf, size_t *pos, const char *type, const uint8_t *data, size_t len) {
  uint8_t *p = buf + *pos;
  put32(p, (uint32_t)len);
  memcpy(p + 4, type, 4);
  if (len) memcpy(p + 8, data, len);
  uLong crc = crc32(0L, p + 4, (uInt)(4 + len));
  put32(p + 8 + len, (uint32_t)crc);
  *pos += 12 + len;
}

int kd_png_encode(const uint8_t *rgb, int w, int h, uint8_t **out, size_t *out_len, KdError *err) {
  *out = NULL;
  if (w <= 0 || h <= 0 || w > 65535 || h > 65535) return kd_error(err, "PNG: bad size %dx%d", w, h);
  size_t row = (size_t)w * 3, raw_len = (row + 1) * (size_t)h;
  uint8_t *raw = malloc(raw_len);
  uLong zcap = compressBound((uLong)raw_len);
  uint8_t *png = malloc(8 + 25 + 12 + zcap + 12);
  if (!raw || !png) {
    free(raw), free(png);
    return kd_error(err, "PNG: out of memory for %dx%d", w, h);
  }
  for (int y = 0; y < h; y++) {
    uint8_t *d = raw + (size_t)y * (row + 1);
    const uint8_t *s = rgb + (size_t)y * row;
    d[0] = 1; /* Sub: each byte minus the byte one pixel to the left */
    for (size_t i = 0; i < row; i++) d[1 + i] = (uint8_t)(s[i] - (i >= 3 ? s[i - 3] : 0));
  }
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  memcpy(png, sig, 8);
  size_t pos = 8;
  uint8_t ihdr[13];
  put32(ihdr, (uint32_t)w);
  put32(ihdr + 4, (uint32_t)h);
  ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0; /* 8-bit RGB, deflate, no interlace */
  chunk(png, &pos, "IHDR", ihdr, 13);
  uLong zlen = zcap;
  /* Compress straight into the IDAT slot (after its 8-byte header). */
  if (compress2(png + pos + 8, &zlen, raw, (uLong)raw_len, 6) != Z_OK) {
    free(raw), free(png);
    return kd_error(err, "PNG: zlib compression failed");
  }
  free(raw);
  {
    uint8_t *p = png + pos;
    put32(p, (uint32_t)zlen);
    memcpy(p + 4, "IDAT", 4);
    put32(p + 8 + zlen, (uint32_t)crc32(0L, p + 4, (uInt)(4 + zlen)));
    pos += 12 + zlen;
  }
  chunk(png, &pos, "IEND", NULL, 0);
  *out = png;
  *out_len = pos;
  return 0;
}

int kd_png_write(const char *path, const uint8_t *rgb, int w, int h, KdError *err) {
  uint8_t *png;
  size_t len;
  if (kd_png_encode(rgb, w, h, &png, &len, err)) return kd_error_prefix(err, "%s: ", path);
  int rc = kd_write_file_atomic(path, png, len, err);
  free(png);
  return rc;
}
