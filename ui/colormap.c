/* Colormap lookup over the generated tables (colormap_tables.c). */
#include "colormap.h"

#include <math.h>
#include <string.h>

#include "colormap_tables.h"

static uint8_t gray_table[256][3];
static int gray_ready;

static const uint8_t (*gray(void))[3] {
  if (!gray_ready) { /* idempotent: racing first calls write the same bytes */
    for (int i = 0; i < 256; i++)
      gray_table[i][0] = gray_table[i][1] = gray_table[i][2] = (uint8_t)i;
    gray_ready = 1;
  }
  return (const uint8_t (*)[3])gray_table;
}

const uint8_t (*kd_cmap_table(KdCmap cmap))[3] {
  switch (cmap) {
  case KD_CMAP_VIRIDIS: return kd_cmap_viridis;
  case KD_CMAP_MAGMA: return kd_cmap_magma;
  case KD_CMAP_DIVERGING: return kd_cmap_coolwarm;
  case KD_CMAP_GRAY: return gray();
  default: return NULL;
  }
}

void kd_cmap_rgb8(KdCmap cmap, double t, uint8_t rgb[3]) {
  const uint8_t (*tab)[3] = kd_cmap_table(cmap);
  if (!tab || !isfinite(t)) { /* "no data": a neutral mid grey */
    rgb[0] = rgb[1] = rgb[2] = 160;
    return;
  }
  if (t < 0) t = 0;
  if (t > 1) t = 1;
  int i = (int)(t * 255.0 + 0.5);
  memcpy(rgb, tab[i], 3);
}

void kd_cmap_rgb(KdCmap cmap, double t, double rgb[3]) {
  uint8_t c[3];
  kd_cmap_rgb8(cmap, t, c);
  for (int k = 0; k < 3; k++) rgb[k] = c[k] / 255.0;
}

static const char *names[KD_CMAP_COUNT] = {"viridis", "magma", "diverging", "gray"};

const char *kd_cmap_name(KdCmap cmap) {
  return (unsigned)cmap < KD_CMAP_COUNT ? names[cmap] : "?";
}

int kd_cmap_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < KD_CMAP_COUNT; i++)
    if (!strcmp(name, names[i])) return i;
  if (!strcmp(name, "coolwarm")) return KD_CMAP_DIVERGING;
  if (!strcmp(name, "grey")) return KD_CMAP_GRAY;
  return -1;
}

int kd_cmap_is_diverging(KdCmap cmap) { return cmap == KD_CMAP_DIVERGING; }
