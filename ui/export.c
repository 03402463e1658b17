/* Figure export: PNG via an image surface (with a pHYs chunk carrying the
 * DPI), SVG via cairo-svg, PDF via cairo-pdf, all through kd_fig_paint. */
#include "export.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kd_export_opts_default(KdExportOpts *o) {
  memset(o, 0, sizeof *o);
  o->width = KD_EXPORT_SINGLE_COLUMN_IN;
  o->unit = KD_UNIT_IN;
  o->dpi = 300;
}

double kd_export_to_pt(double v, KdUnit unit) {
  switch (unit) {
  case KD_UNIT_IN: return v * 72.0;
  case KD_UNIT_MM: return v * 72.0 / 25.4;
  default: return v;
  }
}

int kd_export_format_from_path(const char *path) {
  const char *dot = path ? strrchr(path, '.') : NULL;
  if (!dot) return -1;
  char ext[8] = {0};
  for (int i = 0; i < 7 && dot[1 + i]; i++) ext[i] = (char)tolower((unsigned char)dot[1 + i]);
  if (!strcmp(ext, "png")) return KD_EXPORT_PNG;
  if (!strcmp(ext, "svg")) return KD_EXPORT_SVG;
  if (!strcmp(ext, "pdf")) return KD_EXPORT_PDF;
  return -1;
}

static double dpi_of(const KdExportOpts *o) { return o->dpi > 0 ? o->dpi : 300; }

/* The style an export draws with: the font size asked, a family that is
 * installed (callers say so when they fall back), and images embedded at
 * the export's dpi. */
static void style_for(const KdFigStyle *st, const KdExportOpts *o, KdFigStyle *out) {
  if (st)
    *out = *st;
  else
    kd_fig_style_default(out);
  if (o->font_pt > 0) out->font_pt = o->font_pt;
  out->font_family = kd_fig_font_resolve(out->font_family, NULL, 0);
  out->raster_dpi = dpi_of(o);
}

int kd_export_geometry(const KdFigPanel *p, const KdFigStyle *st, const KdExportOpts *o,
                       double *w_pt, double *h_pt, int *w_px, int *h_px, KdError *err) {
  KdFigStyle s;
  style_for(st, o, &s);
  double w = kd_export_to_pt(o->width, o->unit);
  if (!(w >= 18 && w <= 14400))
    return kd_error(err, "export: width %g %s is outside 0.25 in .. 200 in", o->width,
                    o->unit == KD_UNIT_IN ? "in" : o->unit == KD_UNIT_MM ? "mm" : "pt");
  double h = o->height > 0 ? kd_export_to_pt(o->height, o->unit) : kd_fig_panel_height(p, &s, w);
  if (!(h >= 18 && h <= 14400))
    return kd_error(err, "export: height %g pt is outside 18 .. 14400 pt", h);
  double dpi = dpi_of(o);
  if (!(dpi >= 10 && dpi <= 2400))
    return kd_error(err, "export: dpi %g is outside 10 .. 2400", dpi);
  double k = dpi / 72.0;
  int wpx = (int)lround(w * k), hpx = (int)lround(h * k);
  if ((double)wpx * hpx > 400e6)
    return kd_error(err, "export: %d x %d pixels is too large", wpx, hpx);
  if (w_px) *w_px = wpx;
  if (h_px) *h_px = hpx;
  /* A PNG's page is its whole pixels; vector pages keep the exact size. */
  if (w_pt) *w_pt = w;
  if (h_pt) *h_pt = h;
  return 0;
}

