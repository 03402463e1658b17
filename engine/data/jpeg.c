/* TurboJPEG wrapper: header checks before allocation, CMYK handled by hand
 * (TurboJPEG will not convert CMYK to RGB), warnings treated as errors. */
#include "data/jpeg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/fileio.h"

/* Bigger files than this are not images we want to train on. */
#define KD_JPEG_MAX_FILE_BYTES ((size_t)256 << 20)

struct KdJpeg {
  tjhandle dec, enc;
  uint8_t *file;      /* last file read */
  size_t file_cap;
  uint8_t *cmyk;      /* scratch for CMYK decodes */
  size_t cmyk_cap;
  unsigned char *out; /* last encode (tjAlloc'd) */
  unsigned long out_cap;
};

KdJpeg *kd_jpeg_new(void) { return calloc(1, sizeof(KdJpeg)); }

void kd_jpeg_free(KdJpeg *j) {
  if (!j) return;
  if (j->dec) tjDestroy(j->dec);
  if (j->enc) tjDestroy(j->enc);
  free(j->file);
  free(j->cmyk);
  tjFree(j->out);
  free(j);
}

void kd_image_free(KdImage *im) {
  if (!im) return;
  free(im->rgb);
  memset(im, 0, sizeof *im);
}

static int grow(uint8_t **p, size_t *cap, size_t need) {
  if (*cap >= need) return 0;
  uint8_t *n = realloc(*p, need);
  if (!n) return -1;
  *p = n;
  *cap = need;
  return 0;
}

static tjhandle decoder(KdJpeg *j) {
  if (!j->dec) j->dec = tjInitDecompress();
  return j->dec;
}

/* TurboJPEG 2.1 leaves a handle in a broken state after some header
 * errors (the next header read returns garbage sizes): after any error the
 * decoder handle is thrown away and a fresh one made on the next call. */
static void reset_decoder(KdJpeg *j) {
  if (j->dec) tjDestroy(j->dec);
  j->dec = NULL;
}

static int header(KdJpeg *j, const uint8_t *buf, size_t len, int *w, int *h, int *cs,
                  KdError *err) {
  if (len < 4 || buf[0] != 0xFF || buf[1] != 0xD8) {
    if (len == 0) return kd_error(err, "empty file, expected a JPEG");
    char got[16] = "";
    for (size_t i = 0; i < len && i < 4; i++) snprintf(got + (i ? 3 * i - 1 : 0), 4, i ? " %02x" : "%02x", buf[i]);
    return kd_error(err, "not a JPEG file (starts with %s; a JPEG starts with ff d8)", got);
  }
  if (len > (unsigned long)-1) return kd_error(err, "JPEG too large");
  tjhandle d = decoder(j);
  if (!d) return kd_error(err, "cannot initialise the JPEG decoder");
  int sub = 0;
  if (tjDecompressHeader3(d, buf, (unsigned long)len, w, h, &sub, cs) != 0) {
    kd_error(err, "invalid or truncated JPEG header: %s", tjGetErrorStr2(d));
    reset_decoder(j);
    return -1;
  }
  if (*w <= 0 || *h <= 0 || *w > KD_JPEG_MAX_SIDE || *h > KD_JPEG_MAX_SIDE ||
      (long)*w * *h > KD_JPEG_MAX_PIXELS)
    return kd_error(err, "JPEG declares %dx%d pixels; expected 1..%d per side and at most %ld pixels",
                    *w, *h, KD_JPEG_MAX_SIDE, KD_JPEG_MAX_PIXELS);
  return 0;
}

int kd_jpeg_header(KdJpeg *j, const uint8_t *buf, size_t len, int *w, int *h, KdError *err) {
  KdJpeg tmp = {0};
  int cs, rc = header(j ? j : &tmp, buf, len, w, h, &cs, err);
  if (!j && tmp.dec) tjDestroy(tmp.dec);
  return rc;
}

/* Largest TurboJPEG downscale (<= 1) that keeps the output >= min_w x min_h. */
static void pick_scale(int w, int h, int min_w, int min_h, int *sw, int *sh) {
  *sw = w, *sh = h;
  if (min_w <= 0 && min_h <= 0) return;
  int n = 0;
  tjscalingfactor *sf = tjGetScalingFactors(&n);
  for (int i = 0; sf && i < n; i++) {
    if (sf[i].num > sf[i].denom) continue;
    int tw = TJSCALED(w, sf[i]), th = TJSCALED(h, sf[i]);
    if (tw >= min_w && th >= min_h && (long)tw * th < (long)*sw * *sh) *sw = tw, *sh = th;
  }
}

