/* Box coding between anchors and boxes: deltas (dx, dy, dw, dh) as
 * torchvision's BoxCoder (R-CNN parametrisation, no "+1" in widths):
 *   dx = wx * (gcx - acx) / aw      dw = ww * log(gw / aw)
 * decode clamps dw/ww and dh/wh at clip = log(1000/16) before exp. */
#ifndef KD_DET_BOXCODER_H
#define KD_DET_BOXCODER_H

typedef struct KdBoxCoder {
  float wx, wy, ww, wh; /* 1, 1, 1, 1 for RetinaNet */
  float clip;           /* log(1000/16) */
} KdBoxCoder;

KdBoxCoder kd_box_coder_default(void);
/* anchor, box: x1,y1,x2,y2 -> delta[4]. The anchor must have positive
 * width and height and the box too (log of its size). */
void kd_box_encode(const KdBoxCoder *bc, const float *anchor, const float *box, float *delta);
/* anchor, delta[4] -> box x1,y1,x2,y2. */
void kd_box_decode(const KdBoxCoder *bc, const float *anchor, const float *delta, float *box);

#endif
