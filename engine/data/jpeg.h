/* JPEG decode and encode through the TurboJPEG API. Decoding accepts
 * baseline and progressive JPEGs in YCbCr, RGB, grayscale, CMYK and YCCK and
 * always yields interleaved RGB8; EXIF orientation is ignored. Every failure
 * (not a JPEG, truncated, absurd dimensions) is an error, never a crash:
 * this is the code that meets arbitrary files. */
#ifndef KD_JPEG_H
#define KD_JPEG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Limits checked on the header before any pixel memory is allocated. */
#define KD_JPEG_MAX_SIDE 16384
#define KD_JPEG_MAX_PIXELS (64L * 1024 * 1024)

/* An RGB8 image, rows packed (stride 3*w). The buffer grows as needed and is
 * reused across decodes, so a loop of decodes does not malloc once warm. */
typedef struct KdImage {
  int w, h;
  int file_w, file_h; /* size stored in the file (before decoder scaling) */
  uint8_t *rgb;
  size_t cap; /* bytes allocated in rgb */
} KdImage;

void kd_image_free(KdImage *im); /* frees im->rgb, zeroes the struct */

/* A codec: TurboJPEG handles plus reusable file and output buffers. Not
 * thread-safe; use one per thread. Every function below accepts NULL for a
 * temporary one (slower: handles are made and freed per call). */
typedef struct KdJpeg KdJpeg;

KdJpeg *kd_jpeg_new(void); /* NULL only if out of memory */
void kd_jpeg_free(KdJpeg *j);

/* Reads the header only: dimensions as stored in the file. */
int kd_jpeg_header(KdJpeg *j, const uint8_t *buf, size_t len, int *w, int *h, KdError *err);

/* Decodes buf into out (RGB8). min_w/min_h > 0 allow the decoder's built-in
 * 1/2, 1/4, 1/8 downscaling as long as the result is still at least that
 * large (cheap for big photos going to a small network input); 0, 0 decodes
 * at full size. CMYK/YCCK files are taken to use Adobe's inverted storage
 * (what Photoshop and libjpeg-turbo write): R = C*K/255. Warnings from the
 * decoder (e.g. a truncated file) are errors: the pixels are not trustworthy. */
int kd_jpeg_decode(KdJpeg *j, const uint8_t *buf, size_t len, int min_w, int min_h, KdImage *out,
                   KdError *err);

/* kd_jpeg_decode on a whole file; error messages start with the path. */
int kd_jpeg_read_file(KdJpeg *j, const char *path, int min_w, int min_h, KdImage *out,
                      KdError *err);

/* Encodes w x h pixels with channels 1 (gray), 3 (RGB) or 4 (CMYK, Adobe
 * inverted) at quality 1..100, 4:2:0 chroma (gray: none). The result lives
 * in j (j must not be NULL) until the next encode. Output is a pure function
 * of the inputs: the builder's byte-identical data sets rely on it. */
int kd_jpeg_encode(KdJpeg *j, const uint8_t *px, int w, int h, int channels, int quality,
                   const uint8_t **out, size_t *out_len, KdError *err);

/* Encodes RGB8 (as above, channels 3) and writes the file. */
int kd_jpeg_write_file(KdJpeg *j, const char *path, const uint8_t *rgb, int w, int h, int quality,
                       KdError *err);

#endif
