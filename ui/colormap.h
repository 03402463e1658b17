/* Colormaps for heatmaps: perceptually uniform sequential maps (viridis,
 * magma), a diverging map for signed values (Moreland cool-warm, white at
 * the centre) and grey. Each is a 256-entry RGB8 table; lookups take a
 * value already normalised to [0, 1]. No Cairo here. */
#ifndef KD_COLORMAP_H
#define KD_COLORMAP_H

#include <stdint.h>

typedef enum KdCmap {
  KD_CMAP_VIRIDIS,
  KD_CMAP_MAGMA,
  KD_CMAP_DIVERGING,
  KD_CMAP_GRAY,
  KD_CMAP_COUNT
} KdCmap;

/* The 256 x RGB8 table of a map (NULL for an unknown map). */
const uint8_t (*kd_cmap_table(KdCmap cmap))[3];
/* Colour of t in [0, 1] (clamped); a non-finite t gives the "no data" grey. */
void kd_cmap_rgb8(KdCmap cmap, double t, uint8_t rgb[3]);
/* The same as doubles in [0, 1], for Cairo sources. */
void kd_cmap_rgb(KdCmap cmap, double t, double rgb[3]);
/* "viridis", "magma", "diverging", "gray"; lookup accepts those (and
 * "coolwarm", "grey") and returns -1 for anything else. */
const char *kd_cmap_name(KdCmap cmap);
int kd_cmap_from_name(const char *name);
/* Whether the map is meant for signed data centred on zero. */
int kd_cmap_is_diverging(KdCmap cmap);

#endif
