/* Our files read by an independent parser: /usr/bin/python3 with only
 * json and struct (tests/model/check_safetensors.py). Skips (77) when
 * that interpreter is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/params.h"
#include "model/safetensors.h"

int main(void) {
  const char *py = "/usr/bin/python3", *root = getenv("KD_SOURCE_ROOT");
  if (access(py, X_OK) != 0 || !root) {
    printf("skip: %s or KD_SOURCE_ROOT missing\n", py);
    return 77;
  }
  char path[] = "/tmp/kd-st-py-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  close(fd);
  /* Tensor "name.K" holds i*0.25 - K; odd sizes so no padding hides a gap. */
  KdParams *p = kd_params_new();
  int shapes[5][4] = {{3, 1, 3, 3}, {7}, {5, 3}, {1}, {2, 3, 1}}, nd[5] = {4, 1, 2, 1, 3};
  KdParamKind kinds[5] = {KD_PARAM_TRAIN, KD_PARAM_BUFFER, KD_PARAM_TRAIN, KD_PARAM_BUFFER, KD_PARAM_TRAIN};
  for (int i = 0; i < 5; i++) {
    char nm[32];
    snprintf(nm, sizeof nm, "layer%d.t.%d", i, i + 1);
    kd_params_add(p, nm, nd[i], shapes[i], kinds[i]);
  }
  KdError err = {{0}};
  CHECK(kd_params_finalize(p, &err) == 0);
  for (int i = 0; i < 5; i++) {
    KdTensor *t = kd_params_at(p, i);
    for (size_t j = 0; j < t->numel; j++) t->data[j] = (float)j * 0.25f - (float)(i + 1);
  }
  const char *meta[] = {"writer", "kdscope", "note", "quotes \" and \\ survive", NULL};
  CHECK_MSG(kd_safetensors_save(path, p, meta, &err) == 0, "%s", err.msg);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/tests/model/check_safetensors.py %s 5", py, root, path);
  CHECK(system(cmd) == 0);
  KdSafetensors *st = kd_safetensors_open(path, &err);
  CHECK(st && strcmp(kd_safetensors_meta(st, "note"), "quotes \" and \\ survive") == 0);
  kd_safetensors_close(st);
  unlink(path);
  kd_params_free(p);
  return check_status("safetensors_py");
}
