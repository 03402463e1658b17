/* Drawing on RGB8 images for previews and figures without Cairo: filled
 * and outlined rectangles, and text in a built-in 5x7 bitmap font (ASCII
 * letters are drawn upper-case; other unknown characters as '?'). Drawing
 * is clipped to the image. */
#ifndef KD_DRAW_H
#define KD_DRAW_H

#include <stdint.h>

typedef struct KdCanvas {
  int w, h;
  uint8_t *rgb; /* h rows of 3*w bytes */
} KdCanvas;

#define KD_FONT_W 5
#define KD_FONT_H 7

/* Pixels [x0,x1) x [y0,y1). */
void kd_draw_fill(KdCanvas *c, int x0, int y0, int x1, int y1, const uint8_t col[3]);
/* Outline of [x0,x1) x [y0,y1), t pixels thick, drawn inside. */
void kd_draw_rect(KdCanvas *c, int x0, int y0, int x1, int y1, int t, const uint8_t col[3]);
/* Text with its top-left at (x, y); each font pixel is scale x scale.
 * Returns the advance in pixels (6*scale per character). */
int kd_draw_text(KdCanvas *c, int x, int y, const char *s, int scale, const uint8_t col[3]);
int kd_text_width(const char *s, int scale);
/* The glyph rows of character ch (bit 4 = leftmost); '?' if unknown. */
const uint8_t *kd_font_glyph(char ch);

#endif
