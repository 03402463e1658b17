/* Synthetic but realistic figure data for the export tests: a 128x128
 * textured image with items, GT/teacher/student boxes, per-level feature
 * energy as Gaussian blobs (the student blurrier and offset), gap and
 * masks, attention, gradient magnitude by source, an instance projection,
 * noisy decreasing losses with a spike and parameter-change markers, AP
 * per evaluation and fg/bg gradient means over steps. Deterministic. */
#ifndef KD_TEST_FIG_DATA_H
#define KD_TEST_FIG_DATA_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "figure.h"

#define FD_IMG 128
#define FD_NIMG 3
#define FD_NLEV 3
#define FD_NBOX 3
#define FD_NCH 64
#define FD_NSRC 3
#define FD_NINST 40
#define FD_STEPS 3000
#define FD_NEVAL 13
#define FD_NGSTEP 300

typedef struct FigData {
  uint8_t rgb[FD_NIMG][FD_IMG * FD_IMG * 3];
  KdFigBox gt[FD_NIMG][FD_NBOX], teacher[FD_NIMG][FD_NBOX + 1], student[FD_NIMG][FD_NBOX + 1];
  /* per image and level (strides 8, 16, 32) */
  float t_energy[FD_NIMG][FD_NLEV][16 * 16], s_energy[FD_NIMG][FD_NLEV][16 * 16];
  float gap[FD_NIMG][FD_NLEV][16 * 16], mask[FD_NIMG][FD_NLEV][16 * 16];
  float fgd_mask[FD_NLEV][16 * 16], signed_diff[16 * 16];
  float t_att[16 * 16], s_att[16 * 16], t_ch[FD_NCH], s_ch[FD_NCH];
  float grad[FD_NSRC][16 * 16], grad_fg[FD_NSRC], grad_bg[FD_NSRC];
  float t_xy[FD_NINST * 2], s_xy[FD_NINST * 2], proto_xy[10 * 2];
  int inst_cls[FD_NINST], proto_cls[10];
  double step[FD_STEPS], loss_det[FD_STEPS], loss_kd[FD_STEPS], loss_total[FD_STEPS];
  double eval_step[FD_NEVAL], ap[FD_NEVAL], ap50[FD_NEVAL];
  double gstep[FD_NGSTEP], gfg[FD_NSRC][FD_NGSTEP], gbg[FD_NSRC][FD_NGSTEP];
} FigData;

static const char *const fd_classes[10] = {"T-shirt", "trouser", "pullover", "dress", "coat",
                                           "sandal", "shirt", "sneaker", "bag", "ankle boot"};
static const char *const fd_sources[FD_NSRC] = {"detection", "DeFeat", "FGD"};

