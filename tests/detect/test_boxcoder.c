/* Box coder: hand-computed deltas, decode(encode(b)) == b with and without
 * weights, and the dw/dh clamp on decode. */
#include <math.h>

#include "check.h"
#include "core/rng.h"
#include "detect/boxcoder.h"

int main(void) {
  KdBoxCoder bc = kd_box_coder_default();
  CHECK_NEAR(bc.clip, log(1000.0 / 16.0), 1e-6);
  /* anchor centre (5,5) size 10x10; box centre (10,15) size 10x20. */
  float anchor[4] = {0, 0, 10, 10}, box[4] = {5, 5, 15, 25}, d[4], back[4];
  kd_box_encode(&bc, anchor, box, d);
  CHECK_NEAR(d[0], 0.5, 1e-7);
  CHECK_NEAR(d[1], 1.0, 1e-7);
  CHECK_NEAR(d[2], 0.0, 1e-7);
  CHECK_NEAR(d[3], log(2.0), 1e-6);
  kd_box_decode(&bc, anchor, d, back);
  for (int j = 0; j < 4; j++) CHECK_NEAR(back[j], box[j], 1e-5);

  /* Huge dw is clamped: width = 1000/16 * anchor width, centred. */
  float big[4] = {0, 0, 100, -100};
  kd_box_decode(&bc, anchor, big, back);
  CHECK_NEAR(back[2] - back[0], 625.0, 1e-2);
  CHECK_NEAR(0.5 * (back[0] + back[2]), 5.0, 1e-3);
  CHECK_NEAR(back[3] - back[1], 10.0 * exp(-100.0), 1e-6);
  CHECK(isfinite(back[0]) && isfinite(back[3]));

  /* Round trips, plain and with Faster R-CNN's weights (10, 10, 5, 5). */
  KdRng r;
  kd_rng_seed(&r, 3, 1);
  KdBoxCoder w = {10, 10, 5, 5, bc.clip};
  for (int i = 0; i < 1000; i++) {
    float a[4], b[4];
    a[0] = kd_rng_range(&r, -50, 100), a[1] = kd_rng_range(&r, -50, 100);
    a[2] = a[0] + kd_rng_range(&r, 4, 200), a[3] = a[1] + kd_rng_range(&r, 4, 200);
    b[0] = kd_rng_range(&r, -50, 100), b[1] = kd_rng_range(&r, -50, 100);
    b[2] = b[0] + kd_rng_range(&r, 1, 200), b[3] = b[1] + kd_rng_range(&r, 1, 200);
    const KdBoxCoder *coder = (i & 1) ? &w : &bc;
    kd_box_encode(coder, a, b, d);
    kd_box_decode(coder, a, d, back);
    for (int j = 0; j < 4; j++) CHECK_NEAR(back[j], b[j], 1e-3);
    if (i & 1) { /* weights scale the deltas */
      float d1[4];
      kd_box_encode(&bc, a, b, d1);
      CHECK_NEAR(d[0], 10 * d1[0], 1e-4 * (1 + fabs(d[0])));
      CHECK_NEAR(d[2], 5 * d1[2], 1e-4 * (1 + fabs(d[2])));
    }
  }
  return check_status("test_boxcoder");
}
