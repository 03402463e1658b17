/* A minimal PNG encoder (8-bit RGB, zlib-compressed, no ancillary chunks)
 * so previews need no image library in the engine. */
#ifndef KD_PNG_H
#define KD_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* rgb: h rows of 3*w bytes. *out is malloc'd; the caller frees it. */
int kd_png_encode(const uint8_t *rgb, int w, int h, uint8_t **out, size_t *out_len, KdError *err);
/* Encodes and writes atomically (temp + rename). */
int kd_png_write(const char *path, const uint8_t *rgb, int w, int h, KdError *err);

#endif