static int decode(KdJpeg *j, const uint8_t *buf, size_t len, int min_w, int min_h, KdImage *out,
                  KdError *err) {
  int w, h, cs;
  if (header(j, buf, len, &w, &h, &cs, err)) return -1;
  int sw, sh;
  pick_scale(w, h, min_w, min_h, &sw, &sh);
  size_t npx = (size_t)sw * (size_t)sh;
  if (grow(&out->rgb, &out->cap, npx * 3)) return kd_error(err, "out of memory for %dx%d image", sw, sh);
  int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  if (cmyk && grow(&j->cmyk, &j->cmyk_cap, npx * 4))
    return kd_error(err, "out of memory for %dx%d image", sw, sh);
  int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
  if (tjDecompress2(j->dec, buf, (unsigned long)len, cmyk ? j->cmyk : out->rgb, sw, 0, sh,
                    cmyk ? TJPF_CMYK : TJPF_RGB, flags) != 0) {
    kd_error(err, "corrupt or truncated JPEG (%dx%d): %s", w, h, tjGetErrorStr2(j->dec));
    reset_decoder(j);
    return -1;
  }
  if (cmyk) {
    const uint8_t *s = j->cmyk;
    uint8_t *d = out->rgb;
    for (size_t i = 0; i < npx; i++, s += 4, d += 3) {
      unsigned k = s[3];
      d[0] = (uint8_t)((s[0] * k + 127) / 255);
      d[1] = (uint8_t)((s[1] * k + 127) / 255);
      d[2] = (uint8_t)((s[2] * k + 127) / 255);
    }
  }
  out->w = sw, out->h = sh;
  out->file_w = w, out->file_h = h;
  return 0;
}

int kd_jpeg_decode(KdJpeg *j, const uint8_t *buf, size_t len, int min_w, int min_h, KdImage *out,
                   KdError *err) {
  if (j) return decode(j, buf, len, min_w, min_h, out, err);
  KdJpeg tmp = {0};
  int rc = decode(&tmp, buf, len, min_w, min_h, out, err);
  if (tmp.dec) tjDestroy(tmp.dec);
  free(tmp.cmyk);
  return rc;
}

int kd_jpeg_read_file(KdJpeg *j, const char *path, int min_w, int min_h, KdImage *out,
                      KdError *err) {
  KdJpeg tmp = {0}, *c = j ? j : &tmp;
  size_t len = 0;
  int rc = kd_read_file(path, KD_JPEG_MAX_FILE_BYTES, &c->file, &c->file_cap, &len, err);
  if (rc == 0 && decode(c, c->file, len, min_w, min_h, out, err)) rc = kd_error_prefix(err, "%s: ", path);
  if (!j) {
    if (tmp.dec) tjDestroy(tmp.dec);
    free(tmp.file);
    free(tmp.cmyk);
  }
  return rc;
}

int kd_jpeg_encode(KdJpeg *j, const uint8_t *px, int w, int h, int channels, int quality,
                   const uint8_t **out, size_t *out_len, KdError *err) {
  if (!j) return kd_error(err, "kd_jpeg_encode: needs a codec");
  if (w <= 0 || h <= 0 || w > KD_JPEG_MAX_SIDE || h > KD_JPEG_MAX_SIDE)
    return kd_error(err, "kd_jpeg_encode: bad size %dx%d", w, h);
  if (quality < 1 || quality > 100) return kd_error(err, "kd_jpeg_encode: quality %d not in 1..100", quality);
  int pf, samp;
  switch (channels) {
  case 1: pf = TJPF_GRAY, samp = TJSAMP_GRAY; break;
  case 3: pf = TJPF_RGB, samp = TJSAMP_420; break;
  case 4: pf = TJPF_CMYK, samp = TJSAMP_420; break;
  default: return kd_error(err, "kd_jpeg_encode: channels %d, expected 1, 3 or 4", channels);
  }
  if (!j->enc && !(j->enc = tjInitCompress())) return kd_error(err, "cannot initialise the JPEG encoder");
  /* Pre-size to the worst case so TurboJPEG never reallocates behind us. */
  unsigned long need = tjBufSize(w, h, samp);
  if (need == (unsigned long)-1) return kd_error(err, "JPEG encode: %s", tjGetErrorStr2(NULL));
  if (channels == 4) need *= 2; /* tjBufSize assumes three components */
  if (j->out_cap < need) {
    tjFree(j->out);
    j->out_cap = 0;
    if (!(j->out = tjAlloc((int)need))) return kd_error(err, "out of memory for the JPEG encoder");
    j->out_cap = need;
  }
  unsigned char *buf = j->out;
  unsigned long len = j->out_cap;
  if (tjCompress2(j->enc, px, w, 0, h, pf, &buf, &len, samp, quality, TJFLAG_NOREALLOC) != 0)
    return kd_error(err, "JPEG encode failed: %s", tjGetErrorStr2(j->enc));
  *out = buf;
  *out_len = len;
  return 0;
}

int kd_jpeg_write_file(KdJpeg *j, const char *path, const uint8_t *rgb, int w, int h, int quality,
                       KdError *err) {
  const uint8_t *buf;
  size_t len;
  if (kd_jpeg_encode(j, rgb, w, h, 3, quality, &buf, &len, err)) return kd_error_prefix(err, "%s: ", path);
  return kd_write_file(path, buf, len, err);
}
