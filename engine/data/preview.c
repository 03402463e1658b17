/* Contact sheet: decode, scale (nearest, so JPEG pixels stay visible),
 * draw boxes in class colours with the class name on a tab above them. */
#include "data/preview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/draw.h"
#include "data/jpeg.h"
#include "data/png.h"

#define GAP 6
#define CAPTION 12

static const uint8_t palette[12][3] = {
    {230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},  {245, 130, 48}, {145, 30, 180},
    {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 212}, {0, 128, 128}, {170, 110, 40},
};

static void draw_tile(KdCanvas *sheet, int tx, int ty, int tile, const KdDataset *ds, int idx, KdJpeg *j,
                      KdImage *img) {
  static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0}, grey[3] = {90, 90, 90};
  KdDatasetImage im = kd_dataset_image(ds, idx);
  char path[4096], cap[64];
  KdError e;
  if (kd_dataset_image_path(ds, idx, path, sizeof path) || kd_jpeg_read_file(j, path, 0, 0, img, &e)) {
    kd_draw_fill(sheet, tx, ty, tx + tile, ty + tile, grey);
    kd_draw_text(sheet, tx + 4, ty + 4, "UNREADABLE", 1, white);
    return;
  }
  /* Fit the declared frame; the decoded image is taken to cover it. */
  double s = (double)tile / (im.width > im.height ? im.width : im.height);
  int dw = (int)(im.width * s), dh = (int)(im.height * s);
  for (int y = 0; y < dh; y++)
    for (int x = 0; x < dw; x++) {
      int sx = (int)((long)x * img->w / dw), sy = (int)((long)y * img->h / dh);
      memcpy(sheet->rgb + 3 * ((size_t)(ty + y) * sheet->w + tx + x), img->rgb + 3 * ((size_t)sy * img->w + sx), 3);
    }
  for (int b = 0; b < im.n_boxes; b++) {
    const float *bx = im.boxes + 4 * b;
    const uint8_t *col = im.crowd[b] ? grey : palette[im.labels[b] % 12];
    int x0 = tx + (int)(bx[0] * s), y0 = ty + (int)(bx[1] * s);
    int x1 = tx + (int)(bx[2] * s + 0.999), y1 = ty + (int)(bx[3] * s + 0.999);
    kd_draw_rect(sheet, x0, y0, x1, y1, 1, col);
    const char *name = kd_dataset_class_name(ds, im.labels[b]);
    int tw = kd_text_width(name, 1) + 1, ly = y0 - 9 >= ty ? y0 - 9 : y0;
    int lx = x0 + tw <= tx + tile ? x0 : tx + tile - tw;
    kd_draw_fill(sheet, lx, ly, lx + tw + 1, ly + 9, col);
    int bright = col[0] * 299 + col[1] * 587 + col[2] * 114 > 140000;
    kd_draw_text(sheet, lx + 1, ly + 1, name, 1, bright ? black : white);
  }
  snprintf(cap, sizeof cap, "%.20s  %d BOX%s", im.file_name, im.n_boxes, im.n_boxes == 1 ? "" : "ES");
  size_t fit = (size_t)(tile / (KD_FONT_W + 1));
  if (strlen(cap) > fit) cap[fit < sizeof cap ? fit : sizeof cap - 1] = 0; /* stay under the tile */
  kd_draw_text(sheet, tx, ty + tile + 3, cap, 1, white);
}

int kd_dataset_preview(const KdDataset *ds, const char *png_path, int n, int cols, int tile,
                       KdError *err) {
  int total = kd_dataset_num_images(ds);
  if (total == 0) return kd_error(err, "%s: no images to preview", kd_dataset_json_path(ds));
  if (n > total) n = total;
  if (n < 1 || cols < 1 || tile < 16 || tile > 2048)
    return kd_error(err, "preview: bad layout (%d images, %d columns, tile %d)", n, cols, tile);
  if (cols > n) cols = n;
  int rows = (n + cols - 1) / cols;
  KdCanvas sheet = {.w = GAP + cols * (tile + GAP), .h = GAP + rows * (tile + CAPTION + GAP)};
  sheet.rgb = malloc((size_t)sheet.w * sheet.h * 3);
  KdJpeg *j = kd_jpeg_new();
  KdImage img = {0};
  int rc = 0;
  if (!sheet.rgb || !j) rc = kd_error(err, "preview: out of memory");
  if (!rc) {
    static const uint8_t bg[3] = {32, 32, 36};
    kd_draw_fill(&sheet, 0, 0, sheet.w, sheet.h, bg);
    for (int k = 0; k < n; k++) {
      int idx = (int)((long)k * total / n);
      draw_tile(&sheet, GAP + (k % cols) * (tile + GAP), GAP + (k / cols) * (tile + CAPTION + GAP), tile, ds, idx, j, &img);
    }
    rc = kd_png_write(png_path, sheet.rgb, sheet.w, sheet.h, err);
  }
  free(sheet.rgb);
  kd_jpeg_free(j);
  kd_image_free(&img);
  return rc;
}
