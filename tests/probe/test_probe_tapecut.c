/* The tape cut: on a small graph shaped like backbone -> P5 -> P6 (P6
 * derives from P5, as RetinaNet's extra levels) -> losses, the gradients
 * reaching the chosen tensors equal a full backward's, the "backbone"
 * before them gets none, and nodes not on a path to them are disabled. */
#include <string.h>

#include "check.h"
#include "core/ops.h"
#include "probe/tapecut.h"

typedef struct {
  KdTensor *w, *a, *p5, *p6, *loss;
} Graph;

static void build(KdCtx *c, KdTensor *w, Graph *g) {
  g->w = w;
  g->a = kd_relu(c, kd_scale(c, w, 2.0f));                  /* "backbone" */
  g->p5 = kd_add_scalar(c, kd_scale(c, g->a, 0.5f), 1.0f);  /* chosen */
  g->p6 = kd_square(c, g->p5);                              /* chosen, from P5 */
  KdTensor *head5 = kd_mul(c, g->p5, g->p5), *head6 = kd_scale(c, g->p6, 3.0f);
  KdTensor *side = kd_sum_all(c, kd_square(c, w)); /* depends on w only */
  g->loss = kd_add(c, kd_add(c, kd_sum_all(c, head5), kd_sum_all(c, head6)), side);
}

int main(void) {
  KdCtx *c = kd_ctx_new(1 << 16);
  int sh[1] = {4};
  float wd[4] = {0.5f, -1.0f, 2.0f, 0.25f};
  KdTensor *w = kd_tensor_wrap(c, wd, 1, sh);
  w->requires_grad = 1;
  Graph g;
  build(c, w, &g);
  CHECK(kd_backward(c, g.loss) == 0);
  float full5[4], full6[4];
  memcpy(full5, g.p5->grad, sizeof full5);
  memcpy(full6, g.p6->grad, sizeof full6);
  CHECK(g.a->grad != NULL);
  KdTensor *chosen[2] = {g.p5, g.p6};
  int cut = kd_tape_cut_below(g.loss->node, chosen, 2);
  /* disabled: scale(w), relu, scale(a), add_scalar (make P5), square(w), sum(square(w)) */
  CHECK_MSG(cut == 6, "cut %d nodes", cut);
  kd_ctx_clear_step_grads(c);
  CHECK(kd_backward(c, g.loss) == 0);
  CHECK(g.p5->grad && g.p6->grad && !memcmp(full5, g.p5->grad, sizeof full5) && !memcmp(full6, g.p6->grad, sizeof full6));
  CHECK(g.a->grad == NULL); /* nothing flowed past the chosen tensors */
  /* d/dP5 = 2 P5 + 3 * 2 P5 (through P6) */
  for (int i = 0; i < 4; i++) CHECK_NEAR(g.p5->grad[i], 8 * g.p5->data[i], 1e-5);
  kd_ctx_free(c);
  return check_status("test_probe_tapecut");
}