cairo_surface_t *kd_export_render_image(const KdFigPanel *p, const KdFigStyle *st,
                                        const KdExportOpts *o, KdError *err) {
  KdFigStyle s;
  style_for(st, o, &s);
  int wpx, hpx;
  if (kd_export_geometry(p, st, o, NULL, NULL, &wpx, &hpx, err)) return NULL;
  double k = dpi_of(o) / 72.0;
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, wpx, hpx);
  if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
    kd_error(err, "export: cannot allocate a %d x %d image: %s", wpx, hpx,
             cairo_status_to_string(cairo_surface_status(surf)));
    cairo_surface_destroy(surf);
    return NULL;
  }
  cairo_t *cr = cairo_create(surf);
  kd_fig_paint(cr, p, &s, wpx / k, hpx / k, k);
  cairo_status_t cs = cairo_status(cr);
  cairo_destroy(cr);
  if (cs != CAIRO_STATUS_SUCCESS) {
    kd_error(err, "export: drawing failed: %s", cairo_status_to_string(cs));
    cairo_surface_destroy(surf);
    return NULL;
  }
  cairo_surface_flush(surf);
  return surf;
}

/* ---- PNG with a pHYs chunk ---- */

typedef struct Buf {
  unsigned char *d;
  size_t n, cap;
  int failed;
} Buf;

static cairo_status_t buf_write(void *closure, const unsigned char *data, unsigned int len) {
  Buf *b = closure;
  if (b->n + len > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 65536;
    while (cap < b->n + len) cap *= 2;
    unsigned char *d = realloc(b->d, cap);
    if (!d) {
      b->failed = 1;
      return CAIRO_STATUS_NO_MEMORY;
    }
    b->d = d;
    b->cap = cap;
  }
  memcpy(b->d + b->n, data, len);
  b->n += len;
  return CAIRO_STATUS_SUCCESS;
}

static uint32_t crc32_png(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* Writes the PNG in b to f with a pHYs chunk (pixels per metre) after IHDR. */
static int write_png_with_dpi(FILE *f, const Buf *b, double dpi) {
  const size_t ihdr_end = 8 + 4 + 4 + 13 + 4; /* signature + IHDR chunk */
  if (b->n < ihdr_end || memcmp(b->d + 12, "IHDR", 4)) return -1;
  unsigned char chunk[4 + 4 + 9 + 4];
  uint32_t ppm = (uint32_t)lround(dpi / 0.0254);
  put32(chunk, 9);
  memcpy(chunk + 4, "pHYs", 4);
  put32(chunk + 8, ppm);
  put32(chunk + 12, ppm);
  chunk[16] = 1; /* unit: metre */
  put32(chunk + 17, crc32_png(chunk + 4, 4 + 9));
  if (fwrite(b->d, 1, ihdr_end, f) != ihdr_end) return -1;
  if (fwrite(chunk, 1, sizeof chunk, f) != sizeof chunk) return -1;
  if (fwrite(b->d + ihdr_end, 1, b->n - ihdr_end, f) != b->n - ihdr_end) return -1;
  return 0;
}

static int export_png(const char *tmp, const KdFigPanel *p, const KdFigStyle *st,
                      const KdExportOpts *o, KdError *err) {
  cairo_surface_t *surf = kd_export_render_image(p, st, o, err);
  if (!surf) return -1;
  Buf b = {0};
  cairo_status_t cs = cairo_surface_write_to_png_stream(surf, buf_write, &b);
  cairo_surface_destroy(surf);
  if (cs != CAIRO_STATUS_SUCCESS || b.failed) {
    free(b.d);
    return kd_error(err, "export: PNG encoding failed: %s", cairo_status_to_string(cs));
  }
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    free(b.d);
    return kd_error(err, "export: cannot write %s", tmp);
  }
  int bad = write_png_with_dpi(f, &b, dpi_of(o));
  bad |= fclose(f) != 0;
  free(b.d);
  if (bad) return kd_error(err, "export: writing %s failed", tmp);
  return 0;
}

/* cairo's SVG writer drops the nearest-neighbour filter, so viewers would
 * blur a 16x16 map into mush: mark every embedded image pixelated. */