static uint32_t fd_rng = 0x9E3779B9u;
static double fd_unif(void) {
  fd_rng ^= fd_rng << 13;
  fd_rng ^= fd_rng >> 17;
  fd_rng ^= fd_rng << 5;
  return (fd_rng >> 8) / 16777216.0;
}
static double fd_gauss(void) {
  double u = fd_unif() + 1e-12, v = fd_unif();
  return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static const float fd_box_tab[FD_NIMG][FD_NBOX][5] = {
    {{14, 20, 60, 92, 0}, {70, 12, 118, 58, 7}, {66, 72, 112, 120, 8}},
    {{10, 10, 50, 50, 3}, {56, 30, 120, 110, 4}, {18, 70, 48, 118, 5}},
    {{30, 24, 98, 104, 9}, {4, 96, 28, 124, 1}, {100, 6, 124, 40, 6}},
};

static void fd_build(FigData *d) {
  memset(d, 0, sizeof *d);
  fd_rng = 0x9E3779B9u;
  for (int im = 0; im < FD_NIMG; im++) {
    /* Textured background: a gradient with noise and stripes. */
    for (int y = 0; y < FD_IMG; y++)
      for (int x = 0; x < FD_IMG; x++) {
        uint8_t *p = &d->rgb[im][(y * FD_IMG + x) * 3];
        double t = 0.5 + 0.25 * sin(x * 0.21 + im) * cos(y * 0.17);
        double n = fd_unif() * 30;
        p[0] = (uint8_t)(90 + 60 * t + n);
        p[1] = (uint8_t)(100 + 40 * t + n);
        p[2] = (uint8_t)(80 + 70 * (1 - t) + n);
      }
    for (int b = 0; b < FD_NBOX; b++) {
      const float *bx = fd_box_tab[im][b];
      uint8_t col[3] = {(uint8_t)(200 - 60 * b), (uint8_t)(60 + 70 * b), (uint8_t)(170 - 40 * im)};
      for (int y = (int)bx[1]; y < (int)bx[3]; y++)
        for (int x = (int)bx[0]; x < (int)bx[2]; x++) {
          double cx = (bx[0] + bx[2]) / 2, cy = (bx[1] + bx[3]) / 2;
          double rx = (bx[2] - bx[0]) / 2, ry = (bx[3] - bx[1]) / 2;
          double r = pow((x - cx) / rx, 2) + pow((y - cy) / ry, 2);
          if (r > 1) continue; /* an ellipse-shaped item, box tight around it */
          uint8_t *p = &d->rgb[im][(y * FD_IMG + x) * 3];
          for (int c = 0; c < 3; c++) p[c] = (uint8_t)(col[c] * (0.75 + 0.25 * sin(y * 0.8)));
        }
      d->gt[im][b] = (KdFigBox){bx[0], bx[1], bx[2], bx[3], (int)bx[4], -1};
      d->teacher[im][b] = (KdFigBox){bx[0] + 2, bx[1] - 1, bx[2] - 1, bx[3] + 2, (int)bx[4],
                                     (float)(0.93 - 0.08 * b)};
      d->student[im][b] = (KdFigBox){bx[0] - 4, bx[1] + 5, bx[2] + 3, bx[3] - 3,
                                     b == 2 ? (int)(bx[4] + 1) % 10 : (int)bx[4],
                                     (float)(0.71 - 0.15 * b)};
    }
    d->teacher[im][FD_NBOX] = (KdFigBox){80, 80, 96, 96, 2, 0.04f}; /* below threshold */
    d->student[im][FD_NBOX] = (KdFigBox){40, 96, 70, 124, 0, 0.31f}; /* a false positive */
    /* Feature energy per level: blobs on the items; the student's are
     * blurrier, weaker and shifted, so the gap highlights them. */
    for (int l = 0; l < FD_NLEV; l++) {
      int n = 16 >> l;
      double stride = FD_IMG / (double)n;
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
          double px = (j + 0.5) * stride, py = (i + 0.5) * stride, te = 0.05, se = 0.08, m = 0;
          for (int b = 0; b < FD_NBOX; b++) {
            const float *bx = fd_box_tab[im][b];
            double cx = (bx[0] + bx[2]) / 2, cy = (bx[1] + bx[3]) / 2;
            double sx = (bx[2] - bx[0]) / 3, sy = (bx[3] - bx[1]) / 3;
            te += (1.6 + 0.4 * b) * exp(-0.5 * (pow((px - cx) / sx, 2) + pow((py - cy) / sy, 2)));
            se += (1.0 + 0.2 * b) *
                  exp(-0.5 * (pow((px - cx - 8) / (sx * 1.4), 2) + pow((py - cy + 4) / (sy * 1.4), 2)));
            if (px >= bx[0] && px <= bx[2] && py >= bx[1] && py <= bx[3]) m = 1;
          }
          te *= 1 + 0.05 * fd_gauss();
          se *= 1 + 0.05 * fd_gauss();
          int k = i * n + j;
          d->t_energy[im][l][k] = (float)(te * (1 + 0.3 * l));
          d->s_energy[im][l][k] = (float)(se * (1 + 0.3 * l));
          d->gap[im][l][k] = (float)pow(d->t_energy[im][l][k] - d->s_energy[im][l][k], 2);
          d->mask[im][l][k] = (float)m;
          if (im == 0) {
            /* FGD-like scale mask: 1/area inside boxes, background weight outside. */
            double w = 0;
            for (int b = 0; b < FD_NBOX; b++) {
              const float *bx = fd_box_tab[0][b];
              if (px >= bx[0] && px <= bx[2] && py >= bx[1] && py <= bx[3])
                w = fmax(w, 1.0 / ((bx[2] - bx[0]) * (bx[3] - bx[1]) / (stride * stride)));
            }
            d->fgd_mask[l][k] = (float)w;
          }
        }
    }
  }
  for (int k = 0; k < 256; k++) {
    d->signed_diff[k] = d->s_energy[0][0][k] - d->t_energy[0][0][k];
  }
  /* Spatial attention: softmax of the energy; channel attention: peaked. */
  double zt = 0, zs = 0;
  for (int k = 0; k < 256; k++) {
    zt += exp(2 * d->t_energy[0][0][k]);
    zs += exp(2 * d->s_energy[0][0][k]);
  }
  for (int k = 0; k < 256; k++) {
    d->t_att[k] = (float)(256 * exp(2 * d->t_energy[0][0][k]) / zt);
    d->s_att[k] = (float)(256 * exp(2 * d->s_energy[0][0][k]) / zs);
  }
  for (int c = 0; c < FD_NCH; c++) {
    double a = exp(-c * 0.07) * (0.6 + 0.4 * fd_unif());
    d->t_ch[c] = (float)(a * 3);
    d->s_ch[c] = (float)(a * 3 * (0.6 + 0.8 * fd_unif()));
  }
  /* Gradient magnitude by source: detection concentrates on objects, the
   * distillation losses spread over the background at lower magnitude. */
  for (int s = 0; s < FD_NSRC; s++) {
    double fg = 0, bg = 0;
    int nf = 0, nb = 0;
    for (int k = 0; k < 256; k++) {
      double e = d->t_energy[0][0][k];
      double v = s == 0 ? 1e-3 * pow(e, 3) + 1e-6 : s == 1 ? 3e-4 * (0.3 + e) : 1e-4 * (1 + 0.5 * e);
      v *= exp(0.3 * fd_gauss());
      d->grad[s][k] = (float)v;
      if (d->mask[0][0][k] > 0) {
        fg += v;
        nf++;
      } else {
        bg += v;
        nb++;
      }
    }
    d->grad_fg[s] = (float)(fg / nf);
    d->grad_bg[s] = (float)(bg / nb);
  }
  /* Instances in 10 class clusters; the student near its teacher. */
  for (int c = 0; c < 10; c++) {
    d->proto_xy[2 * c] = (float)(4 * cos(c * 0.63) + 0.3 * fd_gauss());
    d->proto_xy[2 * c + 1] = (float)(3 * sin(c * 0.63 * 1.3));
    d->proto_cls[c] = c;
  }
  for (int i = 0; i < FD_NINST; i++) {
    int c = i % 10;
    d->inst_cls[i] = c;
    d->t_xy[2 * i] = d->proto_xy[2 * c] + (float)(0.5 * fd_gauss());
    d->t_xy[2 * i + 1] = d->proto_xy[2 * c + 1] + (float)(0.5 * fd_gauss());
    d->s_xy[2 * i] = d->t_xy[2 * i] + (float)(0.7 * fd_gauss());
    d->s_xy[2 * i + 1] = d->t_xy[2 * i + 1] + (float)(0.7 * fd_gauss());
  }
  /* Losses: noisy exponential decay, a one-step spike at 1700, a change
   * of the distillation weight at 1000 that lifts the kd loss. */
  for (int i = 0; i < FD_STEPS; i++) {
    double t = i + 1;
    d->step[i] = t;
    d->loss_det[i] = (0.35 + 1.4 * exp(-t / 500)) * exp(0.18 * fd_gauss());
    d->loss_kd[i] = (0.05 + 0.6 * exp(-t / 800)) * (t > 1000 ? 1.8 : 1) * exp(0.25 * fd_gauss());
    if (i == 1700) d->loss_det[i] = 9.5;
    d->loss_total[i] = d->loss_det[i] + d->loss_kd[i];
  }
  for (int e = 0; e < FD_NEVAL; e++) {
    double t = e * 250;
    d->eval_step[e] = t;
    d->ap[e] = 0.32 * (1 - exp(-t / 900)) + (t > 1000 ? 0.02 : 0) + 0.004 * fd_gauss();
    d->ap50[e] = d->ap[e] * 1.6;
  }
  for (int i = 0; i < FD_NGSTEP; i++) {
    double t = (i + 1) * 10;
    d->gstep[i] = t;
    for (int s = 0; s < FD_NSRC; s++) {
      double base = s == 0 ? 2e-3 : s == 1 ? 4e-4 : 1.5e-4;
      d->gfg[s][i] = base * (0.3 + exp(-t / 900)) * exp(0.2 * fd_gauss());
      d->gbg[s][i] = base * (s == 0 ? 0.05 : 0.6) * (0.3 + exp(-t / 1200)) * exp(0.2 * fd_gauss());
    }
  }
}

#endif
