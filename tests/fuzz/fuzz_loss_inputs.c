/* libFuzzer target: `kdscope loss` on an arbitrary input file. First the
 * verb's own validation (app/loss_inputs.c): a refusal says why, an
 * accepted file satisfies every rule of docs/LOSS-CLI.md; then the verb
 * itself (anchors, assignment, the method's loss and its backward) on
 * what was accepted. The method comes from the input's length, so every
 * method sees every shape the fuzzer finds. */
#include <stdint.h>
#include <string.h>

#include "fuzz_file.h"
#include "loss_inputs.h"
#include "train/session.h"
#include "verbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {"fitnet", "pkd", "cwd", "logitkd", "defeat", "fgd"};

static void check(const KdLossInputs *in) {
  if (in->nlev < 1 || in->nlev > KD_LOSS_MAXL || in->n < 1 || in->img_h < 1 || in->img_w < 1) __builtin_trap();
  for (int k = 0; k < KD_LOSS_NKIND; k++)
    for (int l = 0; in->has[k] && l < in->nlev; l++)
      for (int w = 0; w < 2; w++) {
        const KdLossArr *x = &in->lev[k][w][l], *ref = &in->lev[k][0][l];
        if (!x->data || x->shape[0] != in->n || x->shape[2] != ref->shape[2] || x->shape[3] != ref->shape[3])
          __builtin_trap();
        for (int d = 0; d < 4; d++)
          if (x->shape[d] < 1) __builtin_trap();
      }
  if (in->has[KD_LOSS_CLS] && in->lev[KD_LOSS_CLS][1][0].shape[1] != in->A * in->K) __builtin_trap();
  if (in->has_gt != (in->boxes != NULL) || !in->boxes != !in->labels) __builtin_trap();
  for (int j = 0; in->has_gt && j < in->m; j++) {
    const float *b = in->boxes + 5 * j;
    if (!(b[0] >= 0 && b[0] < in->n && b[3] >= b[1] && b[4] >= b[2])) __builtin_trap();
    if (!(in->labels[j] >= 0 && in->labels[j] < in->K)) __builtin_trap();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  if (!path) return 0;
  const char *method = methods[size % (sizeof methods / sizeof methods[0])];
  /* The method's needs under the default settings, as the verb reads them. */
  static KdConfig *cfg;
  if (!cfg && (!(cfg = kd_config_new()) || kd_settings_register_all(cfg))) __builtin_trap();
  unsigned needs = kd_method_needs(kd_method_find(method), cfg);
  KdLossInputs in;
  KdError err = {{0}};
  int rc = kd_loss_inputs_read(&in, path, 9, method, needs, &err); /* 9: the default anchors per location */
  if (rc && !err.msg[0]) __builtin_trap();
  if (!rc) check(&in);
  kd_loss_inputs_free(&in);
  if (rc) return 0;
  char *argv[] = {"loss", "--method", (char *)method, "--in", (char *)path, NULL};
  kd_cli_loss(5, argv);
  return 0;
}
