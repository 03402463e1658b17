/* Export of any figure panel to PNG (at a chosen DPI), SVG or PDF through
 * kd_fig_paint, the same call the screen uses: vector stays vector (text,
 * axes, colorbars, boxes), maps are embedded images at native resolution.
 * Sizes in inches, millimetres or points; files are written to a
 * temporary name and renamed, so a failed export leaves no half file. */
#ifndef KD_EXPORT_H
#define KD_EXPORT_H

#include <cairo.h>

#include "core/error.h"
#include "figure.h"

typedef enum KdExportFormat { KD_EXPORT_PNG, KD_EXPORT_SVG, KD_EXPORT_PDF } KdExportFormat;
typedef enum KdUnit { KD_UNIT_IN, KD_UNIT_MM, KD_UNIT_PT } KdUnit;

/* Journal column widths, in inches. */
#define KD_EXPORT_SINGLE_COLUMN_IN 3.3
#define KD_EXPORT_DOUBLE_COLUMN_IN 6.9

typedef struct KdExportOpts {
  double width, height; /* in `unit`; height <= 0: the panel's layout height */
  KdUnit unit;
  double dpi;      /* PNG resolution, and that of images in PDF/SVG; <= 0: 300 */
  double font_pt;  /* <= 0: the style's */
  const char *title; /* PDF/SVG metadata title, optional */
} KdExportOpts;

/* Width 3.3 in, layout height, 300 dpi. */
void kd_export_opts_default(KdExportOpts *o);
double kd_export_to_pt(double v, KdUnit unit);
/* From the file name's extension (.png, .svg, .pdf, any case); -1 if none. */
int kd_export_format_from_path(const char *path);

/* The page size in points, and for PNG the pixel size: widths round to
 * whole pixels and the page shrinks to match, so PNG and screen agree. */
int kd_export_geometry(const KdFigPanel *p, const KdFigStyle *st, const KdExportOpts *o,
                       double *w_pt, double *h_pt, int *w_px, int *h_px, KdError *err);

/* Renders the panel as the PNG export would, into a new RGB24 image
 * surface (the caller destroys it); NULL with err on failure. */
cairo_surface_t *kd_export_render_image(const KdFigPanel *p, const KdFigStyle *st,
                                        const KdExportOpts *o, KdError *err);

/* Writes the panel to path. format < 0: from the extension. */
int kd_export_panel(const char *path, int format, const KdFigPanel *p, const KdFigStyle *st,
                    const KdExportOpts *o, KdError *err);

#endif
