/* Box coder (see boxcoder.h). Operation order follows torchvision's
 * encode_boxes / decode_single so float results agree bit for bit in the
 * common cases. */
#include "detect/boxcoder.h"

#include <math.h>

KdBoxCoder kd_box_coder_default(void) {
  return (KdBoxCoder){.wx = 1.0f, .wy = 1.0f, .ww = 1.0f, .wh = 1.0f, .clip = (float)log(1000.0 / 16.0)};
}

void kd_box_encode(const KdBoxCoder *bc, const float *anchor, const float *box, float *delta) {
  float aw = anchor[2] - anchor[0], ah = anchor[3] - anchor[1];
  float acx = anchor[0] + 0.5f * aw, acy = anchor[1] + 0.5f * ah;
  float gw = box[2] - box[0], gh = box[3] - box[1];
  float gcx = box[0] + 0.5f * gw, gcy = box[1] + 0.5f * gh;
  delta[0] = bc->wx * (gcx - acx) / aw;
  delta[1] = bc->wy * (gcy - acy) / ah;
  delta[2] = bc->ww * logf(gw / aw);
  delta[3] = bc->wh * logf(gh / ah);
}

void kd_box_decode(const KdBoxCoder *bc, const float *anchor, const float *delta, float *box) {
  float aw = anchor[2] - anchor[0], ah = anchor[3] - anchor[1];
  float acx = anchor[0] + 0.5f * aw, acy = anchor[1] + 0.5f * ah;
  float dx = delta[0] / bc->wx, dy = delta[1] / bc->wy;
  float dw = delta[2] / bc->ww, dh = delta[3] / bc->wh;
  if (dw > bc->clip) dw = bc->clip;
  if (dh > bc->clip) dh = bc->clip;
  float cx = dx * aw + acx, cy = dy * ah + acy;
  float hw = 0.5f * (expf(dw) * aw), hh = 0.5f * (expf(dh) * ah);
  box[0] = cx - hw;
  box[1] = cy - hh;
  box[2] = cx + hw;
  box[3] = cy + hh;
}
