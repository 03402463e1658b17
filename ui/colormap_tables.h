/* The generated colormap tables (ui/colormap_tables.c, from
 * tools/gen_colormaps.py). Only colormap.c reads them. */
#ifndef KD_COLORMAP_TABLES_H
#define KD_COLORMAP_TABLES_H

#include <stdint.h>

extern const uint8_t kd_cmap_viridis[256][3];
extern const uint8_t kd_cmap_magma[256][3];
extern const uint8_t kd_cmap_coolwarm[256][3];

#endif