static int svg_mark_pixelated(const char *path, KdError *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return kd_error(err, "export: cannot reread %s", path);
  Buf b = {0};
  unsigned char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_write(&b, chunk, (unsigned)n);
  fclose(f);
  if (b.failed) {
    free(b.d);
    return kd_error(err, "export: out of memory rewriting %s", path);
  }
  static const char tag[] = "<image ";
  static const char attr[] =
      "<image image-rendering=\"optimizeSpeed\" style=\"image-rendering:pixelated\" ";
  f = fopen(path, "wb");
  if (!f) {
    free(b.d);
    return kd_error(err, "export: cannot rewrite %s", path);
  }
  int bad = 0;
  size_t i = 0, start = 0;
  while (i + sizeof tag - 1 <= b.n) {
    if (memcmp(b.d + i, tag, sizeof tag - 1) == 0) {
      bad |= fwrite(b.d + start, 1, i - start, f) != i - start;
      bad |= fwrite(attr, 1, sizeof attr - 1, f) != sizeof attr - 1;
      i += sizeof tag - 1;
      start = i;
    } else {
      i++;
    }
  }
  bad |= fwrite(b.d + start, 1, b.n - start, f) != b.n - start;
  bad |= fclose(f) != 0;
  free(b.d);
  return bad ? kd_error(err, "export: rewriting %s failed", path) : 0;
}

static int export_vector(const char *tmp, int format, const KdFigPanel *p, const KdFigStyle *st,
                         const KdExportOpts *o, KdError *err) {
  KdFigStyle s;
  style_for(st, o, &s);
  double w, h;
  if (kd_export_geometry(p, st, o, &w, &h, NULL, NULL, err)) return -1;
  cairo_surface_t *surf;
  if (format == KD_EXPORT_PDF) {
    surf = cairo_pdf_surface_create(tmp, w, h);
    if (cairo_surface_status(surf) == CAIRO_STATUS_SUCCESS) {
      cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATOR, "kdscope");
      if (o->title) cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_TITLE, o->title);
    }
  } else {
    surf = cairo_svg_surface_create(tmp, w, h);
    if (cairo_surface_status(surf) == CAIRO_STATUS_SUCCESS)
      cairo_svg_surface_set_document_unit(surf, CAIRO_SVG_UNIT_PT);
  }
  if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
    kd_error(err, "export: cannot create %s: %s", tmp,
             cairo_status_to_string(cairo_surface_status(surf)));
    cairo_surface_destroy(surf);
    return -1;
  }
  cairo_t *cr = cairo_create(surf);
  kd_fig_paint(cr, p, &s, w, h, 1.0);
  cairo_status_t cs = cairo_status(cr);
  cairo_destroy(cr);
  cairo_surface_finish(surf);
  if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(surf);
  cairo_surface_destroy(surf);
  if (cs != CAIRO_STATUS_SUCCESS)
    return kd_error(err, "export: writing %s failed: %s", tmp, cairo_status_to_string(cs));
  return format == KD_EXPORT_SVG ? svg_mark_pixelated(tmp, err) : 0;
}

int kd_export_panel(const char *path, int format, const KdFigPanel *p, const KdFigStyle *st,
                    const KdExportOpts *o, KdError *err) {
  KdExportOpts def;
  if (!o) {
    kd_export_opts_default(&def);
    o = &def;
  }
  if (!path || !*path) return kd_error(err, "export: no output file given");
  if (format < 0) format = kd_export_format_from_path(path);
  if (format < 0)
    return kd_error(err, "export: %s: cannot tell the format; expected .png, .svg or .pdf",
                    path);
  size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  if (!tmp) return kd_error(err, "export: out of memory");
  snprintf(tmp, n, "%s.tmp", path);
  int rc = format == KD_EXPORT_PNG ? export_png(tmp, p, st, o, err)
                                   : export_vector(tmp, format, p, st, o, err);
  if (rc == 0 && rename(tmp, path) != 0) rc = kd_error(err, "export: cannot rename %s to %s", tmp, path);
  if (rc != 0) remove(tmp);
  free(tmp);
  return rc;
}
